"""The paper's experiments as data: which models each compares, and the numbers the papers published.

An :class:`Experiment` lists its :class:`Variant` runs (a model name, the group it is plotted in, a label)
and the :class:`Published` accuracies to show beside ours. A :class:`Budget` says how long each run trains;
every setting of one is checked as it is made (from Python, the CLI or an experiment's ``experiment.json``).
Published numbers are the papers' (original CIFAR, 400 epochs, mean of 5 runs), never ours; they are taken
from the sources named in ``Published.source``.

Example:
    >>> from relu_ratio.experiments import EXPERIMENTS
    >>> [v.model for v in EXPERIMENTS["table2"].variants][:2]
    ['resnet62_11', 'resnet62_21']
"""

from __future__ import annotations

import dataclasses

from relu_ratio import files, flags, models
from relu_ratio.train.config import TrainConfig
from relu_ratio.validators import check_seed, repeated, suggest


@dataclasses.dataclass(frozen=True)
class Variant:
    """One network of an experiment: ``model`` (a registry-style name), its plot ``group`` and ``label``."""

    model: str
    group: str
    label: str

    def __post_init__(self):
        flags.check_values(self)
        try:  # a name the builders take: a typo is named before any run
            models.check_name(self.model)
        except ValueError as error:
            raise ValueError(f"variant model {self.model!r}: {error}") from None


