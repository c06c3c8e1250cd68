"""Draw the README's picture: the paired and the Type 1 (3:2) pre-activation bottleneck side by side.

The ReLUs each block keeps or erases are read from :mod:`relu_ratio.patterns` (the masks the builders use),
not drawn by hand. Run from the repository root::

    python docs/make_figures.py              # writes docs/blocks.png
    python docs/make_figures.py /tmp/blocks  # writes /tmp/blocks.png (a name without a suffix gets .png)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
from matplotlib.patches import FancyBboxPatch

OUT = Path(__file__).parent / "blocks.png"
CONVS = ("conv 1x1", "conv 3x3", "conv 1x1")  # the bottleneck's main path, one per ReLU slot
PANELS = (
    ("1:1", "paired (1:1): preact164_11"),
    ("3:2", "Type 1 (3:2): preact164_32"),
)
COLOURS = {"bn": "#dbe9f6", "relu": "#f4a259", "conv": "#8cc5a0", "add": "#ffffff"}


def block_layers(spec: str) -> list[tuple[str, str]]:
    """(kind, label) from input to output for one bottleneck under ``spec``; kind ``erased`` for a removed
    ReLU slot."""
    from relu_ratio.patterns import BOTTLENECK, ReLUPattern  # here: importing relu_ratio starts Keras

    mask = ReLUPattern(spec).resolve(BOTTLENECK, [1, 1, 1])[0][0]
    layers = []
    for keep, conv in zip(mask, CONVS):
        relu = ("relu", "ReLU") if keep else ("erased", "ReLU erased")
        layers += [("bn", "BatchNorm"), relu, ("conv", conv)]
    return [*layers, ("add", "+")]


def _box(ax, x: float, y: float, kind: str, label: str) -> None:
    width, height = 2.2, 0.62
    erased = kind == "erased"
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor="white" if erased else COLOURS[kind], edgecolor="#999999" if erased else "#333333",
            linestyle="--" if erased else "-", linewidth=1.2,
        )
    )  # fmt: skip
    ax.text(x, y, label, ha="center", va="center", fontsize=10, color="#999999" if erased else "black")
    if erased:
        ax.plot([x - 0.8, x + 0.8], [y - 0.18, y + 0.18], color="#c0392b", linewidth=1.5)


def target(path: str | os.PathLike) -> tuple[Path, str]:
    """The file :func:`draw` writes for ``path`` and its format: the suffix's (``.png`` added where there is
    none, as matplotlib would add it). Raises ``ValueError`` for an empty or blank path, a folder, or a format
    matplotlib cannot write (naming the formats it can)."""
    if not os.fspath(path).strip():  # as relu_ratio.files.names_nothing, which would start Keras here
        raise ValueError(f"the figure's path is empty or blank ({os.fspath(path)!r}); give a file name such "
                         "as docs/blocks.png")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as {path / OUT.name}")
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    formats = sorted(Figure().canvas.get_supported_filetypes())
    fmt = path.suffix[1:].lower()
    if fmt not in formats:
        raise ValueError(f"cannot write a figure as {path.suffix!r} ({path}); use one of "
                         f"{', '.join('.' + f for f in formats)}")  # fmt: skip
    return path, fmt


def draw(path: str | os.PathLike = OUT) -> Path:
    """Draw the picture into ``path`` (see :func:`target`; written atomically) and return the file written.

    Raises:
        ValueError: for a path :func:`target` refuses.
        OSError: naming the file, where it cannot be written (a missing folder, a folder of that name ...).
    """
    from relu_ratio.files import atomic_file

    path, fmt = target(path)
    fig = Figure(figsize=(7.2, 6.6))
    axes = fig.subplots(1, 2)
    for ax, (spec, title) in zip(axes, PANELS):
        layers = block_layers(spec)
        step = 0.9
        ys = [-(i + 1) * step for i in range(len(layers))]
        ax.annotate("", xy=(0, ys[0] + 0.31), xytext=(0, 0.35), arrowprops={"arrowstyle": "->"})
        for (kind, label), y, nxt in zip(layers, ys, [*ys[1:], None]):
            _box(ax, 0, y, kind, label)
            if nxt is not None:
                ax.annotate("", xy=(0, nxt + 0.31), xytext=(0, y - 0.31), arrowprops={"arrowstyle": "->"})
        # the identity shortcut, from the block's input to the addition
        ax.plot([0, 1.6, 1.6], [0.15, 0.15, ys[-1]], color="#555555", linewidth=1.2)
        ax.annotate("", xy=(1.1, ys[-1]), xytext=(1.6, ys[-1]), arrowprops={"arrowstyle": "->"})
        ax.annotate("", xy=(0, ys[-1] - 0.9), xytext=(0, ys[-1] - 0.31), arrowprops={"arrowstyle": "->"})
        relus = sum(kind == "relu" for kind, _ in layers)
        ax.set_title(f"{title}\n3 convolutions : {relus} ReLUs", fontsize=11)
        ax.set_xlim(-1.6, 2.0)
        ax.set_ylim(ys[-1] - 1.0, 0.5)
        ax.axis("off")
    fig.suptitle("One pre-activation bottleneck block, paired and proportional", fontsize=12)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format=fmt)
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python docs/make_figures.py", allow_abbrev=False,
        description="Draw the README's picture of the paired and the Type 1 (3:2) bottleneck block.",
    )  # fmt: skip
    p.add_argument("path", nargs="?", default=OUT,
                   help="the file to write (default: docs/blocks.png); no suffix: .png is added")
    return p


def main(argv: list[str] | None = None) -> int:
    """Draw the picture and print the path of the file written; a bad path is one ``error:`` line (exit 2)."""
    p = parser()
    args = p.parse_args(argv)
    try:
        target(args.path)  # before relu_ratio (and Keras) is imported
        written = draw(args.path)
    except ValueError as error:
        p.error(str(error))
    except OSError as error:
        p.error(f"cannot write the figure to {error.filename or args.path}: {error.strerror or error}")
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
