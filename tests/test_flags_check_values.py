"""relu_ratio.flags.check_values: every field of a dataclass against its annotation, as text or as types."""

from __future__ import annotations  # the annotations below are text: check_values resolves them

import dataclasses

import pytest

from relu_ratio import flags


@dataclasses.dataclass(frozen=True)
class _Point:
    x: float

    def __post_init__(self):
        flags.check_values(self)


@dataclasses.dataclass(frozen=True)
class _Shape:
    name: str
    points: tuple[_Point, ...]
    weights: tuple[float, ...] | None = None
    grid: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        flags.check_values(self)


def test_tuples_of_any_type_and_of_dataclasses_are_checked_against_their_annotations():
    """``tuple[X, ...]`` of any checked type, a dataclass among them, resolved from text annotations."""
    _Shape("ok", (_Point(1), _Point(2.5)), (0.5, 1), ((1, 2), ()))
    for kwargs, said in [
        ({"points": [_Point(1)]}, r"points must be a tuple of _Point objects; received \[_Point\(x=1\)\]\."),
        ({"points": (_Point(1), (2,))}, r"points must be a tuple of _Point objects; received .*\(2,\)\)\."),
        ({"weights": (0.5, "1")},
         r"weights must be a tuple of numbers or None \(null\); received \(0.5, '1'\)\."),
        ({"weights": (True,)}, r"weights must be a tuple of numbers or None"),  # a bool is no number
        ({"grid": ((1,), (2.5,))}, r"grid must be a tuple of tuples of integers; received"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=said):
            _Shape(**{"name": "s", "points": (), **kwargs})
    with pytest.raises(ValueError, match="x must be a number; received '1'"):  # the element's own check
        _Point("1")


def test_an_annotation_without_a_check_is_named():
    @dataclasses.dataclass
    class Odd:
        pair: tuple[int, int]

    with pytest.raises(TypeError, match=r"Odd.pair: no check for the type tuple\[int, int\]"):
        flags.check_values(Odd((1, 2)))


def test_a_tuple_of_a_union_is_worded_apart_from_a_union_with_a_tuple():
    """``tuple[float | None, ...]`` and ``tuple[float, ...] | None`` were both "a tuple of numbers or None
    (null)": a reader could not tell whether ``None`` itself or ``(None,)`` was valid."""

    @dataclasses.dataclass
    class Gaps:
        items: tuple[float | None, ...]

    with pytest.raises(ValueError, match=r"^items must be a tuple whose items are numbers or None \(null\); "
                       r"received None\.$"):  # fmt: skip
        flags.check_values(Gaps(None))
    flags.check_values(Gaps((1.5, None)))
    with pytest.raises(ValueError, match=r"^weights must be a tuple of numbers or None \(null\); received"):
        _Shape("s", (), ("1",))
