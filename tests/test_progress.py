"""Time left in the loops over several runs or trials: the pace so far, never a guess before it."""

from __future__ import annotations

import types

from relu_ratio import progress


def test_no_estimate_before_an_item_worked_and_none_after_the_last():
    clock = iter([0.0, 30.0]).__next__
    left = progress.TimeLeft(2, clock=clock)
    assert left.finished(1) == "0 s so far"  # the first was skipped: no pace yet
    left.start()
    assert left.finished(2) == "30 s so far"


def test_report_trials_logs_done_of_total_and_time_left_after_each_trial():
    trials = {}
    tuner = types.SimpleNamespace(oracle=types.SimpleNamespace(trials=trials))
    tuner.on_trial_begin = lambda trial: None
    tuner.on_trial_end = lambda trial: trials.__setitem__(trial, types.SimpleNamespace(status="COMPLETED"))
    logged = []
    progress.report_trials(tuner, 3, log=logged.append)
    for trial in ("t0", "t1"):
        tuner.on_trial_begin(trial)
        tuner.on_trial_end(trial)
    assert logged[0].startswith("[1/3 trials] ") and "left for 2 more at this pace" in logged[0]
    assert logged[1].startswith("[2/3 trials] ") and "left for 1 more" in logged[1]
    progress.report_trials(tuner, None, log=logged.append)  # hyperband without max_trials: no total
    tuner.on_trial_begin("t2")
    tuner.on_trial_end("t2")
    assert logged[-1].startswith("[3/? trials] ") and "left" not in logged[-1]
