"""Train a series of runs in order, as the training queue and the experiments runner do: skip what a check
says is done, resume what was cut off (:func:`relu_ratio.train.run` does), and record a failure in the run's
``failed.json`` instead of stopping the series.

Example:
    >>> from relu_ratio import train
    >>> from relu_ratio.train.series import train_in_order
    >>> configs = [train.TrainConfig(model="resnet8_21", seed=s, out=f"runs/s{s}") for s in (0, 1)]
    >>> todo = lambda config: None  # train every run (a check may return 'done, skipped')
    >>> failures = train_in_order(configs, lambda c: c, todo, name=lambda c: c.out)  # doctest: +SKIP
    [1/2] runs/s0: training (python -m relu_ratio.train --model resnet8_21 ...)
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import keras

from relu_ratio import files, folder_lock
from relu_ratio import train as train_package  # its run: what a caller (a test) may replace is what runs
from relu_ratio.progress import TimeLeft
from relu_ratio.train.config import TrainConfig, command_for
from relu_ratio.train.record import FAILED_FILE, scored_on, top1_key

Item = TypeVar("Item")


class NotTrained(Exception):
    """Raised by a series' ``check``: the run is not trained and counts as a failure; the message says why."""


def train_in_order(
    items: Sequence[Item],
    config: Callable[[Item], TrainConfig],
    check: Callable[[Item], str | None],
    *,
    name: Callable[[Item], str],
    log: Callable[[str], object] = print,
) -> list[tuple[Item, str]]:
    """Train ``items`` one after the other; ``(item, message)`` for every one that failed.

    ``config(item)`` is the run's :class:`~relu_ratio.train.TrainConfig`; ``check(item)`` returns ``None``
    to train it, a note to skip it (``"done, skipped"``), or raises :class:`NotTrained` to count it as a
    failure. Each run is trained holding its folder's lock, so a folder another process trains in is a
    failure that leaves that folder alone; any other failure is recorded in the run's ``failed.json``
    (:func:`train_or_record_failure`) and the series goes on. ``log`` gets one line per run and outcome,
    ``[k/n] <name>: ...``, after each run trained with the time so far and the time left at this pace
    (:class:`relu_ratio.progress.TimeLeft`).
    """
    failures, pace = [], TimeLeft(len(items))
    for number, item in enumerate(items, start=1):
        prefix = f"[{number}/{len(items)}] {name(item)}"
        try:
            skipped = check(item)
        except NotTrained as error:
            result, message = None, str(error)
        else:
            if skipped is not None:
                log(f"{prefix}: {skipped}")
                continue
            pace.start()
            result, message = _train_locked(config(item), prefix, log)
        if message is not None:
            failures.append((item, message))
            log(f"{prefix}: FAILED: {message}" + (f" ({pace.finished(number)})" if pace.running else ""))
        else:
            top1 = 100 * result[top1_key(result)]
            log(f"{prefix}: {scored_on(result)} top-1 {top1:.2f} % ({pace.finished(number)})")
    return failures


def _train_locked(
    config: TrainConfig, prefix: str, log: Callable[[str], object]
) -> tuple[dict | None, str | None]:
    """:func:`train_or_record_failure` holding the run folder's lock, so that a folder another process
    trains in is reported (``(None, message)``) without writing ``failed.json`` into it."""
    log(f"{prefix}: training ({command_for(config.resolved())})")
    try:
        with folder_lock.locked_folder(config.out, "run folder"):
            return train_or_record_failure(config)
    except folder_lock.FolderInUse as error:
        return None, str(error)


def train_or_record_failure(config: TrainConfig) -> tuple[dict | None, str | None]:
    """``(result, None)`` after :func:`relu_ratio.train.run`, or ``(None, message)`` if it failed; a failure
    is written to the run's ``failed.json``, so that one bad run of a series is reported, not hidden, and
    does not stop the others. ``failed.json`` describes the last attempt only: a new attempt removes it
    first, so a run resuming after a failure reads as running, not failed."""
    out = Path(config.out)
    keras.backend.clear_session()
    (out / FAILED_FILE).unlink(missing_ok=True)
    try:
        result = train_package.run(config)
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        out.mkdir(parents=True, exist_ok=True)
        files.write_json(out / FAILED_FILE, {"error": message, "traceback": traceback.format_exc()})
        return None, message
    return result, None
