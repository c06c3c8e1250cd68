"""Time left for the loops that span several runs or trials (``queue run``, ``experiments run``, ``tune``).

The estimate is the pace so far: the mean time of the items that did work in this process (skipped ones
cost nothing and do not count) times the items left. Items left that turn out to be skipped make it an
overestimate; until one item has worked there is none.

Example:
    >>> left = TimeLeft(4, clock=iter([0.0, 600.0, 600.0, 1800.0]).__next__)
    >>> left.start()
    >>> left.finished(1)
    '10 min so far; about 30 min left for 3 more at this pace'
    >>> left.start()
    >>> left.finished(2)
    '30 min so far; about 30 min left for 2 more at this pace'
"""

from __future__ import annotations

import time
from collections.abc import Callable


def duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2.5 h"``: seconds below 90 s, minutes below 90 min, else hours.

    Example:
        >>> [duration(s) for s in (45, 720, 9000)]
        ['45 s', '12 min', '2.5 h']
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TimeLeft:
    """Pace of a loop over ``total`` items: :meth:`start` before an item's work, :meth:`finished` after."""

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic):
        self.total, self._clock = total, clock
        self._spent, self._worked, self._began = 0.0, 0, None

    def start(self) -> None:
        self._began = self._clock()

    @property
    def running(self) -> bool:
        """Whether an item's work has started and not yet finished."""
        return self._began is not None

    def finished(self, number: int) -> str:
        """After item ``number`` (1-based) worked: the time spent so far and the estimate for the rest."""
        if self._began is not None:
            self._spent += self._clock() - self._began
            self._worked += 1
            self._began = None
        left = self.total - number
        spent = f"{duration(self._spent)} so far"
        if left <= 0 or not self._worked:
            return spent
        estimate = duration(self._spent / self._worked * left)
        return f"{spent}; about {estimate} left for {left} more at this pace"


def report_trials(tuner, total: int | None, log: Callable[[str], None] = print) -> None:
    """Log a line after each trial ``tuner`` (a keras-tuner tuner of a single-process search) runs: the trials
    done of ``total`` (a resumed search's earlier ones included), the time so far and the time left."""
    pace, begin, end = TimeLeft(0), tuner.on_trial_begin, tuner.on_trial_end

    def on_trial_begin(trial):
        pace.start()
        begin(trial)

    def on_trial_end(trial):
        end(trial)
        done = sum(t.status in ("COMPLETED", "INVALID", "FAILED") for t in tuner.oracle.trials.values())
        pace.total = total or done  # no total (hyperband without max_trials): no estimate
        log(f"[{done}/{total or '?'} trials] {pace.finished(done)}")

    tuner.on_trial_begin, tuner.on_trial_end = on_trial_begin, on_trial_end
