"""``python -m relu_ratio.train``: flags generated from :class:`~relu_ratio.train.TrainConfig`.

Example:
    >>> from relu_ratio.train import cli
    >>> cli.main(["--model", "resnet20_21", "--dataset", "../shared/data", "--epochs", "1"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from relu_ratio import flags
from relu_ratio.train import __doc__ as train_doc
from relu_ratio.train.callbacks import TrainingDiverged
from relu_ratio.train.config import TrainConfig
from relu_ratio.train.fit import run


def parser() -> argparse.ArgumentParser:
    """CLI flags generated from :class:`TrainConfig` (:func:`relu_ratio.flags.add_arguments`)."""
    p = argparse.ArgumentParser(
        prog="python -m relu_ratio.train", description=train_doc.split("\n")[0], allow_abbrev=False
    )
    flags.add_arguments(p, TrainConfig)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = TrainConfig(**vars(args))
    try:
        result = run(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:  # bad settings or data; a full or unwritable disk (CacheError too)
        print(f"error: {error}", file=sys.stderr)
        return 2
    top1 = f"{result.get('evaluated_on', 'test')}_top1"
    print(json.dumps({k: result[k] for k in ("model", "epochs_completed", top1, "wall_time_s")}))
    return 0 if math.isfinite(result[top1]) else 1
