"""The statistics of seeded runs, in one place: mean ± sd over seeds and the standard error of a difference.

The training queue's seed comparison, the experiments report and the results page all report through these,
so one model's seeds give the same numbers everywhere.

Example:
    >>> from relu_ratio.stats import mean_sd, difference_error
    >>> summary = mean_sd([89.0, 89.5])
    >>> summary.text()
    '89.25 ± 0.35'
    >>> round(difference_error(summary, mean_sd([88.0, 89.0])), 2)
    0.56
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable

from relu_ratio.validators import is_finite_number, plain_number


@dataclasses.dataclass(frozen=True)
class MeanSD:
    """The mean of ``n`` values and their sample standard deviation (``None`` below two values)."""

    mean: float | None
    sd: float | None
    n: int

    def text(self, one: str = " (one seed)") -> str:
        """``"89.25 ± 0.35"``; one value: ``"88.00"`` followed by ``one``; none: ``""``."""
        if self.mean is None:
            return ""
        return f"{self.mean:.2f} ± {self.sd:.2f}" if self.sd is not None else f"{self.mean:.2f}{one}"


def mean_sd(values: Iterable[float]) -> MeanSD:
    """Mean and sample standard deviation (``n - 1``) of ``values``: ``MeanSD(None, None, 0)`` for none,
    no sd for one. ``ValueError`` naming a value that is not a finite number (NaN, inf, a string)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"mean_sd takes a list of numbers (e.g. each seed's top-1 %); received {values!r}.")
    values = [plain_number(value) for value in values]  # numpy numbers as the Python numbers they hold
    bad = next(((i, value) for i, value in enumerate(values) if not is_finite_number(value)), None)
    if bad is not None:
        raise ValueError(f"mean_sd needs finite numbers (e.g. each seed's top-1 %); value {bad[0]} of "
                         f"{values} is {bad[1]!r}.")  # fmt: skip
    if not values:
        return MeanSD(None, None, 0)
    sd = statistics.stdev(values) if len(values) > 1 else None
    return MeanSD(statistics.mean(values), sd, len(values))


def difference_error(a: MeanSD, b: MeanSD) -> float | None:
    """The standard error of ``a.mean - b.mean``: ``sqrt(sd_a² / n_a + sd_b² / n_b)``; ``None`` unless both
    sides have a standard deviation (two values or more each)."""
    for name, side in (("a", a), ("b", b)):
        if not isinstance(side, MeanSD):
            raise TypeError(f"difference_error takes two MeanSD (from mean_sd); {name} is {side!r}.")
    if a.sd is None or b.sd is None:
        return None
    return math.sqrt(a.sd**2 / a.n + b.sd**2 / b.n)
