"""The shared checks of relu_ratio.validators: suggestions, finite numbers, integers in range."""

import math

import pytest

from relu_ratio import models
from relu_ratio.validators import is_finite_number, is_integer, suggest


def test_suggest_names_the_closest_choice_or_nothing():
    assert suggest("recipie", ["recipe", "epochs"]) == " (did you mean 'recipe'?)"
    assert suggest("zzz", ["recipe", "epochs"]) == ""
    assert suggest("recipie", ["recipe", "recipes", "lr"], n=3) == " (did you mean 'recipe' or 'recipes'?)"


@pytest.mark.parametrize(("value", "finite"), [(1, True), (0.5, True), (True, False), (math.nan, False),
                                               (math.inf, False), ("1", False), (None, False)])  # fmt: skip
def test_a_finite_number_is_an_int_or_float_not_a_bool(value, finite):
    assert is_finite_number(value) is finite


@pytest.mark.parametrize(
    ("value", "minimum", "ok"),
    [(1, 1, True), (0, 1, False), (0, 0, True), (-3, None, True), (True, 0, False), (2.0, 1, False),
     ("2", 1, False)],
)  # fmt: skip
def test_an_integer_is_not_a_bool_nor_a_float_and_meets_its_minimum(value, minimum, ok):
    assert is_integer(value, minimum) is ok


def test_the_builders_refuse_through_the_shared_checks():
    with pytest.raises(ValueError, match=r"unknown family 'resent' \(did you mean 'resnet'\?\)"):
        models.family_spec("resent")
    with pytest.raises(ValueError, match=r"^unknown family \['resnet'\] \(did you mean 'resnet'\?\)\. Valid"):
        models.build_family(["resnet"], 8)  # a list: it was "TypeError: unhashable type: 'list'"
    with pytest.raises(ValueError, match="depth must be an integer; received True"):
        models.FAMILIES["resnet"].blocks_per_stage(True)
    assert models.suggest is suggest  # the name models' callers used still works
