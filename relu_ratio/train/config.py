"""What a training run depends on: :class:`TrainConfig` (every field is also a CLI flag) and the command
that reproduces it.

Example:
    >>> from relu_ratio.train.config import TrainConfig
    >>> TrainConfig(model="resnet20_21", recipe="fast").resolved().batch_size
    128
"""

from __future__ import annotations

import dataclasses
import shlex

from relu_ratio import models
from relu_ratio.train.recipes import RECIPES


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; every field is also a CLI flag (``--batch-size``...).

    ``None`` fields take the recipe's value.
    """

    model: str = "preact164_32"
    dataset: str = "cifar10"
    out: str = "runs/run"
    recipe: str = "paper"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None  # coupled L2 on conv and dense kernels (not on BatchNorm)
    label_smoothing: float | None = None
    schedule: str | None = None  # "step" or "cosine"
    warmup_epochs: float | None = None
    train_subset: int | None = None  # train on a random subset of this many training images
    test_subset: int | None = None
    holdout: int | None = None  # validate on this many held-out training images instead of the test split
    data_dir: str | None = None  # tensorflow-datasets data_dir
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (bfloat16 on GPU), "off", "mixed_bfloat16", "mixed_float16"
    distribute: bool = False
    backup_every: int = 200  # steps between mid-epoch backups
    verbose: int = 1

    def resolved(self) -> TrainConfig:
        """A copy with the recipe's defaults filled in, checked."""
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}; received {self.recipe!r}.")
        filled = dataclasses.replace(self)
        for key, value in RECIPES[self.recipe].items():
            if getattr(filled, key) is None:
                setattr(filled, key, value)
        if filled.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be 'step' or 'cosine'; received {filled.schedule!r}.")
        for key in ("epochs", "batch_size", "backup_every"):
            if getattr(filled, key) < 1:
                raise ValueError(f"{key} must be >= 1; received {getattr(filled, key)!r}.")
        if filled.mixed_precision not in ("auto", "off", "mixed_bfloat16", "mixed_float16"):
            raise ValueError(
                "mixed_precision must be 'auto', 'off', 'mixed_bfloat16' or 'mixed_float16'; "
                f"received {filled.mixed_precision!r}."
            )
        models.check_name(filled.model)
        return filled



def command_for(config: TrainConfig) -> str:
    """The CLI command that reproduces ``config`` (every setting spelled out)."""
    args = ["python", "-m", "relu_ratio.train"]
    for field in dataclasses.fields(TrainConfig):
        value = getattr(config, field.name)
        flag = "--" + field.name.replace("_", "-")
        if field.name == "verbose" or value is None:
            continue
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, str(value)]
    return shlex.join(args)
