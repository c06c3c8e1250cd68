"""The search space of a ReLU-placement search: hyperparameters <-> ``relu_pattern``, and the keras-tuner
:class:`ReLUHyperModel` that declares, constrains, counts and builds it.

Example:
    >>> from relu_ratio.tune.space import ReLUHyperModel
    >>> ReLUHyperModel("resnet", 8).space_size()
    (27, 27)
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction

import keras
import keras_tuner

from relu_ratio import data, models, patterns, train
from relu_ratio.describe import describe
from relu_ratio.patterns import ReLUPattern
from relu_ratio.validators import is_integer

GRANULARITIES = ("stage", "block")
PLAIN_CHOICES = ("1:1", "2:1", "3:2")

_STAGE_HP = re.compile(r"stage([1-9][0-9]*)", re.ASCII)  # fullmatch: one spelling per key
_BLOCK_HP = re.compile(r"stage([1-9][0-9]*)_block([1-9][0-9]*)", re.ASCII)
_STAGE_LIKE = re.compile(r"\s*stage\s*[0-9]", re.IGNORECASE)  # meant as a stage's key, not spelt as one


# --- hyperparameters <-> relu_pattern ---------------------------------------------------------


def _values(hyperparameters):
    """The ``{name: value}`` dict of a ``keras_tuner.HyperParameters``; a dict is returned as it is."""
    if hasattr(hyperparameters, "values") and not isinstance(hyperparameters, Mapping):
        return hyperparameters.values
    return hyperparameters


def relu_pattern_from(hyperparameters: keras_tuner.HyperParameters | Mapping[str, object]) -> list:
    """The ``relu_pattern`` spec that a set of search hyperparameters stands for.

    Args:
        hyperparameters: a ``keras_tuner.HyperParameters`` (e.g. ``tuner.get_best_hyperparameters()[0]``)
            or its ``.values`` dict. Keys ``stage1``, ``stage2``... (stage granularity) give one spec per
            stage; keys ``stage1_block1``... (block granularity) give per-stage lists of block masks.
            Other keys (Hyperband's ``tuner/...``) are ignored; a stage's key spelt otherwise
            (``stage0``, ``Stage 1``) is refused.

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
        if match := _STAGE_HP.fullmatch(str(key)):
            stages[int(match[1])] = str(value)
        elif match := _BLOCK_HP.fullmatch(str(key)):
            blocks.setdefault(int(match[1]), {})[int(match[2])] = str(value)
        elif _STAGE_LIKE.match(str(key)):  # 'stage0', 'Stage 1', 'stage1_blk2': a stage lost, silently
            raise ValueError(f"hyperparameter key {key!r} is neither 'stageN' nor 'stageN_blockM' (N and M "
                             "from 1, e.g. 'stage1', 'stage2_block3').")  # fmt: skip
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


def format_pattern(pattern: str | Sequence) -> str:
    """Compact one-line form: ``"11|01|01"`` (per stage) or ``"11,01|01,01|10,11"`` (per block)."""
    if isinstance(pattern, str):
        return pattern
    return "|".join(p if isinstance(p, str) else ",".join(p) for p in pattern)


def parse_ratio_bound(value: str | float | None) -> Fraction | None:
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
        if not (is_integer(min_relus_per_block, 0) and (plain_stage or min_relus_per_block <= slots)):
            valid = ("an integer >= 0 (the M of each N:M ratio)" if plain_stage
                     else f"an integer from 0 to {slots} (the ReLU slots of a {self.kind.name})")  # fmt: skip
            raise ValueError(f"min_relus_per_block must be {valid}; received {min_relus_per_block!r}.")
        self.min_relus_per_block = min_relus_per_block
        self.min_ratio, self.max_ratio = parse_ratio_bound(min_ratio), parse_ratio_bound(max_ratio)
        if self.min_ratio is not None and self.max_ratio is not None and self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio {min_ratio!r} is larger than max_ratio {max_ratio!r}.")
        self.choices = self._make_choices(choices)
        self.default = next((c for c in self.choices if set(c) == {"1"} or c == "1:1"), self.choices[0])
        self.train_config = (train_config or train.TrainConfig(recipe="fast", epochs=1)).resolved()
        if not is_integer(steps_per_epoch, 1):
            raise ValueError(f"steps_per_epoch must be a positive integer; received {steps_per_epoch!r}.")
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.builder_kwargs = dict(builder_kwargs)
        self._convs = models.counts(family, depth).convs  # the same for every pattern
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
            if patterns.period(value).relus < m:
                if choices is None:
                    continue
                raise ValueError(
                    f"choice {choice!r} keeps fewer than min_relus_per_block={m} ReLU(s) per "
                    f"{'period' if kind.periodic else 'block'}."
                )
            if value not in values:
                values.append(value)
        if len(values) < 2:
            if choices is not None:
                ones = "1" * len(kind.slots)
                ratios = kind.periodic and self.granularity == "stage"
                example = "1:1,2:1" if ratios else f"{ones},0{ones[1:]}"
                hint = f"Pass two or more different choices (e.g. {example})."
            elif kind.periodic:
                hint = ("For plain networks use granularity='stage' (a ratio per stage), or "
                        "min_relus_per_block=0 for per-layer on/off choices.")  # fmt: skip
            else:
                hint = "Lower min_relus_per_block or pass more choices."
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

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> dict[str, str]:
        """Declare one ``Choice`` per position (keras-tuner calls this before the first trial; :meth:`build`
        reads the values); returns ``{name: value}``."""
        return {
            name: hp.Choice(name, list(self.choices), default=self.default) for name, _, _ in self.positions
        }

    def pattern(self, hyperparameters: keras_tuner.HyperParameters | Mapping[str, object]) -> list:
        """:func:`relu_pattern_from`, checked against this model's stages and blocks."""
        pattern = relu_pattern_from(hyperparameters)
        ReLUPattern(pattern).resolve(self.kind, self.blocks_per_stage)
        return pattern

    def masks(self, pattern) -> list[list[str]]:
        """The explicit per-block masks of ``pattern`` (``[stage][block]`` -> ``"011"``)."""
        resolved = ReLUPattern(pattern).resolve(self.kind, self.blocks_per_stage)
        return [[patterns.mask_to_str(mask) for mask in stage] for stage in resolved]

    # -- counting ReLUs without building (the same numbers describe() measures)

    def _position_masks(self, choice: str, stage: int, block: int | None) -> tuple[patterns.Mask, ...]:
        """The masks of the blocks one choice decides: its stage's, or its one block's."""
        if block is None:
            return patterns.stage_masks(choice, self.kind, self.blocks_per_stage[stage])
        return patterns.stage_masks((choice,), self.kind, 1)

    def _contribution(self, choice: str, stage: int, block: int | None) -> int:
        """The ReLUs ``choice`` puts in the blocks of its position (as :func:`relu_ratio.models.counts`)."""
        first = 0 if block is None else block
        masks = self._position_masks(choice, stage, block)
        per_stage = self.blocks_per_stage
        return sum(self.spec.block_relus(m, stage, first + i, per_stage) for i, m in enumerate(masks))

    def counts(self, hyperparameters) -> tuple[int, int]:
        """``(convs, relus)`` of the network these hyperparameters build, as :func:`describe` counts (and
        :func:`relu_ratio.models.counts`, which refuses a pattern without ReLUs: this counts it)."""
        values = _values(hyperparameters)
        relus = self.spec.fixed_relus + sum(
            self._contribution(str(values[name]), s, b) for name, s, b in self.positions
        )
        return self._convs, relus

    def violation(self, convs: int, relus: int) -> str | None:
        """Why ``convs : relus`` breaks the ratio bounds (or the blocks have no ReLU), else ``None``."""
        if relus <= self.spec.fixed_relus:
            return "its blocks have no ReLU at all (M = 0)"
        ratio = Fraction(convs, relus)
        shown = f"conv:ReLU ratio {convs}:{relus} = {float(ratio):.3f}"
        if self.min_ratio is not None and ratio < self.min_ratio:
            return f"{shown} is below min_ratio {float(self.min_ratio):g}"
        if self.max_ratio is not None and ratio > self.max_ratio:
            return f"{shown} is above max_ratio {float(self.max_ratio):g}"
        return None

    def within_bounds(self, hyperparameters) -> bool:
        """Whether the network these hyperparameters build meets the ratio bounds (and keeps a ReLU in its
        blocks): :meth:`violation` of :meth:`counts`, without building it."""
        return self.violation(*self.counts(hyperparameters)) is None

    def _relu_distribution(self) -> dict[int, int]:
        """How many configurations have each total ReLU count (dynamic programming over positions)."""
        totals = {self.spec.fixed_relus: 1}
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
        convs = self._convs
        totals = self._relu_distribution()
        feasible = sum(n for relus, n in totals.items() if self.violation(convs, relus) is None)
        return sum(totals.values()), feasible

    def _ratio_range(self) -> tuple[Fraction, Fraction]:
        relus = [r for r in self._relu_distribution() if r > 0] or [1]
        return Fraction(self._convs, max(relus)), Fraction(self._convs, min(relus))

    # -- keras-tuner hooks

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Build and compile the network the hyperparameters in ``hp`` describe, its optimizer built: a
        checkpoint loaded into it (Hyperband's continued trial) restores the optimizer's momentum with the
        weights, where Keras skips the variables of an unbuilt optimizer (with a warning)."""
        pattern = relu_pattern_from(self.declare_hyperparameters(hp))
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        try:
            model = self.build_pattern(pattern)
        except ValueError as error:  # e.g. every ReLU removed: a failed trial, not a crashed search
            raise keras_tuner.errors.FailedTrialError(f"relu_pattern {pattern}: {error}") from error
        model = train.compile_for(model, self.train_config, self.steps_per_epoch)
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, *args, **kwargs):
        """``model.fit`` for one trial, after failing the trial if the whole-network ratio bounds are broken.

        Training batches given as a :class:`relu_ratio.data.Batches` (as :func:`~relu_ratio.tune.search`
        gives them, one object for every trial) serve each epoch of the fit that epoch's draws
        (:func:`relu_ratio.train.callbacks.epoch_of`): with :attr:`seed` set, a pattern trains alike whether
        it is a process's first trial or a later one, so a resumed search scores it as an uninterrupted one.

        A continued trial (Hyperband's next round: ``initial_epoch`` > 0, the model holding the checkpoint
        keras-tuner saved at the previous round's best epoch, weights and optimizer state, see :meth:`build`)
        goes on with its schedule: the optimizer's step count starts at ``initial_epoch *``
        :attr:`steps_per_epoch` (it restarted at the checkpoint's, or at 0 and warmed up again), and epoch
        ``initial_epoch`` of the batches is served. The momentum is the checkpoint's, the best epoch's.

        Ctrl-C stops the trial even where Python loses its ``KeyboardInterrupt``
        (:class:`relu_ratio.train.callbacks.StopOnCtrlC`), so the search stops instead of starting the next.
        """
        measured = describe(model)
        problem = self.violation(measured.convs, measured.relus)
        if problem is not None:
            raise keras_tuner.errors.FailedTrialError(
                f"relu_pattern {format_pattern(relu_pattern_from(hp))} is outside the constraints: {problem}."
            )
        batches = args[0] if args else kwargs.get("x")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if isinstance(batches, data.Batches):  # shared by the trials: its epoch is this fit's, not the last's
            callbacks.insert(0, train.callbacks.epoch_of(batches))
        initial_epoch = kwargs.get("initial_epoch", 0)
        if initial_epoch:  # a continued trial: the schedule goes on where its epochs do
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.optimizer.iterations.assign(initial_epoch * self.steps_per_epoch)
        stop = train.callbacks.StopOnCtrlC()
        try:
            return model.fit(*args, callbacks=[stop, *callbacks], **kwargs)
        finally:  # a fit that raised did not end: put back the SIGINT handler StopOnCtrlC replaced
            stop.restore()

    def build_pattern(self, pattern, **overrides) -> keras.Model:
        """The (uncompiled) network for an explicit ``relu_pattern``, with this model's builder kwargs."""
        return models.build_family(self.family, self.depth, pattern, **{**self.builder_kwargs, **overrides})
