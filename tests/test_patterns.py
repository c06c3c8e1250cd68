"""relu_pattern parsing and resolution (pure Python; no model is built here)."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relu_ratio.patterns import (
    BASIC_POSTACT,
    BASIC_PREACT,
    BLOCK_KINDS,
    BOTTLENECK,
    MERGE_AND_RUN,
    PLAIN,
    ReLUPattern,
    period,
)

T, F = True, False


@pytest.mark.parametrize(
    ("spec", "kind", "mask"),
    [
        ("paired", BOTTLENECK, (T, T, T)),
        ("1:1", BOTTLENECK, (T, T, T)),
        ("3:2", BOTTLENECK, (F, T, T)),
        ("type1", BOTTLENECK, (F, T, T)),
        ("type2", BOTTLENECK, (T, F, T)),
        ("type3", BOTTLENECK, (T, T, F)),
        ("3:1", BOTTLENECK, (F, F, T)),
        ("erase_last", BOTTLENECK, (T, T, F)),
        ("2:1", BASIC_PREACT, (F, T)),
        ("2:1", BASIC_POSTACT, (F, T)),
        ("erase-last", BASIC_POSTACT, (T, F)),
        ("4:3", MERGE_AND_RUN, (T, F, T, T)),
        ("type1", MERGE_AND_RUN, (T, F, T, T)),
        ("type2", MERGE_AND_RUN, (F, T, T, T)),
        ("2:1", MERGE_AND_RUN, (T, F, T, F)),
        (" 011 ", BOTTLENECK, (F, T, T)),
        ("6:4", BOTTLENECK, (F, T, T)),
    ],
)
def test_block_masks(spec, kind, mask):
    masks = ReLUPattern(spec).resolve(kind, [2, 1, 3])
    assert {m for stage in masks for m in stage} == {mask}
    assert [len(stage) for stage in masks] == [2, 1, 3]


def test_plain_ratio_is_periodic_over_all_layers():
    masks = ReLUPattern("2:1").resolve(PLAIN, [3, 3, 2])
    flat = [m[0] for stage in masks for m in stage]
    # the ReLU after the 1st, 3rd, 5th ... layer is removed, across stage boundaries
    assert flat == [F, T, F, T, F, T, F, T]
    flat = [m[0] for stage in ReLUPattern("3:2").resolve(PLAIN, [3, 3]) for m in stage]
    assert flat == [F, T, T, F, T, T]
    flat = [m[0] for stage in ReLUPattern("6:4").resolve(PLAIN, [3, 3]) for m in stage]
    assert flat == [F, F, T, T, T, T]  # the period is N as written: 6:4 is not 3:2 (the GUIDE says so)
    per_stage = [m[0] for stage in ReLUPattern(["2:1"] * 3).resolve(PLAIN, [3, 3, 2]) for m in stage]
    assert per_stage == [F, T, F, F, T, F, F, T]  # each stage's period starts at its first layer (the GUIDE)


def test_per_stage_lists_and_explicit_masks():
    masks = ReLUPattern(["3:2", "paired", ["111", "001"]]).resolve(BOTTLENECK, [1, 1, 2])
    assert masks == (((F, T, T),), ((T, T, T),), ((T, T, T), (F, F, T)))


def test_a_stage_lists_its_block_masks_in_any_form_a_block_takes():
    """A per-stage list of block masks took strings only, where a callable's answer and a block's
    ``relu_mask`` take ``[0, 1, 1]`` and numpy arrays; the pattern keeps them as strings (hashable, JSON)."""
    spec = ["3:2", [[1, 1, 1]], [np.array([0, 0, 1]), (True, False, "1")]]
    pattern = ReLUPattern(spec)
    assert pattern == ReLUPattern(["3:2", ["111"], ["001", "101"]])
    assert pattern.resolve(BOTTLENECK, [1, 1, 2]) == (((F, T, T),), ((T, T, T),), ((F, F, T), (T, F, T)))
    for bad in ([0.5, 1, 1], "", 3, "paired"):
        with pytest.raises(ValueError, match=re.escape(f"per-block mask {bad!r} is not a mask")):
            ReLUPattern(["paired", [bad], "paired"])


def test_callable_pattern():
    masks = ReLUPattern(lambda s, b: "011" if b % 2 else [1, 1, 1]).resolve(BOTTLENECK, [2, 2, 1])
    assert masks[0] == ((T, T, T), (F, T, T))
    assert masks[2] == ((T, T, T),)


@pytest.mark.parametrize(
    ("returned", "mask"),
    [(["0", "1", "1"], (F, T, T)), (np.array([1, 0, 1]), (T, F, T)), ((True, np.bool_(False), 1), (T, F, T))],
)
def test_a_callable_returns_a_list_mask_in_any_form_a_block_takes(returned, mask):
    """One reader of list masks (``patterns.list_mask``) for a block's ``relu_mask`` and a callable's answer:
    ``["0", "1", "1"]`` and numpy arrays were refused here and taken by the blocks."""
    assert ReLUPattern(lambda s, b: returned).resolve(BOTTLENECK, [1]) == ((mask,),)


@pytest.mark.parametrize("returned", [[1.0, 0, 1], np.array(1), np.array([[0, 1, 1]])], ids=repr)
def test_a_callable_returning_floats_or_no_list_is_refused_as_a_block_refuses_them(returned):
    """``[1.0, 0, 1]`` was read as ``"101"`` here and refused by the blocks; a 0-d array was a TypeError."""
    with pytest.raises(ValueError, match=re.escape(f"callable returned {returned!r} for stage 0, block 0")):
        ReLUPattern(lambda s, b: returned).resolve(BOTTLENECK, [1])


def test_a_callable_on_a_plain_network_decides_each_layer():
    masks = ReLUPattern(lambda s, b: "1" if b % 2 else "0").resolve(PLAIN, [3, 2])
    assert masks == (((F,), (T,), (F,)), ((F,), (T,)))
    assert ReLUPattern(lambda s, b: " Paired").resolve(PLAIN, [2]) == (((T,), (T,)),)
    assert ReLUPattern(lambda s, b: "2:2").resolve(PLAIN, [2]) == (((T,), (T,)),)  # N:N: every ReLU kept


@pytest.mark.parametrize(
    ("returned", "kind", "message"),
    [
        ("0:1", BASIC_PREACT, "returned '0:1' for stage 0, block 0: relu_pattern '0:1' asks for more ReLUs"),
        ("1:2", BASIC_PREACT, "returned '1:2' for stage 0, block 0: relu_pattern '1:2' asks for more ReLUs"),
        ("2:0", BASIC_PREACT, "relu_pattern '2:0' has M = 0"),
        ("0:0", PLAIN, "relu_pattern '0:0' has M = 0"),  # N:N on a plain layer, but no ratio
    ],
)
def test_a_ratio_a_callable_returns_is_checked_as_a_ratio_string_is(returned, kind, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ReLUPattern(lambda s, b: returned).resolve(kind, [1, 1])


@pytest.mark.parametrize(
    ("kind", "blocks", "message"),
    [
        ("bottleneck", [1], "kind must be a BlockKind such as patterns.BOTTLENECK; received 'bottleneck'"),
        (BOTTLENECK, [-1, 2], "blocks_per_stage must be a list of block counts >= 1, one per stage"),
        (BOTTLENECK, [0, 0, 0], "received [0, 0, 0]"),
        (BOTTLENECK, "333", "received '333'"),
        (BOTTLENECK, [], "received []"),
    ],
)
def test_resolve_refuses_what_is_no_block_kind_or_block_counts(kind, blocks, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ReLUPattern("3:2").resolve(kind, blocks)


def test_a_ratio_of_thousands_of_digits_is_not_understood_as_any_other_wrong_spec():
    with pytest.raises(ValueError, match=r"relu_pattern '1{5000}:1' is not understood\. Valid: a ratio"):
        ReLUPattern("1" * 5000 + ":1")


@pytest.mark.parametrize("kind", BLOCK_KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("form", ["preset", "ratio", "per_stage"])
def test_explicit_form_round_trips(kind, form):
    blocks = [3, 2, 4]
    ratio = f"{kind.convs * 2}:{2 * max(1, len(kind.slots) - 1)}"  # e.g. 6:4 for the bottleneck
    spec = {"preset": "paired", "ratio": ratio, "per_stage": [ratio, "paired", "1" * len(kind.slots)]}[form]
    masks = ReLUPattern(spec).resolve(kind, blocks)
    assert ReLUPattern(ReLUPattern(spec).explicit(kind, blocks)).resolve(kind, blocks) == masks


@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        ("2:0", BOTTLENECK, "M = 0"),
        ("1:2", BOTTLENECK, "more ReLUs than convolutions"),
        ("0:0", BOTTLENECK, "M = 0"),
        ("01", BOTTLENECK, "exactly 3 characters"),
        ("2:1", BOTTLENECK, "Valid ratios: 1:1, 3:1, 3:2"),
        ("3000000000000000001:2000000000000000000", BOTTLENECK, "cannot be realised"),  # 3:2 as a float
        ("type3", MERGE_AND_RUN, "Valid presets: paired, type1, type2, erase_last"),
        ("type1", PLAIN, "not defined for plain networks"),
        ("relu", BOTTLENECK, "is not understood"),
        ("000", BOTTLENECK, "removes every ReLU"),
        (["paired", "paired"], BOTTLENECK, "3 stages"),
        ([["111"], "paired", "paired"], BOTTLENECK, "lists 1 masks"),
        (lambda s, b: 3, BOTTLENECK, "callable returned 3"),
        (lambda s, b: "0110", BOTTLENECK, "exactly 3 characters"),
        (lambda s, b: "2:1", PLAIN, "returned the ratio '2:1' for layer 0 of stage 0.*relu_pattern='2:1'"),
        (lambda s, b: "01", PLAIN, "exactly 1 character of 0/1"),
        (42, BOTTLENECK, "of type int"),
        ([], BOTTLENECK, "empty list"),
    ],
)
def test_invalid_patterns_name_the_value_and_what_is_valid(spec, kind, message):
    with pytest.raises(ValueError, match=message):
        ReLUPattern(spec).resolve(kind, [2, 2, 2])


def test_a_plain_period_is_index_arithmetic_not_a_string_of_length_n():
    """A stage's ratio N:M may be longer than the stage (relu_ratio.tune lays them so); it is never spelt
    out: resolving it takes no memory proportional to N (the period used to be a string of N characters)."""
    tracemalloc.start()
    try:
        masks = ReLUPattern(["10000000:1", "1:1", "1:1"]).resolve(PLAIN, [12, 12, 12])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000 and not any(m[0] for m in masks[0])
    assert [period("3:2").keeps(i) for i in range(6)] == [F, T, T, F, T, T]
    assert period("10000000000:1").keeps(9_999_999_999) and not period("10000000000:1").keeps(10**10)


@pytest.mark.parametrize("spec", ["1000000000:1", "37:36", "1" * 37])
def test_a_whole_network_period_longer_than_the_network_is_refused(spec):
    with pytest.raises(ValueError, match=rf"'{spec}' repeats every [\d,]+ layers.*only 36 layers.*N <= 36"):
        ReLUPattern(spec).resolve(PLAIN, [12, 12, 12])
    assert ReLUPattern("36:1").resolve(PLAIN, [12, 12, 12])[2][-1] == (T,)  # the longest that fits


@pytest.mark.parametrize("spec", ["\uff12:\uff11", "\u0663:\u0661"])  # full-width, Arabic-Indic "3:1"/"2:1"
def test_ratio_digits_are_ascii(spec):
    with pytest.raises(ValueError, match=r"not understood.* Valid: a ratio 'N:M' .*\(e\.g\. '2:1', '3:2'\)"):
        ReLUPattern(spec)


# --- property tests ------------------------------------------------------------------------

kinds = st.sampled_from(BLOCK_KINDS)
blocks = st.lists(st.integers(1, 4), min_size=3, max_size=3)


@st.composite
def valid_specs(draw, kind, layers):
    """Specs that must resolve for ``kind``: ratios it can realise, its presets, masks of its length.

    For plain nets a ratio's period must fit in the ``layers`` of the net (else M = 0 is legitimate).
    """
    slots = len(kind.slots)
    mask = st.lists(st.booleans(), min_size=slots, max_size=slots).filter(any)
    choice = draw(st.integers(0, 2))
    if choice == 0:
        if kind.periodic:
            n = draw(st.integers(1, min(6, layers)))
            m = draw(st.integers(1, n))
        else:
            k = draw(st.integers(1, slots))
            factor = draw(st.integers(1, 3))
            n, m = kind.convs * factor, k * factor
        return f"{n}:{m}"
    if choice == 1:
        return draw(st.sampled_from(sorted(kind.presets)))
    return "".join("1" if v else "0" for v in draw(mask))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kind=kinds, blocks=blocks)
def test_every_valid_spec_resolves(data, kind, blocks):
    spec = data.draw(valid_specs(kind, sum(blocks)))
    masks = ReLUPattern(spec).resolve(kind, blocks)
    assert [len(stage) for stage in masks] == blocks
    assert all(len(m) == len(kind.slots) for stage in masks for m in stage)
    assert any(any(m) for stage in masks for m in stage)


junk = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=4),
    st.from_regex(r"\d{1,2}:\d{1,2}", fullmatch=True),
    st.from_regex(r"[01]{1,6}", fullmatch=True),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _documented_form(spec, kind, stages: int) -> bool:
    """Whether ``spec`` has a form the patterns module documents for ``kind``: ``None``, a ratio ``N:M`` of
    ASCII digits, a 0/1 mask, one of the kind's presets, or a list of such strings, one per stage."""
    if spec is None:
        return True
    if isinstance(spec, list):
        return len(spec) == stages and all(isinstance(item, str) and _documented_form(item, kind, 1)
                                           for item in spec)  # fmt: skip
    if not isinstance(spec, str):
        return False
    text = spec.strip().lower().replace("-", "_")
    return bool(re.fullmatch(r"\s*[0-9]+\s*:\s*[0-9]+\s*|[01]+", text, re.ASCII)) or text in kind.presets


@settings(max_examples=400, deadline=None)
@given(spec=junk, kind=kinds, blocks=blocks)
def test_anything_else_is_refused_with_a_value_error_or_gives_valid_masks(spec, kind, blocks):
    try:
        masks = ReLUPattern(spec).resolve(kind, blocks)
    except ValueError:
        return  # refused: the only allowed failure; any other exception fails the test
    assert _documented_form(spec, kind, len(blocks)), f"junk accepted: {spec!r}"
    assert [len(stage) for stage in masks] == blocks  # accepted: one mask per block, one flag per slot
    assert all(len(m) == len(kind.slots) for stage in masks for m in stage)
    assert all(type(keep) is bool for stage in masks for m in stage for keep in m)
    assert any(any(m) for stage in masks for m in stage)  # never a network without a ReLU


@pytest.mark.parametrize("spec", ["abc", "2:", ":1", "0:0", "1:2", 3, 1.5, {"a": 1}, "2", "2 : 1 : 1"])
def test_junk_is_refused(spec):
    with pytest.raises(ValueError):
        ReLUPattern(spec).resolve(BOTTLENECK, [2, 2, 2])