@dataclasses.dataclass(frozen=True)
class Published:
    """A top-1 accuracy (%) a paper reports for ``model`` on ``dataset``."""

    model: str
    dataset: str
    top1: float
    source: str

    def __post_init__(self):
        flags.check_values(self)
        if not 0 <= self.top1 <= 100:
            raise ValueError(f"top1 of {self.model} must be a percentage from 0 to 100; received "
                             f"{self.top1!r}.")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment: its ``name`` (its folder's name too), ``title``, the :class:`Variant` runs it compares
    (one model each), the :class:`Published` numbers shown beside them, and notes for its reports. Checked as
    it is made, so that a mistake in one's own experiment is named before a run trains.

    >>> Experiment("mine", "ResNet-20", (Variant("resnet20_11", "d20", "paired"),) * 2)
    Traceback (most recent call last):
    ValueError: experiment 'mine' lists resnet20_11 twice: each variant is one model (its runs' folders).
    """

    name: str
    title: str
    variants: tuple[Variant, ...]
    published: tuple[Published, ...] = ()
    note: str = ""  # on the experiment itself: printed in every report of it
    zoo_note: str = ""  # on the zoo's trained entries: printed on the results page only

    def __post_init__(self):
        try:
            flags.check_values(self)
        except ValueError as error:
            raise ValueError(f"experiment {self.name!r}: {error}") from None
        if not files.names_one_entry(self.name):
            raise ValueError(f"an experiment's name names its folder (not blank, no '/'); received "
                             f"{self.name!r}.")  # fmt: skip
        if not self.variants:
            raise ValueError(f"experiment {self.name!r} has no variants: list the models it compares.")
        listed: dict[tuple, str] = {}  # each network once, whatever name it is given (models.network_of)
        for variant in self.variants:
            network = models.network_of(variant.model)
            if network in listed:
                first = listed[network]
                also = "" if first == variant.model else f" (as {variant.model}, another name for it)"
                raise ValueError(f"experiment {self.name!r} lists {first} twice{also}: each variant is one "
                                 "model (its runs' folders).")  # fmt: skip
            listed[network] = variant.model
        unmatched = sorted({p.model for p in self.published} - {v.model for v in self.variants})
        if unmatched:
            raise ValueError(f"experiment {self.name!r} has published numbers for {', '.join(unmatched)}, "
                             "which none of its variants trains: each is shown beside its variant.")

    def published_for(self, model: str) -> list[Published]:
        return [p for p in self.published if p.model == model]


def check_seeds(seeds: object) -> None:
    """Refuse (``ValueError``) what is not one or more different seeds (each seed is one run folder).

    >>> check_seeds([0, 0])
    Traceback (most recent call last):
    ValueError: seeds must be one or more different seeds (each seed is one run folder); received [0, 0].
    """
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds must be a list of seeds, e.g. [0, 1, 2]; received {seeds!r}.")
    seeds = list(seeds)
    for seed in seeds:
        check_seed(seed, f"seed {seed!r} of seeds {seeds}: a seed")
    if not seeds or repeated(seeds):
        raise ValueError(f"seeds must be one or more different seeds (each seed is one run folder); "
                         f"received {seeds}.")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Budget:
    """How each run of an experiment trains. ``None`` takes the recipe's value (or the whole split).

    Checked as it is made: the seeds (:func:`check_seeds`), every field against its type
    (:func:`relu_ratio.flags.check_values`), and the training settings as a run checks them (the recipe's
    name, the ranges: :meth:`relu_ratio.train.TrainConfig.with_recipe`); a ``ValueError`` names the field,
    the value received and what is valid.

    >>> Budget("mine", "fast", "abc", None, None, (0,))
    Traceback (most recent call last):
    ValueError: epochs must be an integer or None (null); received 'abc'.
    """

    name: str
    recipe: str
    epochs: int | None
    train_subset: int | None
    test_subset: int | None
    seeds: tuple[int, ...]
    batch_size: int | None = None

    def __post_init__(self):
        check_seeds(self.seeds)
        flags.check_values(self)
        settings = ("recipe", "epochs", "train_subset", "test_subset", "batch_size")
        TrainConfig(**{key: getattr(self, key) for key in settings}).with_recipe()

    def describe(self) -> str:
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}" if self.epochs else "the recipe's epochs"
        train = f"{self.train_subset:,} training images" if self.train_subset else "all training images"
        if self.batch_size:
            train += f" in batches of {self.batch_size}"
        test = f"{self.test_subset:,} test images" if self.test_subset else "the whole test split"
        seeds = f"seed{'s' * (len(self.seeds) > 1)} {', '.join(map(str, self.seeds))}"
        return f"`{self.recipe}` recipe, {epochs} on {train}, tested on {test}, {seeds}"


BUDGETS: dict[str, Budget] = {
    "paper": Budget("paper", "paper", None, None, None, (0, 1, 2, 3, 4)),  # 400 epochs, 5 seeds
    "fast": Budget("fast", "fast", 30, None, None, (0,)),
    "tiny": Budget("tiny", "fast", 1, 256, 256, (0,), batch_size=64),  # smoke run (table2: ~9 min, 2 CPUs)
}

PAIRED, RATIO_21 = "paired (1:1)", "2:1 (first ReLU removed)"
ZHAO = "Zhao et al. 2017"
HE = "He et al. 2016 (Identity Mappings)"


def _pairs(family: str, depths, second: str = "21", label: str = RATIO_21) -> tuple[Variant, ...]:
    return tuple(
        Variant(f"{family}{d}_{token}", f"depth {d}", name)
        for d in depths
        for token, name in (("11", PAIRED), (second, label))
    )


def _published(source: str, dataset: str, **top1: float) -> tuple[Published, ...]:
    return tuple(Published(model, dataset, value, source) for model, value in top1.items())


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "table1",
            "Table I: plain networks, paired vs 2:1",
            _pairs("plain", (38, 62, 84), label="2:1 (ReLU after every 2nd conv)"),
            _published(f"{ZHAO} Table I", "CIFAR-100", plain38_11=64.04, plain38_21=64.25, plain62_11=56.88,
                       plain62_21=60.86, plain84_11=44.16, plain84_21=55.98),
            note="Plain networks get harder to train with depth, the paired ones most: the paper's gap grows "
            "from depth 38 to depth 84.",
            zoo_note="Ours at depth 84 shows it more strongly: the paired network's BatchNorm moving "
            "variances grew beyond float16's range (its model card lists the arrays kept in float32), so "
            "that difference says more about trainability than about the ratio.",
        ),
        Experiment(
            "table2",
            "Table II: pre-activation ResNets (building block), paired vs first ReLU removed",
            _pairs("resnet", (62, 110, 164)),
            _published(f"{ZHAO} Table II", "CIFAR-10", resnet62_11=93.59, resnet62_21=93.97)
            + _published(f"{ZHAO} Table II", "CIFAR-100", resnet62_11=71.43, resnet62_21=72.19,
                         resnet110_11=72.46, resnet110_21=73.41, resnet164_11=73.00, resnet164_21=74.12)
            + _published(HE, "CIFAR-10", resnet110_11=93.63),
        ),
        Experiment(
            "figs7_8",
            "Figs. 7-8: pre-activation bottleneck ResNets, paired vs Type 1/2/3",
            tuple(
                Variant(f"preact{d}_{token}", f"depth {d}", label)
                for d in (110, 164)
                for token, label in (("11", PAIRED), ("32", "Type 1 (3:2, first ReLU removed)"),
                                     ("type2", "Type 2 (second ReLU removed)"),
                                     ("type3", "Type 3 (third ReLU removed)"))
            ),
            _published(HE, "CIFAR-10", preact164_11=94.54) + _published(HE, "CIFAR-100", preact164_11=75.67),
            note="The paper shows these as curves (Figs. 7-8) without a table; only He et al.'s paired "
            "ResNet-164 is listed. Types 2/3 of the bottleneck are our reading of Fig. 8.",
        ),
        Experiment(
            "table3",
            "Table III: DFN-MR, paired vs Type 1/2",
            (
                Variant("dfnmr110_11", "depth 110", PAIRED),
                Variant("dfnmr110_43", "depth 110", "Type 1 (4:3, ReLU after one sum removed)"),
                Variant("dfnmr110_type2", "depth 110", "Type 2 (ReLU inside one branch removed)"),
            ),
            _published(f"{ZHAO} Table III", "CIFAR-10", dfnmr110_11=95.04, dfnmr110_43=95.26)
            + _published(f"{ZHAO} Table III", "CIFAR-100", dfnmr110_11=75.59, dfnmr110_43=75.61,
                         dfnmr110_type2=74.53),
        ),
        Experiment(
            "erase_relu",
            "EraseReLU: the last ReLU of every module erased",
            tuple(
                Variant(f"{family}{d}_{token}", f"{title} {d}", label)
                for family, d, title in (("resnet", 110, "pre-act ResNet"), ("preact", 164, "bottleneck"))
                for token, label in (("11", PAIRED), ("erase_last", "last ReLU erased"))
            ),
            note="EraseReLU (arXiv 1709.07634) reports other setups; no published number is listed here.",
        ),
    )
}  # fmt: skip


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name raises a ``ValueError`` with a suggestion."""
    return EXPERIMENTS[_check(name, EXPERIMENTS, "experiment")]


def budget(name: str) -> Budget:
    """The training budget called ``name`` (``ValueError`` naming the budgets there are).

    >>> budget("tiny").epochs
    1
    """
    return BUDGETS[_check(name, BUDGETS, "budget")]


def _check(name: str, choices: dict, what: str) -> str:
    if name in choices:
        return name
    raise ValueError(f"unknown {what} {name!r}{suggest(name, choices)}. Valid: {', '.join(choices)}.")
