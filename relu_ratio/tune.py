"""Search where the ReLUs go: a keras-tuner search over per-stage or per-block ReLU masks.

The paper's future work is to "assemble adaptively the convolutional layer and ReLU". This module
makes the ReLU placement a hyperparameter: :class:`ReLUHyperModel` declares one ``hp.Choice`` per stage
(``granularity="stage"``) or per block position (``granularity="block"``) over the masks a block kind
allows, builds the network with :func:`relu_ratio.models.build_family` and compiles it with the recipe's
optimizer (:func:`relu_ratio.train.compile_for`); the objective is ``val_accuracy``.

Search space (slots and removal orders come from :mod:`relu_ratio.patterns`):

* residual families (``postresnet``, ``resnet``, ``preact``, ``dfnmr``): every 0/1 mask of the block's
  ReLU slots with at least ``min_relus_per_block`` ones (default 1: "at least one ReLU per block"), e.g.
  3 masks for a building block (``01``, ``10``, ``11``), 7 for the bottleneck, 15 for merge-and-run;
* ``plain``: a plain "block" is a single conv-BN(-ReLU) layer, so a per-layer mask with at least one
  ReLU would be all ones. Per stage, the choice is a *ratio* laid periodically over the stage's layers
  (default ``"1:1"``, ``"2:1"``, ``"3:2"``; ``min_relus_per_block`` then bounds ``M`` of each period). With
  ``granularity="block"`` every layer gets a ``"1"``/``"0"`` choice, which needs
  ``min_relus_per_block=0`` and is best bounded with ``min_ratio``/``max_ratio``;
* ``choices=`` replaces the candidate list (masks, ratios or presets, checked against the block kind).

``min_ratio``/``max_ratio`` bound the whole network's conv:ReLU ratio as :func:`relu_ratio.describe`
measures it (main-path convolutions including the stem : every ReLU layer), given as ``"3:2"`` or a
number. Only the whole network can be checked, so, the keras-tuner way, a trial that violates them is
marked failed (``keras_tuner.errors.FailedTrialError``, raised before training) and the search goes on;
the constructor refuses bounds that no configuration meets, and :meth:`ReLUHyperModel.space_size` counts
how many do. The hyperparameters map back to a ``relu_pattern`` with :func:`relu_pattern_from`.

:func:`search` runs a search end to end and writes ``best.json`` (atomically) into the tuner's project
directory. The paper has no validation split (it reports test accuracy), so by default
(``validation="holdout"``) a fixed, seeded slice of the *training* set is held out for validation and
the rest trains; ``validation="test"`` validates on (a subset of) the test split instead, which selects
the pattern on test data.

Example::

    from relu_ratio import tune
    result = tune.search("resnet", 8, dataset="../shared/data", tuner="random", max_trials=6, epochs=1,
                         train_subset=4000, val_subset=1000, directory="runs/tune")
    model = result.build_model()                 # the best pattern, untrained, same builder kwargs
    models.build_family("resnet", 8, result.relu_pattern, classes=10)   # or by hand

Command line (``python -m relu_ratio.tune --help``)::

    python -m relu_ratio.tune --family resnet --depth 8 --tuner random --max-trials 3 --epochs 1 \\
        --train-subset 512 --val-subset 256 --dataset ../shared/data --out runs/tune

Distributed search (keras-tuner's chief/worker mode): start the *same command* in every process, with
``KERASTUNER_TUNER_ID`` (``chief`` for the one process that runs the oracle, ``tuner0``, ``tuner1``...
for the workers), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief serves,
gRPC) set in the environment::

    export KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000
    KERASTUNER_TUNER_ID=chief  python -m relu_ratio.tune --family resnet --depth 8 --out runs/tune &
    KERASTUNER_TUNER_ID=tuner0 python -m relu_ratio.tune --family resnet --depth 8 --out runs/tune &
    KERASTUNER_TUNER_ID=tuner1 python -m relu_ratio.tune --family resnet --depth 8 --out runs/tune

The chief trains nothing: it hands out trials and blocks until the search is over (every worker has
been told to stop and no trial is running; keras-tuner re-checks that every 20 s once the first worker is
done), then prints the trial table and writes ``best.json``. Workers train, report to the chief and exit
when told to stop; they print which trials they ran. ``--out`` must be one directory shared by all
processes (Hyperband resumes a trial from another trial's checkpoint). ``--overwrite`` is honoured only by
the chief, and a worker waits for the chief's server before it touches the directory (up to
``--chief-timeout`` seconds), so the chief's overwrite cannot delete a worker's files. A worker killed in
the middle of a trial leaves that trial running in the oracle and the chief waits for it: restart the worker
with the same ``KERASTUNER_TUNER_ID`` (it resumes) or stop the chief.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import keras
import keras_tuner

from relu_ratio import data, files, models, patterns, train
from relu_ratio.describe import describe
from relu_ratio.patterns import ReLUPattern

TUNERS = ("random", "hyperband", "bayesian")
GRANULARITIES = ("stage", "block")
VALIDATIONS = ("holdout", "test")
PLAIN_CHOICES = ("1:1", "2:1", "3:2")
OBJECTIVE = "val_accuracy"

_STAGE_HP = re.compile(r"^stage(\d+)$")
_BLOCK_HP = re.compile(r"^stage(\d+)_block(\d+)$")


# --- hyperparameters <-> relu_pattern ---------------------------------------------------------


def _values(hyperparameters):
    """The ``{name: value}`` dict of a ``keras_tuner.HyperParameters``; a dict is returned as it is."""
    if hasattr(hyperparameters, "values") and not isinstance(hyperparameters, Mapping):
        return hyperparameters.values
    return hyperparameters


def relu_pattern_from(hyperparameters) -> list:
    """The ``relu_pattern`` spec that a set of search hyperparameters stands for.

    Args:
        hyperparameters: a ``keras_tuner.HyperParameters`` (e.g. ``tuner.get_best_hyperparameters()[0]``)
            or its ``.values`` dict. Keys ``stage1``, ``stage2``... (stage granularity) give one spec per
            stage; keys ``stage1_block1``... (block granularity) give per-stage lists of block masks.
            Other keys (Hyperband's ``tuner/...``) are ignored.

    Returns:
        A list with one entry per stage, which every builder accepts as ``relu_pattern``, e.g.
        ``["11", "01", "01"]`` or ``[["11", "01"], ["01", "01"], ["10", "11"]]``.
    """
    values = _values(hyperparameters)
    if not isinstance(values, Mapping):
        raise ValueError(f"expected HyperParameters or a dict of values; received {hyperparameters!r}.")
    stages: dict[int, str] = {}
    blocks: dict[int, dict[int, str]] = {}
    for key, value in values.items():
        if match := _STAGE_HP.match(str(key)):
            stages[int(match[1])] = str(value)
        elif match := _BLOCK_HP.match(str(key)):
            blocks.setdefault(int(match[1]), {})[int(match[2])] = str(value)
    if bool(stages) == bool(blocks):
        raise ValueError(
            "hyperparameters must hold either per-stage keys ('stage1', 'stage2', ...) or per-block keys "
            f"('stage1_block1', ...), not {'both' if stages else 'neither'}; received keys {sorted(values)}."
        )
    if stages:
        _check_consecutive(stages, "stage")
        return [stages[s] for s in sorted(stages)]
    _check_consecutive(blocks, "stage")
    for s, per_block in blocks.items():
        _check_consecutive(per_block, f"stage{s}_block")
    return [[blocks[s][b] for b in sorted(blocks[s])] for s in sorted(blocks)]


def _check_consecutive(numbered: Mapping[int, object], what: str) -> None:
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ValueError(f"hyperparameter keys {what}N must run 1, 2, ...; found {sorted(numbered)}.")


def _period(choice: str) -> str:
    """The mask a choice repeats: a ratio ``N:M`` is ``N - M`` zeros then ``M`` ones."""
    ratio = patterns.parse_ratio(choice)
    return "0" * (ratio[0] - ratio[1]) + "1" * ratio[1] if ratio else choice


def format_pattern(pattern) -> str:
    """Compact one-line form: ``"11|01|01"`` (per stage) or ``"11,01|01,01|10,11"`` (per block)."""
    if isinstance(pattern, str):
        return pattern
    return "|".join(p if isinstance(p, str) else ",".join(p) for p in pattern)


def parse_ratio_bound(value) -> Fraction | None:
    """``"3:2"``, ``1.5`` or ``"1.5"`` -> ``Fraction(3, 2)``; ``None`` stays ``None``."""
    if value is None:
        return None
    ratio = patterns.parse_ratio(value) if isinstance(value, str) else None
    if ratio is not None:
        n, m = ratio
        if m == 0:
            raise ValueError(f"ratio bound {value!r} has M = 0; give N:M with M >= 1, e.g. '3:2'.")
        return Fraction(n, m)
    try:
        bound = Fraction(str(float(value)))
    except (TypeError, ValueError):
        bound = None
    if bound is None or bound <= 0 or not math.isfinite(float(value)):
        raise ValueError(
            f"ratio bound {value!r} is not understood; give 'N:M' (e.g. '3:2') or a positive number (1.5)."
        )
    return bound


# --- the hypermodel ---------------------------------------------------------------------------


class ReLUHyperModel(keras_tuner.HyperModel):
    """A keras-tuner ``HyperModel`` whose hyperparameters say where the ReLUs of one network go.

    Args:
        family: a key of :data:`relu_ratio.models.FAMILIES` (``plain``, ``postresnet``, ``resnet``,
            ``preact``, ``dfnmr``).
        depth: network depth (checked by the family; invalid depths name the nearest valid ones).
        granularity: ``"stage"`` (one choice per stage, hyperparameters ``stage1``...) or ``"block"`` (one
            per block position, ``stage1_block1``...).
        min_relus_per_block: residual families: masks keep at least this many ReLU slots (0 to all);
            plain with stage granularity: ratios ``N:M`` need ``M >=`` this.
        min_ratio, max_ratio: bounds on the whole network's conv:ReLU ratio as :func:`describe` counts it
            (``"3:2"`` or a number); violating trials fail before training.
        choices: the candidate values of each choice, instead of the defaults (all masks with enough ones;
            for plain stages ``1:1``, ``2:1``, ``3:2``). Masks, ratios and presets are accepted and checked.
        train_config: recipe used by :func:`relu_ratio.train.compile_for` (default: ``fast`` recipe, the
            schedule spanning 1 epoch). Set ``epochs`` to the search's epochs so the schedule spans them.
        steps_per_epoch: optimizer steps per epoch, for the schedule (:func:`search` sets it from the data).
        seed: if given, ``keras.utils.set_random_seed(seed)`` before every build (same initial weights for
            the same pattern).
        **builder_kwargs: passed to :func:`relu_ratio.models.build_family` (``classes``, ``normalization``,
            ``weight_decay``, ``width_multiplier``, ``input_shape``...).
    """

    def __init__(
        self,
        family: str,
        depth: int,
        granularity: str = "stage",
        *,
        min_relus_per_block: int = 1,
        min_ratio=None,
        max_ratio=None,
        choices: Sequence[str] | None = None,
        train_config: train.TrainConfig | None = None,
        steps_per_epoch: int = 1,
        seed: int | None = None,
        name: str | None = None,
        **builder_kwargs,
    ):
        super().__init__(name=name)
        self.spec = models.family_spec(family)
        self.family, self.depth = family, depth
        self.kind = self.spec.kind
        self.blocks_per_stage = self.spec.blocks_per_stage(depth)
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {', '.join(GRANULARITIES)}; received {granularity!r}."
            )
        self.granularity = granularity
        slots = len(self.kind.slots)
        plain_stage = self.kind.periodic and granularity == "stage"  # M of each ratio: no upper bound
        if (
            isinstance(min_relus_per_block, bool)
            or not isinstance(min_relus_per_block, int)
            or not (0 <= min_relus_per_block <= (min_relus_per_block if plain_stage else slots))
        ):
            raise ValueError(
                f"min_relus_per_block must be an integer from 0 to {slots} (the ReLU slots of a "
                f"{self.kind.name}); received {min_relus_per_block!r}."
            )
        self.min_relus_per_block = min_relus_per_block
        self.min_ratio, self.max_ratio = parse_ratio_bound(min_ratio), parse_ratio_bound(max_ratio)
        if self.min_ratio is not None and self.max_ratio is not None and self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio {min_ratio!r} is larger than max_ratio {max_ratio!r}.")
        self.choices = self._make_choices(choices)
        self.default = next((c for c in self.choices if set(c) == {"1"} or c == "1:1"), self.choices[0])
        self.train_config = (train_config or train.TrainConfig(recipe="fast", epochs=1)).resolved()
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be a positive integer; received {steps_per_epoch!r}.")
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.builder_kwargs = dict(builder_kwargs)
        for forbidden in ("relu_pattern", "family", "depth"):
            if forbidden in self.builder_kwargs:
                raise ValueError(f"{forbidden!r} is set by the search; do not pass it as a builder kwarg.")
        if self.space_size()[1] == 0:
            low, high = self._ratio_range()
            raise ValueError(
                f"no configuration of {family}{depth} meets the conv:ReLU ratio bounds "
                f"[{min_ratio}, {max_ratio}]: with these choices the ratio runs from {float(low):.3f} to "
                f"{float(high):.3f} (convs : ReLUs as relu_ratio.describe counts them)."
            )

    # -- the space

    @property
    def positions(self) -> list[tuple[str, int, int | None]]:
        """``(hyperparameter name, stage, block or None)`` for every choice, in order (0-based indices)."""
        if self.granularity == "stage":
            return [(f"stage{s + 1}", s, None) for s in range(len(self.blocks_per_stage))]
        return [
            (f"stage{s + 1}_block{b + 1}", s, b)
            for s, n in enumerate(self.blocks_per_stage)
            for b in range(n)
        ]

    def _make_choices(self, choices) -> tuple[str, ...]:
        kind, m = self.kind, self.min_relus_per_block
        if choices is None:
            if kind.periodic and self.granularity == "stage":
                candidates = PLAIN_CHOICES
            else:
                candidates = ["".join(bits) for bits in itertools.product("10", repeat=len(kind.slots))]
        elif isinstance(choices, str) or not isinstance(choices, Sequence) or not choices:
            raise ValueError(f"choices must be a non-empty list of strings; received {choices!r}.")
        else:
            candidates = choices
        values: list[str] = []
        for choice in candidates:
            value = self._canonical_choice(choice)
            if _period(value).count("1") < m:
                if choices is None:
                    continue
                raise ValueError(
                    f"choice {choice!r} keeps fewer than min_relus_per_block={m} ReLU(s) per "
                    f"{'period' if kind.periodic else 'block'}."
                )
            if value not in values:
                values.append(value)
        if len(values) < 2:
            hint = (
                "For plain networks use granularity='stage' (a ratio per stage), or min_relus_per_block=0 "
                "for per-layer on/off choices."
                if kind.periodic
                else "Lower min_relus_per_block or pass more choices."
            )
            raise ValueError(
                f"the search space for {self.family} ({self.granularity} granularity, min_relus_per_block="
                f"{m}) leaves only {values} to choose from: nothing to search. {hint}"
            )
        return tuple(values)

    def _canonical_choice(self, choice) -> str:
        """A ratio (plain stages) or a mask string, checked against the block kind."""
        if not isinstance(choice, str):
            raise ValueError(f"choice {choice!r} must be a string (a mask, ratio or preset).")
        spec = ReLUPattern(choice).spec  # normalises ratios and presets, rejects nonsense
        if self.kind.periodic and self.granularity == "stage":
            if spec in patterns.PRESETS:
                if spec not in patterns.PLAIN.presets:
                    raise ValueError(f"preset {choice!r} is not defined for plain networks; use a ratio.")
                spec = patterns.PLAIN.presets[spec]
            return spec
        if self.kind.periodic:  # plain, one choice per layer: "1" or "0"
            if spec not in ("0", "1"):
                raise ValueError(
                    f"per-layer choices of a plain network are '1' and '0'; received {choice!r}."
                )
            return spec
        return patterns.mask_to_str(patterns.block_mask(spec, self.kind))

    def declare_hyperparameters(self, hp) -> None:
        for name, _, _ in self.positions:
            hp.Choice(name, list(self.choices), default=self.default)

    def pattern(self, hyperparameters) -> list:
        """:func:`relu_pattern_from`, checked against this model's stages and blocks."""
        pattern = relu_pattern_from(hyperparameters)
        ReLUPattern(pattern).resolve(self.kind, self.blocks_per_stage)
        return pattern

    def masks(self, pattern) -> list[list[str]]:
        """The explicit per-block masks of ``pattern`` (``[stage][block]`` -> ``"011"``)."""
        resolved = ReLUPattern(pattern).resolve(self.kind, self.blocks_per_stage)
        return [[patterns.mask_to_str(mask) for mask in stage] for stage in resolved]

    # -- counting ReLUs without building (the same numbers describe() measures)

    def _block_relus(self, mask: str, last: bool) -> int:
        parsed = tuple(c == "1" for c in mask)
        return patterns.block_relus(self.kind, parsed, merged_output=last and self.spec.two_paths)

    def _position_masks(self, choice: str, stage: int, block: int | None) -> list[str]:
        if block is not None:
            return [choice]
        n = self.blocks_per_stage[stage]
        if self.kind.periodic:
            period = _period(choice)
            return [period[i % len(period)] for i in range(n)]
        return [choice] * n

    def _contribution(self, choice: str, stage: int, block: int | None) -> int:
        masks = self._position_masks(choice, stage, block)
        last_stage = stage == len(self.blocks_per_stage) - 1
        first = block if block is not None else 0
        last_block = self.blocks_per_stage[stage] - 1
        return sum(
            self._block_relus(mask, last_stage and first + i == last_block) for i, mask in enumerate(masks)
        )

    def counts(self, hyperparameters) -> tuple[int, int]:
        """``(convs, relus)`` of the network these hyperparameters build, as :func:`describe` counts."""
        values = _values(hyperparameters)
        relus = self._fixed_relus() + sum(
            self._contribution(str(values[name]), s, b) for name, s, b in self.positions
        )
        return self._convs(), relus

    def _convs(self) -> int:
        return 1 + sum(self.blocks_per_stage) * self.kind.convs

    def _fixed_relus(self) -> int:
        return int(self.spec.stem_bn_relu) + int(self.spec.final_bn_relu)

    def violation(self, convs: int, relus: int) -> str | None:
        """Why ``convs : relus`` breaks the ratio bounds (or the blocks have no ReLU), else ``None``."""
        if relus <= self._fixed_relus():
            return "its blocks have no ReLU at all (M = 0)"
        ratio = Fraction(convs, relus)
        shown = f"conv:ReLU ratio {convs}:{relus} = {float(ratio):.3f}"
        if self.min_ratio is not None and ratio < self.min_ratio:
            return f"{shown} is below min_ratio {float(self.min_ratio):g}"
        if self.max_ratio is not None and ratio > self.max_ratio:
            return f"{shown} is above max_ratio {float(self.max_ratio):g}"
        return None

    def _relu_distribution(self) -> dict[int, int]:
        """How many configurations have each total ReLU count (dynamic programming over positions)."""
        totals = {self._fixed_relus(): 1}
        for _, s, b in self.positions:
            step: dict[int, int] = {}
            for choice in self.choices:
                add = self._contribution(choice, s, b)
                for relus, count in totals.items():
                    step[relus + add] = step.get(relus + add, 0) + count
            totals = step
        return totals

    def space_size(self) -> tuple[int, int]:
        """``(configurations, those within the ratio bounds and with a ReLU in the blocks)``."""
        convs = self._convs()
        totals = self._relu_distribution()
        feasible = sum(n for relus, n in totals.items() if self.violation(convs, relus) is None)
        return sum(totals.values()), feasible

    def _ratio_range(self) -> tuple[Fraction, Fraction]:
        relus = [r for r in self._relu_distribution() if r > 0] or [1]
        return Fraction(self._convs(), max(relus)), Fraction(self._convs(), min(relus))

    # -- keras-tuner hooks

    def build(self, hp) -> keras.Model:
        """Build and compile the network the hyperparameters in ``hp`` describe."""
        values = {
            name: hp.Choice(name, list(self.choices), default=self.default) for name, _, _ in self.positions
        }
        pattern = relu_pattern_from(values)
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        try:
            model = self.build_pattern(pattern)
        except ValueError as error:  # e.g. every ReLU removed: a failed trial, not a crashed search
            raise keras_tuner.errors.FailedTrialError(f"relu_pattern {pattern}: {error}") from error
        return train.compile_for(model, self.train_config, self.steps_per_epoch)

    def fit(self, hp, model, *args, **kwargs):
        """``model.fit``, after failing the trial if the whole-network ratio bounds are broken."""
        measured = describe(model)
        problem = self.violation(measured.convs, measured.relus)
        if problem is not None:
            raise keras_tuner.errors.FailedTrialError(
                f"relu_pattern {format_pattern(relu_pattern_from(hp))} is outside the constraints: {problem}."
            )
        return model.fit(*args, **kwargs)

    def build_pattern(self, pattern, **overrides) -> keras.Model:
        """The (uncompiled) network for an explicit ``relu_pattern``, with this model's builder kwargs."""
        return models.build_family(self.family, self.depth, pattern, **{**self.builder_kwargs, **overrides})


# --- data ---------------------------------------------------------------------------------------


def load_search_data(
    dataset: str | os.PathLike,
    validation: str = "holdout",
    train_subset: int | None = None,
    val_subset: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> tuple[data.Split, data.Split]:
    """Training and validation splits for a search.

    ``validation="holdout"`` (default): a fixed, seeded slice of the training split (``val_subset`` images,
    default 10 %) validates, and ``train_subset`` of the remaining images train; the two never overlap.
    ``validation="test"``: ``train_subset`` training images and ``val_subset`` images of the test split
    (the paper reports test accuracy and has no validation split, but choosing a pattern on test data
    makes that test accuracy optimistic).
    """
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {', '.join(VALIDATIONS)}; received {validation!r}.")
    for label, value in (("train_subset", train_subset), ("val_subset", val_subset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{label} must be a positive integer or None; received {value!r}.")
    full = data.load(dataset, "train", data_dir=data_dir)
    if validation == "test":
        val = data.load(dataset, "test", data_dir=data_dir).take(val_subset, seed)
        return full.take(train_subset, seed), val
    n_val = val_subset if val_subset is not None else max(1, len(full) // 10)
    if n_val >= len(full):
        raise ValueError(
            f"val_subset {n_val} leaves no training images: the training split has {len(full)} images."
        )
    rest, val = full.hold_out(n_val, seed)
    return rest.take(train_subset, seed), val


# --- search -------------------------------------------------------------------------------------


@dataclasses.dataclass
class SearchResult:
    """What :func:`search` found. On a distributed worker only ``role``, ``tuner_id`` and
    ``trials_run_here`` are filled in (the chief holds the results)."""

    role: str  # "single", "chief" or "worker"
    tuner_id: str
    family: str
    depth: int
    granularity: str
    project_dir: str
    relu_pattern: list | None = None  # pass to the builders as relu_pattern=
    masks: list[list[str]] | None = None  # explicit per-block masks [stage][block]
    val_accuracy: float | None = None
    convs: int | None = None
    relus: int | None = None
    ratio: float | None = None
    params: int | None = None
    flops: int | None = None
    hyperparameters: dict | None = None
    builder_kwargs: dict = dataclasses.field(default_factory=dict)
    trials: list[dict] = dataclasses.field(default_factory=list)
    trials_run_here: list[str] = dataclasses.field(default_factory=list)
    space: dict = dataclasses.field(default_factory=dict)
    path: str | None = None  # best.json

    def build_model(self, **overrides) -> keras.Model:
        """The best pattern's network (untrained, uncompiled), with the search's builder kwargs."""
        if self.relu_pattern is None:
            raise ValueError(f"this {self.role} result has no best pattern; the chief's best.json has it.")
        return models.build_family(
            self.family, self.depth, self.relu_pattern, **{**self.builder_kwargs, **overrides}
        )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def distributed_role() -> tuple[str, str]:
    """``(role, tuner_id)`` from keras-tuner's environment: ``("single", "tuner0")`` when not distributed."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single", tuner_id
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise ValueError(
            f"KERASTUNER_ORACLE_IP is set, so this is a distributed search, but {' and '.join(missing)} "
            "is not. Set KERASTUNER_TUNER_ID ('chief' or 'tuner0', 'tuner1'...) and KERASTUNER_ORACLE_PORT."
        )
    return ("chief" if "chief" in tuner_id else "worker"), tuner_id


def _wait_for_chief(timeout: float) -> None:
    import grpc

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise RuntimeError(
            f"no keras-tuner chief answered at {address} within {timeout:g} s. Start the chief "
            "(KERASTUNER_TUNER_ID=chief) with the same command, or raise --chief-timeout."
        ) from None
    finally:
        channel.close()


def _tuner_class(name: str):
    bases = {
        "random": keras_tuner.RandomSearch,
        "hyperband": keras_tuner.Hyperband,
        "bayesian": keras_tuner.BayesianOptimization,
    }
    if name not in bases:
        raise ValueError(f"unknown tuner {name!r}{models.suggest(name, bases)}. Valid: {', '.join(TUNERS)}.")

    class Recording(bases[name]):
        """Remembers which trials this process ran (in distributed mode: this worker)."""

        def on_trial_end(self, trial):
            self.trials_run_here = [*getattr(self, "trials_run_here", []), trial.trial_id]
            super().on_trial_end(trial)

    Recording.__name__ = bases[name].__name__
    return Recording


def search(
    family: str,
    depth: int,
    *,
    dataset: str | os.PathLike = "cifar10",
    tuner: str = "random",
    granularity: str = "stage",
    min_relus_per_block: int = 1,
    min_ratio=None,
    max_ratio=None,
    choices: Sequence[str] | None = None,
    max_trials: int | None = 10,
    epochs: int = 1,
    hyperband_factor: int = 3,
    validation: str = "holdout",
    train_subset: int | None = None,
    val_subset: int | None = None,
    batch_size: int | None = None,
    recipe: str = "fast",
    weight_decay: float = 1e-4,
    directory: str | os.PathLike = "runs/tune",
    project_name: str | None = None,
    overwrite: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    max_consecutive_failed_trials: int | None = None,
    chief_timeout: float = 3600.0,
    verbose: int = 1,
    **builder_kwargs,
) -> SearchResult:
    """Search the ReLU placement of ``family``/``depth`` on ``dataset``; returns the best pattern.

    Args:
        family, depth, granularity, min_relus_per_block, min_ratio, max_ratio, choices: the search space,
            see :class:`ReLUHyperModel`.
        dataset: ``"cifar10"``, ``"cifar100"`` or a local folder/archive (:func:`relu_ratio.data.load`).
        tuner: ``"random"`` (RandomSearch), ``"hyperband"`` (Hyperband, ``max_epochs=epochs``,
            ``factor=hyperband_factor``; ``max_trials`` caps its trial count) or ``"bayesian"``
            (BayesianOptimization; needs scikit-learn).
        max_trials: number of trials (a trial that fails the ratio bounds counts as one).
        epochs: training epochs per trial (Hyperband: the most a trial gets); the recipe's schedule spans it.
        validation, train_subset, val_subset, seed: see :func:`load_search_data`.
        batch_size, recipe: training recipe (:data:`relu_ratio.train.RECIPES`; default ``fast``).
        weight_decay: coupled L2 on kernels, as in :mod:`relu_ratio.train`.
        directory, project_name, overwrite: keras-tuner's; the project directory is
            ``directory/project_name`` (default ``{family}{depth}_{granularity}_{tuner}``).
        max_consecutive_failed_trials: stop after this many failed trials in a row (default 3, or 25 with
            ratio bounds, whose violations are failed trials).
        chief_timeout: distributed workers wait this long for the chief's server.
        verbose: keras-tuner's and ``model.fit``'s verbosity.
        **builder_kwargs: extra :func:`relu_ratio.models.build_family` arguments (``width_multiplier``...).

    Returns:
        A :class:`SearchResult`; the chief (or a non-distributed process) also writes it to
        ``<project_dir>/best.json``.

    Raises:
        ValueError: bad settings (the message names the value and what is valid).
        RuntimeError: no trial completed (the message carries the last failure).
    """
    role, tuner_id = distributed_role()
    tuner_cls = _tuner_class(tuner)
    for label, value, low in (("epochs", epochs, 1), ("hyperband_factor", hyperband_factor, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}; received {value!r}.")
    if max_trials is not None and (
        isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1
    ):
        raise ValueError(f"max_trials must be a positive integer; received {max_trials!r}.")
    config = train.TrainConfig(
        recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed, weight_decay=weight_decay
    ).resolved()
    space = functools.partial(
        ReLUHyperModel,
        family,
        depth,
        granularity,
        min_relus_per_block=min_relus_per_block,
        min_ratio=min_ratio,
        max_ratio=max_ratio,
        choices=choices,
    )
    space()  # check the space before touching data, so bad settings fail fast

    keras.utils.set_random_seed(seed)
    train_split, val_split = load_search_data(dataset, validation, train_subset, val_subset, seed, data_dir)
    info = train_split.info
    kwargs = {
        "classes": info.num_classes,
        "normalization": [list(info.mean), list(info.std)],
        "weight_decay": weight_decay,
        **builder_kwargs,
    }
    train_batches = data.batches(train_split, config.batch_size, augment=True, seed=seed, one_hot=True)
    val_batches = data.batches(val_split, 256, one_hot=True)
    hypermodel = space(
        train_config=config,
        steps_per_epoch=len(train_batches),
        seed=seed,
        **kwargs,
    )
    constrained = hypermodel.min_ratio is not None or hypermodel.max_ratio is not None
    if max_consecutive_failed_trials is None:
        max_consecutive_failed_trials = 25 if constrained else 3
    project_name = project_name or f"{family}{depth}_{granularity}_{tuner}"
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "seed": seed,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": bool(overwrite) and role != "worker",
        "max_consecutive_failed_trials": max_consecutive_failed_trials,
    }
    if tuner == "hyperband":
        common.update(max_epochs=epochs, factor=hyperband_factor)
    else:
        common.update(max_trials=max_trials)
    if role == "worker":
        _wait_for_chief(chief_timeout)
    try:
        instance = tuner_cls(**common)
    except ImportError as error:
        raise ValueError(f"tuner {tuner!r} cannot run here: {error}") from error
    if tuner == "hyperband" and max_trials is not None and role != "worker":
        instance.oracle.max_trials = max_trials
    instance.search(train_batches, validation_data=val_batches, epochs=epochs, verbose=verbose)

    result = SearchResult(
        role=role,
        tuner_id=tuner_id,
        family=family,
        depth=depth,
        granularity=granularity,
        project_dir=os.fspath(instance.project_dir),
        builder_kwargs=kwargs,
        trials_run_here=list(getattr(instance, "trials_run_here", [])),
    )
    if role == "worker":  # the oracle (and so the results) live in the chief, which may be gone already
        return result
    return _finish(result, instance, hypermodel)


def _finish(result: SearchResult, tuner, hypermodel: ReLUHyperModel) -> SearchResult:
    oracle = tuner.oracle
    trials = sorted(oracle.trials.values(), key=lambda t: t.trial_id)
    result.trials = [_trial_row(t, hypermodel) for t in trials]
    total, feasible = hypermodel.space_size()
    result.space = {
        "hyperparameters": [name for name, _, _ in hypermodel.positions],
        "choices": list(hypermodel.choices),
        "configurations": total,
        "feasible": feasible,
    }
    completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    if not completed:
        last = next((t.message for t in reversed(trials) if t.message), "no trial ran")
        raise RuntimeError(
            f"no trial of the search in {result.project_dir} completed. Last failure:\n{last.strip()}"
        )
    best = oracle.get_best_trials(1)[0]
    pattern = hypermodel.pattern(best.hyperparameters)
    measured = describe(hypermodel.build_pattern(pattern))
    result.relu_pattern = pattern
    result.masks = hypermodel.masks(pattern)
    result.val_accuracy = float(best.score)
    result.convs, result.relus = measured.convs, measured.relus
    result.ratio, result.params, result.flops = measured.ratio, measured.params, measured.flops
    result.hyperparameters = dict(best.hyperparameters.values)
    path = Path(result.project_dir) / "best.json"
    result.path = os.fspath(path)
    files.write_json(path, {**result.to_json(), "trial_id": best.trial_id})
    return result


def _trial_row(trial, hypermodel: ReLUHyperModel) -> dict:
    values = trial.hyperparameters.values
    row = {
        "trial_id": trial.trial_id,
        "status": trial.status,
        "val_accuracy": None if trial.score is None else float(trial.score),
        "epochs": values.get("tuner/epochs"),
    }
    try:
        pattern = relu_pattern_from(values)
        convs, relus = hypermodel.counts(values)
        row.update(pattern=format_pattern(pattern), convs=convs, relus=relus)
    except (KeyError, ValueError):
        row.update(pattern=None, convs=None, relus=None)
    if trial.message:
        row["message"] = trial.message.strip().splitlines()[-1]
    return row


def trial_table(result: SearchResult) -> str:
    """The trials as a small text table (best first among the completed ones)."""
    rows = sorted(result.trials, key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0)))
    lines = [f"{'trial':<6}{'status':<11}{'val_acc':>8}  {'convs:ReLUs':<13}pattern"]
    for r in rows:
        acc = "-" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        counts = f"{r['convs']}:{r['relus']}" if r.get("relus") else "-"
        note = f"  ({r['message']})" if r.get("message") and r["status"] != "COMPLETED" else ""
        epochs = f"  [{r['epochs']} ep]" if r.get("epochs") else ""
        lines.append(f"{r['trial_id']:<6}{r['status']:<11}{acc:>8}  {counts:<13}{r['pattern']}{epochs}{note}")
    return "\n".join(lines)


# --- CLI ----------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(
        prog="python -m relu_ratio.tune",
        description=doc[0] + " Prints the trial table and the best relu_pattern; writes best.json into "
        "OUT/PROJECT_NAME.",
        epilog="Distributed: run the same command in every process with KERASTUNER_TUNER_ID=chief (one "
        "process, serves the oracle) or tuner0, tuner1... (workers), and KERASTUNER_ORACLE_IP / "
        "KERASTUNER_ORACLE_PORT set to where the chief listens. All processes must share --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("search space")
    g.add_argument("--family", default="resnet", help=f"network family: {', '.join(models.FAMILIES)}")
    g.add_argument("--depth", type=int, default=8, help="network depth (valid depths depend on the family)")
    g.add_argument(
        "--granularity",
        choices=GRANULARITIES,
        default="stage",
        help="one choice per stage or per block position",
    )
    g.add_argument(
        "--min-relus-per-block",
        type=int,
        default=1,
        help="masks keep at least this many ReLUs per block (plain: M of each ratio N:M)",
    )
    g.add_argument("--min-ratio", default=None, help="lowest whole-net conv:ReLU ratio, e.g. 1.2 or 6:5")
    g.add_argument("--max-ratio", default=None, help="highest whole-net conv:ReLU ratio, e.g. 2 or 2:1")
    g.add_argument(
        "--choices",
        default=None,
        help="comma-separated candidates instead of the defaults, e.g. 011,101,111 or 1:1,2:1",
    )
    g = p.add_argument_group("search")
    g.add_argument("--tuner", choices=TUNERS, default="random", help="keras-tuner algorithm")
    g.add_argument("--max-trials", type=int, default=10, help="trials (Hyperband: an upper bound)")
    g.add_argument("--epochs", type=int, default=1, help="epochs per trial (Hyperband: the most)")
    g.add_argument("--hyperband-factor", type=int, default=3, help="Hyperband's reduction factor")
    g.add_argument("--seed", type=int, default=0, help="seed for data subsets, sampling and initialisation")
    g.add_argument("--out", default="runs/tune", help="tuner directory (shared by all distributed processes)")
    g.add_argument("--project-name", default=None, help="default: {family}{depth}_{granularity}_{tuner}")
    g.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming the project")
    g.add_argument(
        "--max-consecutive-failed-trials",
        type=int,
        default=None,
        help="stop after this many failed trials in a row (default 3, 25 with ratio bounds)",
    )
    g.add_argument(
        "--chief-timeout", type=float, default=3600.0, help="workers wait this long for the chief (s)"
    )
    g.add_argument("--verbose", type=int, default=1, help="keras-tuner / model.fit verbosity (0, 1, 2)")
    g = p.add_argument_group("data and training")
    g.add_argument(
        "--dataset",
        default="cifar10",
        help="cifar10, cifar100, or a folder/archive laid out split/label/image (e.g. ../shared/data)",
    )
    g.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    g.add_argument(
        "--validation",
        choices=VALIDATIONS,
        default="holdout",
        help="holdout: a fixed slice of the training split validates; test: the test split",
    )
    g.add_argument("--train-subset", type=int, default=None, help="training images (default: all remaining)")
    g.add_argument(
        "--val-subset",
        type=int,
        default=None,
        help="validation images (holdout default: 10%% of train; test default: all)",
    )
    g.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    g.add_argument("--recipe", choices=sorted(train.RECIPES), default="fast", help="training recipe")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="coupled L2 on kernels")
    g.add_argument("--width-multiplier", type=float, default=1.0, help="scales the widths 16/32/64")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    start = time.time()
    try:
        result = search(
            args.family,
            args.depth,
            dataset=args.dataset,
            tuner=args.tuner,
            granularity=args.granularity,
            min_relus_per_block=args.min_relus_per_block,
            min_ratio=args.min_ratio,
            max_ratio=args.max_ratio,
            choices=args.choices.split(",") if args.choices else None,
            max_trials=args.max_trials,
            epochs=args.epochs,
            hyperband_factor=args.hyperband_factor,
            validation=args.validation,
            train_subset=args.train_subset,
            val_subset=args.val_subset,
            batch_size=args.batch_size,
            recipe=args.recipe,
            weight_decay=args.weight_decay,
            directory=args.out,
            project_name=args.project_name,
            overwrite=args.overwrite,
            seed=args.seed,
            data_dir=args.data_dir,
            max_consecutive_failed_trials=args.max_consecutive_failed_trials,
            chief_timeout=args.chief_timeout,
            verbose=args.verbose,
            width_multiplier=args.width_multiplier,
        )
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    wall = time.time() - start
    if result.role == "worker":
        print(
            f"worker {result.tuner_id} ran trials {result.trials_run_here} in {wall:.1f} s; "
            f"the chief writes {result.project_dir}/best.json"
        )
        return 0
    print(trial_table(result))
    space = result.space
    print(
        f"\nsearch space: {len(space['hyperparameters'])} choice(s) of {space['choices']}: "
        f"{space['configurations']:,} configurations, {space['feasible']:,} within the constraints"
    )
    print(
        f"best: val_accuracy {result.val_accuracy:.4f} | {result.family}{result.depth}: {result.convs} convs "
        f": {result.relus} ReLUs = {result.ratio:.2f} | {result.params:,} params"
    )
    print(f"relu_pattern = {json.dumps(result.relu_pattern)}")
    print(f"per-block masks = {json.dumps(result.masks)}")
    print(f"wrote {result.path} ({wall:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
