"""What a ``relu_pattern`` means: which ReLU slots of which block are kept.

Python and numpy, no Keras. Every builder accepts a ``relu_pattern`` and turns it into a
:class:`ReLUPattern`; the pattern then *resolves* against a block kind and the number of
blocks per stage into one boolean mask per block (``True`` = a ReLU stands in that slot).

Accepted specs:

* ratio strings ``"N:M"`` (convolutions : ReLUs, ``N >= M >= 1``), e.g. ``"1:1"``, ``"2:1"``, ``"3:2"``;
* explicit masks such as ``"011"`` (one character per slot, ``0`` = no ReLU), applied to every block;
* preset names: ``"paired"``, ``"type1"``, ``"type2"``, ``"type3"``, ``"erase_last"``;
* a list with one spec per stage, e.g. ``["2:1", "paired", "paired"]``, where a stage's spec may
  itself be a list of per-block masks, ``"011"`` or ``[0, 1, 1]`` (the fully explicit form the zoo stores);
* a callable ``(stage, block) -> mask``;
* ``None``, which means ``"paired"`` (every slot keeps its ReLU), like the builders' default.

Example:
    >>> from relu_ratio.patterns import ReLUPattern, BOTTLENECK
    >>> ReLUPattern("3:2").resolve(BOTTLENECK, [2, 1, 1])[0]
    ((False, True, True), (False, True, True))
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from relu_ratio.validators import is_integer, plain_number, suggest

Mask = tuple[bool, ...]
Masks = tuple[tuple[Mask, ...], ...]  # [stage][block] -> mask
PatternSpec = Union[str, Sequence, Callable[[int, int], object], "ReLUPattern", None]

# whole-string matches of ASCII characters only (re.match with "$" would accept a trailing newline, "\d" any
# Unicode digit); a ratio's numbers of up to 4000 digits (int() refuses over 4300, in a message of its own)
_RATIO = re.compile(r"\s*([0-9]{1,4000})\s*:\s*([0-9]{1,4000})\s*", re.ASCII)
_MASK = re.compile(r"[01]+", re.ASCII)


@dataclasses.dataclass(frozen=True)
class BlockKind:
    """The ReLU slots of one block type and how ratios and presets map onto them.

    Attributes:
        name: block type name, used in messages.
        slots: names of the ReLU slots in mask order.
        convs: convolutions on the block's main path (the ``N`` a ratio refers to).
        removal_order: which slots a ratio removes first (a ratio that keeps ``k`` ReLUs per block
            removes the first ``len(slots) - k`` slots of this order).
        presets: named masks this block type knows.
        periodic: ``True`` for single-layer blocks (plain nets), where a ratio or mask is a period
            laid over the whole sequence of layers instead of over one block.
    """

    name: str
    slots: tuple[str, ...]
    convs: int
    removal_order: tuple[int, ...]
    presets: dict[str, str]
    periodic: bool = False

    def mask_removing(self, count: int) -> Mask:
        removed = set(self.removal_order[:count])
        return tuple(i not in removed for i in range(len(self.slots)))


PLAIN = BlockKind(
    name="plain conv-BN-ReLU layer",
    slots=("relu",),
    convs=1,
    removal_order=(0,),
    presets={"paired": "1"},
    periodic=True,
)
BASIC_POSTACT = BlockKind(
    name="post-activation building block",
    slots=("inner", "after_add"),
    convs=2,
    removal_order=(0, 1),
    presets={"paired": "11", "type1": "01", "erase_last": "10"},
)
BASIC_PREACT = BlockKind(
    name="pre-activation building block",
    slots=("preact1", "preact2"),
    convs=2,
    removal_order=(0, 1),
    presets={"paired": "11", "type1": "01", "erase_last": "10"},
)
BOTTLENECK = BlockKind(
    name="pre-activation bottleneck block",
    slots=("preact1", "preact2", "preact3"),
    convs=3,
    removal_order=(0, 1, 2),
    presets={"paired": "111", "type1": "011", "type2": "101", "type3": "110", "erase_last": "110"},
)
MERGE_AND_RUN = BlockKind(
    name="merge-and-run block",
    slots=("branch1_inner", "branch1_out", "branch2_inner", "branch2_out"),
    convs=4,
    removal_order=(1, 3, 0, 2),
    presets={"paired": "1111", "type1": "1011", "type2": "0111", "erase_last": "1010"},
)
BLOCK_KINDS = (PLAIN, BASIC_POSTACT, BASIC_PREACT, BOTTLENECK, MERGE_AND_RUN)
PRESETS = ("paired", "type1", "type2", "type3", "erase_last")


def block_relus(kind: BlockKind, mask: Mask, merged_output: bool = False) -> int:
    """ReLU layers a block with ``mask`` holds. ``merged_output``: the last merge-and-run block of a network,
    whose two ``branch*_out`` slots share one ReLU on the merged output (kept unless both are off).

    Example:
        >>> block_relus(MERGE_AND_RUN, (True, True, False, True), merged_output=True)
        2
    """
    relus = sum(mask)
    if merged_output:
        out1, out2 = (mask[kind.slots.index(slot)] for slot in ("branch1_out", "branch2_out"))
        relus += (out1 or out2) - out1 - out2
    return relus


def parse_ratio(spec: str) -> tuple[int, int] | None:
    """``"3:2"`` -> ``(3, 2)``; ``None`` if ``spec`` is not shaped like a ratio."""
    match = _RATIO.fullmatch(spec)
    return (int(match.group(1)), int(match.group(2))) if match else None


class ReLUPattern:
    """A parsed ``relu_pattern``; see the module docstring for the accepted specs.

    Parsing checks the shape of the spec at once; whether it fits a block type (mask length,
    realisable ratio, known preset) is checked by :meth:`resolve`, which knows the block.
    """

    def __init__(self, spec: PatternSpec = "paired"):
        if isinstance(spec, ReLUPattern):
            spec = spec.spec
        if spec is None:
            spec = "paired"
        self.spec = _validate_shape(spec)

    def __repr__(self) -> str:
        return f"ReLUPattern({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReLUPattern) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(repr(self.spec))

    def resolve(self, kind: BlockKind, blocks_per_stage: Sequence[int]) -> Masks:
        """One mask per block: ``masks[stage][block][slot]`` is ``True`` where a ReLU stands.

        Raises:
            ValueError: if the pattern does not fit ``kind`` or leaves the network without ReLUs, or
                ``blocks_per_stage`` is not a list of block counts >= 1.
        """
        if not isinstance(kind, BlockKind):
            raise ValueError(f"kind must be a BlockKind such as patterns.BOTTLENECK; received {kind!r}.")
        counts = list(blocks_per_stage) if isinstance(blocks_per_stage, Sequence) else None
        if not counts or not all(is_integer(plain_number(n), 1) for n in counts):
            raise ValueError(f"blocks_per_stage must be a list of block counts >= 1, one per stage; received "
                             f"{blocks_per_stage!r}.")  # fmt: skip
        blocks_per_stage = [plain_number(n) for n in counts]
        spec = self.spec
        if callable(spec):
            _check_callable(spec)
            masks = tuple(
                tuple(_call_mask(spec, kind, s, b) for b in range(n))
                for s, n in enumerate(blocks_per_stage)
            )
        elif isinstance(spec, tuple):
            if len(spec) != len(blocks_per_stage):
                raise ValueError(
                    f"relu_pattern has {len(spec)} per-stage entries, but this network has "
                    f"{len(blocks_per_stage)} stages. Give exactly one spec per stage."
                )
            masks = tuple(
                stage_masks(stage_spec, kind, n) for stage_spec, n in zip(spec, blocks_per_stage)
            )
        else:
            masks = _network_masks(spec, kind, blocks_per_stage)
        if not any(any(mask) for stage in masks for mask in stage):
            raise ValueError(
                f"relu_pattern {_show(self.spec)} removes every ReLU from the {kind.name}s "
                "(M = 0): a network without non-linearity is not a proportional module. "
                "Keep at least one ReLU."
            )
        return masks

    def explicit(self, kind: BlockKind, blocks_per_stage: Sequence[int]) -> str | list[list[str]]:
        """The resolved pattern in its most compact explicit form.

        A single mask string if every block has the same mask, else per-stage lists of masks.
        Parsing the result gives back the same masks.
        """
        masks = self.resolve(kind, blocks_per_stage)
        flat = {mask for stage in masks for mask in stage}
        if len(flat) == 1 and not kind.periodic:
            return mask_to_str(flat.pop())
        return [[mask_to_str(m) for m in stage] for stage in masks]


def mask_to_str(mask: Mask) -> str:
    """The 0/1 string of ``mask``, as the package writes masks: ``(False, True, True)`` -> ``"011"``."""
    return "".join("1" if keep else "0" for keep in mask)


def _show(spec: object) -> str:
    return f"'{spec}'" if isinstance(spec, str) else repr(spec)


def _validate_shape(spec: object) -> str | tuple | Callable:
    if isinstance(spec, str):
        text = spec.strip().lower().replace("-", "_")
        ratio = parse_ratio(text)
        if ratio is not None:
            n, m = ratio
            if m == 0:
                raise ValueError(
                    f"relu_pattern '{spec}' has M = 0, i.e. no ReLU at all. "
                    "A ratio N:M needs N >= M >= 1, e.g. '2:1' or '3:2'."
                )
            if m > n:
                raise ValueError(
                    f"relu_pattern '{spec}' asks for more ReLUs than convolutions. "
                    "A ratio N:M needs N >= M >= 1, e.g. '1:1', '2:1' or '3:2'."
                )
            return f"{n}:{m}"
        if _MASK.fullmatch(text) or text in PRESETS:
            return text
        raise ValueError(
            f"relu_pattern '{spec}' is not understood{suggest(text, PRESETS)}. Valid: a ratio 'N:M' with "
            "N >= M >= 1 "
            f"(e.g. '2:1', '3:2'), a mask of 0/1 characters (e.g. '011'), a preset "
            f"({', '.join(PRESETS)}), a list with one of these per stage, or a callable "
            "(stage, block) -> mask."
        )
    if callable(spec):
        return spec
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ValueError("relu_pattern is an empty list; give one spec per stage.")
        return tuple(_validate_stage(item) for item in spec)
    raise ValueError(
        f"relu_pattern must be a string, a list of per-stage specs or a callable; "
        f"received {spec!r} of type {type(spec).__name__}."
    )


def _validate_stage(item: object) -> str | tuple[str, ...]:
    if isinstance(item, (list, tuple)):
        if not item:
            raise ValueError("a per-stage relu_pattern entry is an empty list of block masks.")
        masks = [list_mask(m.strip() if isinstance(m, str) else m) for m in item]
        for entry, mask in zip(item, masks):
            if not mask:
                raise ValueError(f"per-block mask {entry!r} is not a mask: give 0/1 characters such as '011' "
                                 "or one entry per slot such as [0, 1, 1].")  # fmt: skip
        return tuple(map(mask_to_str, masks))
    if isinstance(item, str):
        return _validate_shape(item)
    raise ValueError(
        f"a per-stage relu_pattern entry must be a string or a list of masks; received {item!r}."
    )


def block_mask(spec: str, kind: BlockKind) -> Mask:
    """The mask one (non-periodic) block gets from a string spec."""
    slots = len(kind.slots)
    ratio = parse_ratio(spec)
    if ratio is not None:
        n, m = ratio
        keep, rest = divmod(m * kind.convs, n)  # integers: a ratio a float division rounds is refused
        if rest or keep < 1:
            valid = sorted({_reduced(kind.convs, k) for k in range(1, slots + 1)})
            raise ValueError(
                f"relu_pattern '{spec}' cannot be realised by a {kind.name} with {kind.convs} "
                f"convolutions and {slots} ReLU slots. Valid ratios: {', '.join(valid)} "
                "(or an explicit mask)."
            )
        return kind.mask_removing(slots - keep)
    if spec in PRESETS:
        if spec not in kind.presets:
            raise ValueError(
                f"preset '{spec}' is not defined for a {kind.name}. "
                f"Valid presets: {', '.join(kind.presets)}."
            )
        spec = kind.presets[spec]
    return _parse_mask(spec, kind)


def _reduced(n: int, m: int) -> str:
    """The ratio ``n:m`` in lowest terms.

    >>> _reduced(2, 2), _reduced(6, 4)
    ('1:1', '3:2')
    """
    common = math.gcd(n, m)
    return f"{n // common}:{m // common}"


def list_mask(entries: object) -> Mask | None:
    """A mask given entry by entry (a list, tuple or numpy array; a string of 0s and 1s as the package writes
    masks), each ``True``/``False`` (numpy's too), ``0``/``1`` or ``"0"``/``"1"``; ``None`` if it is none of
    these or an entry is something else (``0.5``, ``1.0``, ``"x"``). The one reader of such masks: a block's
    ``relu_mask`` and a ``relu_pattern`` callable's answer.

    >>> list_mask([1, 0, True]), list_mask("011"), list_mask(np.array([1, 1])), list_mask([1.0, 0])
    ((True, False, True), (False, True, True), (True, True), None)
    """
    if not isinstance(entries, (str, Sequence, np.ndarray)) or getattr(entries, "ndim", 1) != 1:
        return None  # a numpy scalar array or a table of them included
    mask = tuple(map(_switch, entries))
    return None if None in mask else mask


def _switch(entry: object) -> bool | None:
    entry = plain_number(entry)
    if isinstance(entry, (bool, np.bool_)):
        return bool(entry)
    if is_integer(entry) or isinstance(entry, str):
        return {0: False, 1: True, "0": False, "1": True}.get(entry)
    return None


def _parse_mask(text: str, kind: BlockKind) -> Mask:
    if not _MASK.fullmatch(text) or len(text) != len(kind.slots):
        raise ValueError(
            f"mask '{text}' does not fit a {kind.name}: it needs exactly {len(kind.slots)} "
            f"character{'s' if len(kind.slots) > 1 else ''} of 0/1, one per ReLU slot "
            f"({', '.join(kind.slots)})."
        )
    return tuple(c == "1" for c in text)


@dataclasses.dataclass(frozen=True)
class Period:
    """What a plain net's ratio or mask repeats over its layers, never spelt out (a ratio ``N:M`` is ``N - M``
    layers without a ReLU, then ``M`` with one), so memory does not grow with ``N``.

    Example:
        >>> [period("3:2").keeps(i) for i in range(4)], period("10000000000:1").length
        ([False, True, True, False], 10000000000)
    """

    length: int
    relus: int  # ReLUs kept per period
    mask: str | None = None  # the characters of a mask period; None for a ratio

    def keeps(self, layer: int) -> bool:
        """Whether ``layer`` (counted from the start of the period) keeps its ReLU."""
        place = layer % self.length
        return self.mask[place] == "1" if self.mask is not None else place >= self.length - self.relus


def period(spec: str) -> Period:
    """The :class:`Period` of a (validated) ratio, plain preset or mask string."""
    ratio = parse_ratio(spec)
    if ratio is not None:
        return Period(*ratio)
    if spec in PRESETS:
        if spec not in PLAIN.presets:
            raise ValueError(
                f"preset '{spec}' is not defined for plain networks. "
                f"Valid presets: {', '.join(PLAIN.presets)} (or a ratio such as '2:1')."
            )
        spec = PLAIN.presets[spec]
    return Period(len(spec), spec.count("1"), spec)


def _periodic_masks(spec: str, count: int, offset: int) -> list[Mask]:
    """Plain nets: a ratio N:M or mask is a period laid over the layers (ReLUs at its end)."""
    repeat = period(spec)
    return [(repeat.keeps(offset + i),) for i in range(count)]


def _network_masks(spec: str, kind: BlockKind, blocks_per_stage: Sequence[int]) -> Masks:
    if kind.periodic:
        layers, length = sum(blocks_per_stage), period(spec).length
        if length > layers:  # a whole-network period must fit; a stage's may be cut (relu_ratio.tune's)
            raise ValueError(
                f"relu_pattern '{spec}' repeats every {length:,} layers, but this plain network "
                f"has only {layers} layers after its stem: the network would never see the ratio. Valid: a "
                f"ratio N:M with M <= N <= {layers} (e.g. '2:1', '3:2') or a mask of at most {layers} "
                "characters, or one of these per stage."
            )
        masks, offset = [], 0
        for n in blocks_per_stage:
            masks.append(tuple(_periodic_masks(spec, n, offset)))
            offset += n
        return tuple(masks)
    mask = block_mask(spec, kind)
    return tuple((mask,) * n for n in blocks_per_stage)


def stage_masks(spec: str | tuple[str, ...], kind: BlockKind, blocks: int) -> tuple[Mask, ...]:
    """The masks of a stage of ``blocks`` blocks from its entry of a per-stage ``relu_pattern``: one spec
    for every block (a plain stage's ratio laid over its layers) or a tuple of one mask per block. A stage
    may go without ReLUs (the whole network may not: :meth:`ReLUPattern.resolve`).

    Example:
        >>> stage_masks("2:1", PLAIN, 4)
        ((False,), (True,), (False,), (True,))
    """
    if isinstance(spec, tuple):
        if len(spec) != blocks:
            raise ValueError(
                f"a stage has {blocks} blocks, but its relu_pattern entry lists {len(spec)} masks."
            )
        return tuple(_parse_mask(m, kind) for m in spec)
    if kind.periodic:
        return tuple(_periodic_masks(spec, blocks, 0))
    return (block_mask(spec, kind),) * blocks


def _check_callable(fn: Callable) -> None:
    """Refuse a relu_pattern callable that cannot be called as ``fn(stage, block)``."""
    try:
        inspect.signature(fn).bind(0, 0)
    except TypeError as error:
        raise ValueError(f"a relu_pattern callable is called as fn(stage, block) and returns a mask; {fn!r} "
                         f"cannot be: {error}.") from None  # fmt: skip
    except ValueError:  # no signature to read (some builtins): it is called as it is
        pass


def _call_mask(fn: Callable[[int, int], object], kind: BlockKind, stage: int, block: int) -> Mask:
    result = fn(stage, block)
    if isinstance(result, str):
        text = result.strip().lower().replace("-", "_")
        ratio = parse_ratio(text)
        if ratio is not None:
            try:
                _validate_shape(text)  # N >= M >= 1, as in a relu_pattern string
            except ValueError as error:
                raise ValueError(f"relu_pattern callable returned {result!r} for stage {stage}, block "
                                 f"{block}: {error}") from None  # fmt: skip
        if kind.periodic and ratio is not None:  # one layer keeps its ReLU or not: no ratio but N:N (all)
            if ratio[0] == ratio[1]:
                return (True,)
            raise ValueError(
                f"relu_pattern callable returned the ratio {result!r} for layer {block} of stage {stage}; "
                "a plain network asks its callable about one layer at a time, which keeps its ReLU ('1') or "
                f"not ('0'). A ratio is laid over the layers: pass relu_pattern='{text}' itself, or one "
                "ratio per stage."
            )
        if text in PRESETS or ratio is not None:
            return block_mask(text, kind)
        return _parse_mask(text, kind)
    mask = list_mask(result)
    if mask is not None:
        return _parse_mask(mask_to_str(mask), kind)  # the one check of a mask's length, and its message
    raise ValueError(
        f"relu_pattern callable returned {result!r} for stage {stage}, block {block}; it must "
        f"return a mask such as '{'1' * len(kind.slots)}' or a list of {len(kind.slots)} booleans."
    )
