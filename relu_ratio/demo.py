"""The README's first command ends here: build the paired and the Type 1 ResNet-164 and compare.

Run ``python -m relu_ratio.demo``; the figures are measured from the built models.
"""

from __future__ import annotations

import keras

from relu_ratio import describe, models


def main(names: tuple[str, ...] = ("preact164_11", "preact164_32")) -> None:
    print(f"relu_ratio demo (Keras {keras.__version__}, backend {keras.backend.backend()})")
    for name in names:
        print(describe(models.build(name)))


if __name__ == "__main__":
    main()
