"""``python -m relu_ratio.train``: flags generated from :class:`~relu_ratio.train.TrainConfig`.

Example:
    >>> from relu_ratio.train import cli
    >>> cli.main(["--model", "resnet20_21", "--dataset", "../shared/data", "--epochs", "1"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from relu_ratio import flags
from relu_ratio.train import __doc__ as train_doc
from relu_ratio.train.callbacks import Backup, TrainingDiverged
from relu_ratio.train.config import TrainConfig
from relu_ratio.train.fit import run
from relu_ratio.train.record import top1_key


def parser() -> flags.Parser:
    """CLI flags generated from :class:`TrainConfig` (:func:`relu_ratio.flags.add_arguments`)."""
    p = flags.Parser(
        prog="python -m relu_ratio.train", description=train_doc.split("\n")[0], allow_abbrev=False,
        **flags.examples(
            "python -m relu_ratio.train --model resnet20_21 --dataset ../shared/data --out runs/resnet20_21",
            "python -m relu_ratio.train --model preact164_32 --recipe fast --epochs 30 --out runs/p164",
        ),
    )
    flags.add_arguments(p, TrainConfig)
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit 0 (trained), 1 (diverged, or a non-finite score), 2 (a mistake: settings, data, a folder in use,
    a damaged run file, a full disk; one line, no traceback) or 130 (Ctrl-C: it says how to resume); run as
    ``python -m relu_ratio.train``, 1 also when its output's reader has gone (:func:`flags.exit_with`)."""
    args = parser().parse_args(argv)
    config = TrainConfig(**vars(args))
    try:
        result = run(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:  # bad settings or data; a full or unwritable disk (CacheError too)
        return flags.report_error(error)
    except KeyboardInterrupt:
        return flags.report_interrupt(interrupted(Path(config.out)))
    top1 = top1_key(result)
    print(json.dumps({k: result.get(k) for k in ("model", "epochs_completed", top1, "wall_time_s")}))
    return 0 if math.isfinite(result[top1]) else 1


def interrupted(out: Path) -> str:
    """What a run stopped by Ctrl-C left, and how to go on."""
    if Backup.record_path(out).is_file():
        return f"the run in {out} resumes from its last backup with the same command."
    if out.is_dir():
        return f"no backup was written yet; the same command starts the run in {out} again."
    return "nothing was written."
