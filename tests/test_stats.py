"""The one statistics of seeded runs (relu_ratio.stats), shared by the queue, the report and the results."""

import re

import numpy as np
import pytest

from relu_ratio import stats


def test_mean_sd_is_the_sample_mean_and_standard_deviation():
    summary = stats.mean_sd([89.0, 89.5, 91.0])
    assert summary.n == 3 and summary.mean == pytest.approx(89.8333333)
    assert summary.sd == pytest.approx(1.0408330)  # n - 1 in the denominator, not n (0.8498)
    assert summary.text() == "89.83 ± 1.04"


def test_one_value_has_no_sd_and_none_has_no_mean():
    assert stats.mean_sd([88.0]) == stats.MeanSD(88.0, None, 1)
    one = stats.mean_sd([88.0])
    assert one.text() == "88.00 (one seed)" and one.text(one="") == "88.00"
    assert stats.mean_sd([]) == stats.MeanSD(None, None, 0) and stats.mean_sd([]).text() == ""


def test_the_standard_error_of_a_difference_needs_an_sd_on_both_sides():
    two, three = stats.mean_sd([88.0, 89.0]), stats.mean_sd([89.5, 90.5, 91.5])
    # sd 1.0 over 3 seeds, sqrt(0.5) over 2
    assert stats.difference_error(three, two) == pytest.approx((1.0 / 3 + 0.5 / 2) ** 0.5)
    assert stats.difference_error(three, stats.mean_sd([88.0])) is None


def test_values_that_are_not_finite_numbers_are_named():
    for values, bad in (([89.0, float("nan")], "value 1 of [89.0, nan] is nan"),
                        ([float("inf"), 1.0, 2.0], "value 0 of [inf, 1.0, 2.0] is inf"),
                        ([89.0, "90.5"], "value 1 of [89.0, '90.5'] is '90.5'")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"mean_sd needs finite numbers .*; {re.escape(bad)}\.$"):
            stats.mean_sd(values)  # NaN was an AttributeError deep in statistics.stdev
    assert stats.mean_sd(np.array([88.0, 89.0], np.float32)).text() == "88.50 ± 0.71"  # numpy numbers



@pytest.mark.parametrize("values", [None, 5, "12"], ids=repr)
def test_what_is_no_list_of_numbers_is_named(values):
    """None and 5 were "object is not iterable"; "12" was read as the values '1' and '2'."""
    said = rf"mean_sd takes a list of numbers .*; received {re.escape(repr(values))}\.$"
    with pytest.raises(TypeError, match=said):
        stats.mean_sd(values)


def test_any_iterable_of_numbers_is_taken():
    assert stats.mean_sd(value for value in (88.0, 89.0)).text() == "88.50 ± 0.71"
    assert stats.mean_sd({"seed0": 88.0, "seed1": 89.0}.values()).n == 2


def test_a_difference_of_what_is_no_mean_sd_is_named():
    """It was an AttributeError: 'NoneType' object has no attribute 'sd'."""
    with pytest.raises(TypeError, match=r"difference_error takes two MeanSD \(from mean_sd\); b is None"):
        stats.difference_error(stats.mean_sd([1.0, 2.0]), None)
