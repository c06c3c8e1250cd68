"""What a training run depends on: :class:`TrainConfig` (every field is also a CLI flag) and the command
that reproduces it.

Example:
    >>> from relu_ratio.train.config import TrainConfig
    >>> TrainConfig(model="resnet20_21", recipe="fast").resolved().batch_size
    128
"""

from __future__ import annotations

import dataclasses

from relu_ratio import data, files, flags, models
from relu_ratio.train.recipes import RECIPES, SCHEDULES
from relu_ratio.validators import check_seed, is_finite_number, is_integer

# More epochs than anyone means (He et al. train 164, the published ResNet-20 figures 200): a typo's
# 10**20 epochs failed deep in TensorFlow with a traceback. Lift it: relu_ratio.train.config.MAX_EPOCHS = n.
MAX_EPOCHS = 100_000


def _flag(default, help: str, recipe: bool = False, **metadata):
    """A field with its command-line help (``recipe``: ``None`` means the recipe's value)."""
    if recipe:
        metadata.setdefault("default_text", "default: the recipe's")
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def check_config(config: object, where: str) -> None:
    """Raise ``TypeError`` unless ``config`` is a :class:`TrainConfig`; ``where`` names the function that
    takes it (a dict of settings would otherwise fail later as a bare ``AttributeError``)."""
    if not isinstance(config, TrainConfig):
        hint = ": TrainConfig(**settings)" if isinstance(config, dict) else ""
        raise TypeError(f"{where} takes a relu_ratio.train.TrainConfig (e.g. TrainConfig(recipe='fast', "
                        f"epochs=10)); received {type(config).__name__}{hint}.")  # fmt: skip


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; every field is also a CLI flag (``--batch-size``...).

    ``None`` fields take the recipe's value.
    """

    model: str = _flag("preact164_32", "network name {family}{depth}_{pattern}, e.g. resnet20_21")
    dataset: str = _flag("cifar10", "cifar10 or cifar100 (tensorflow-datasets), or a folder/archive laid out "
                         "split/label/image, e.g. ../shared/data (CIFAR-10 JPEG)")
    out: str = _flag("runs/run", "run folder; the same command resumes a cut-off run there")
    recipe: str = _flag("paper", "training recipe; the settings below left unset take its values",
                        choices=tuple(sorted(RECIPES)))
    epochs: int | None = _flag(None, "training epochs", recipe=True)
    batch_size: int | None = _flag(None, "images per step", recipe=True)
    lr: float | None = _flag(None, "peak learning rate (SGD)", recipe=True)
    momentum: float = _flag(0.9, "SGD momentum, in [0, 1)")
    nesterov: bool = _flag(True, "Nesterov momentum")
    weight_decay: float | None = _flag(None, "coupled L2 weight decay on conv and dense kernels (not on "
                                       "BatchNorm), >= 0", recipe=True)
    label_smoothing: float | None = _flag(None, "label smoothing, in [0, 1)", recipe=True)
    schedule: str | None = _flag(None, "learning-rate schedule: step (x0.1 at 1/2, 3/4, 7/8), cosine or "
                                 "linear to zero", recipe=True, choices=SCHEDULES)
    warmup_epochs: float | None = _flag(None, "linear warm-up epochs before a cosine or linear schedule "
                                        "(step has none), 0 to epochs", recipe=True)
    ema: float | None = _flag(None, "keep an exponential moving average of the trainable weights with this "
                              "momentum (e.g. 0.998; BatchNorm statistics are not averaged), validate with "
                              "it and save it as the final weights", default_text="default: off")
    train_subset: int | None = _flag(None, "train on a seeded random subset of this many training images",
                                     default_text="default: all")
    test_subset: int | None = _flag(None, "validate on a seeded random subset of this many test images",
                                    default_text="default: all")
    holdout: int | None = _flag(None, "validate on this many held-out training images (the same for every "
                                "seed) instead of the test split: for choosing recipes",
                                default_text="default: off")
    data_dir: str | None = _flag(None, "tensorflow-datasets data_dir", default_text="default: tfds' own")
    seed: int = _flag(0, "seed of initialisation, augmentation and subsets")
    mixed_precision: str = _flag("auto", "compute precision: auto (mixed_bfloat16 on a GPU, and under "
                                 "TensorFlow or PyTorch on a CPU with bfloat16 instructions; else "
                                 "float32), off "
                                 "(float32), mixed_bfloat16 or mixed_float16",
                                 choices=("auto", "off", "mixed_bfloat16", "mixed_float16"))
    distribute: bool = _flag(False, "data-parallel over all local devices (JAX DataParallel or TF "
                             "MirroredStrategy)")
    augment_on: str = _flag("auto", "where the CIFAR augmentation runs: host (numpy, between steps), "
                            "device (inside the compiled step: the host hands over uint8 batches) or auto "
                            "(device on a GPU, host on a CPU); a resumed run keeps where it started",
                            choices=("auto", "host", "device"))
    steps_per_execution: int | None = _flag(
        None, "training steps per compiled call (Keras' steps_per_execution): the host waits on the device "
        "less often", default_text="default: 32 on a GPU, 1 on a CPU; always 1 under PyTorch")
    backup_every: int = _flag(200, "steps between mid-epoch backups (there is one at every epoch end too)")
    verbose: int = _flag(1, "Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch",
                         choices=(0, 1, 2))

    @property
    def evaluated_on(self) -> str:
        """The split a run validates on and is scored on, which names its result's scores (``test_top1``):
        ``"holdout"`` (held-out training images) where :attr:`holdout` is set, else ``"test"``."""
        return "holdout" if self.holdout else "test"

    def resolved(self) -> TrainConfig:
        """A copy with the recipe's defaults filled in, checked: every field's type and choices
        (:func:`relu_ratio.flags.check_values`: the CLI, the training queue's JSON and Python callers all
        pass through here), the numbers' ranges, the model name, and settings that exclude each other."""
        filled = self.with_recipe()
        if filled.holdout is not None and filled.test_subset is not None:
            raise ValueError(
                f"holdout ({filled.holdout}) and test_subset ({filled.test_subset}) exclude each other: with "
                "holdout the run validates on held-out training images, never on the test split. Drop one."
            )
        if files.names_nothing(filled.out):
            raise ValueError(f"out must name the run's folder; received {filled.out!r}.")
        data.check_source(filled.dataset)
        data.check_dirs(filled.dataset, filled.data_dir)
        models.check_name(filled.model)
        return filled

    def with_recipe(self) -> TrainConfig:
        """A copy with the recipe's defaults filled in and every value checked (types, choices, ranges):
        what compiling a model needs (:func:`relu_ratio.train.compile_for`); :meth:`resolved` also checks
        what a run needs (the model name, the folder, the data settings)."""
        flags.check_values(self)
        filled = dataclasses.replace(self)
        for key, value in RECIPES[self.recipe].items():
            if getattr(filled, key) is None:
                setattr(filled, key, value)
        filled._check_ranges()  # a value out of range is named as such, whatever the schedule
        if filled.schedule == "step" and filled.warmup_epochs:  # the step schedule has no warm-up
            if self.warmup_epochs is not None:
                raise ValueError(f"warmup_epochs ({self.warmup_epochs}) needs a schedule that warms up "
                                 "(cosine or linear); the step schedule has none. Drop it, or choose "
                                 "cosine.")  # fmt: skip
            filled.warmup_epochs = 0.0  # the recipe's warm-up belongs to its own schedule
        return filled

    def _check_ranges(self) -> None:
        """Every number in its range, before anything runs (the message names the flag and the range)."""
        counts = ("epochs", "batch_size", "backup_every", "train_subset", "test_subset", "holdout",
                  "steps_per_execution")
        for key in counts:
            value = getattr(self, key)
            if value is not None and not is_integer(value, 1):
                raise ValueError(f"{key} must be >= 1 (an integer); received {value!r}.")
        if self.epochs is not None and self.epochs > MAX_EPOCHS:
            raise ValueError(f"epochs {self.epochs} is beyond relu_ratio.train.config.MAX_EPOCHS = "
                             f"{MAX_EPOCHS:,} (the paper trains 164); if you mean it, raise the limit first.")
        check_seed(self.seed)
        ranges = {  # name: (the range in words, the check)
            "lr": ("> 0", lambda v: v > 0),
            "momentum": ("in [0, 1)", lambda v: 0 <= v < 1),
            "weight_decay": (">= 0", lambda v: v >= 0),
            "label_smoothing": ("in [0, 1)", lambda v: 0 <= v < 1),
            "warmup_epochs": (f"in [0, epochs = {self.epochs}]", lambda v: 0 <= v <= self.epochs),
            "ema": ("in (0, 1)", lambda v: 0 < v < 1),
        }
        optional = {"ema"}  # None: off
        for key, (bound, within) in ranges.items():
            value = getattr(self, key)
            if key in optional and value is None:
                continue
            if not is_finite_number(value) or not within(value):
                raise ValueError(f"{key} must be a finite number {bound}; received {value!r}.")



def command_for(config: TrainConfig) -> str:
    """The CLI command that reproduces ``config`` (every setting spelled out)."""
    return flags.command("relu_ratio.train", config, skip=("verbose",))
