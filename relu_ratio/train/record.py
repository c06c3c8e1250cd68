"""What a training run leaves in its folder, read back in one place: :class:`RunRecord`.

A run folder holds ``config.json`` (the resolved :class:`~relu_ratio.train.TrainConfig`, the command, the
architecture, the dataset), ``metrics.csv`` (a row per epoch), ``progress.json`` (wall and CPU seconds, in
all and per device), ``result.json`` once finished, ``failed.json`` if it failed, and the weights. The zoo,
the experiments report and the training queue read runs through :meth:`RunRecord.read` instead of spelling
the keys themselves.

Example:
    >>> from relu_ratio.train import RunRecord
    >>> RunRecord.read("runs/resnet20_21").state  # doctest: +SKIP
    'finished'
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path


def metric_column(out: str | os.PathLike, name: str) -> list[float]:
    """One column of a run's ``metrics.csv`` (a value per epoch, e.g. ``"val_accuracy"``); ``[]`` if none."""
    path = Path(out) / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """The files of one run folder, parsed. Missing files read as empty (a run not started yet)."""

    path: Path
    config: dict  # config.json: the resolved TrainConfig fields, "command", "architecture", "dataset_info"...
    result: dict  # result.json: "epochs_completed", "<split>_top1", "wall_time_s", "cpu_time_s", "device"...
    failure: dict  # failed.json: "error", "traceback"
    clock: dict  # progress.json: "wall_time_s", "cpu_time_s" summed over resumed sessions, "devices"
    curve: tuple[float, ...]  # validation accuracy (0-1) after each epoch, from metrics.csv

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunRecord:
        path = Path(path)
        return cls(
            path,
            _read_json(path / "config.json"),
            _read_json(path / "result.json"),
            _read_json(path / "failed.json"),
            _read_json(path / "progress.json"),
            tuple(metric_column(path, "val_accuracy")),
        )

    @property
    def state(self) -> str:
        """``"finished"``, ``"failed"``, ``"partial"`` (epochs logged, not finished: running or cut off) or
        ``"waiting"``."""
        if self.result:
            return "finished"
        if self.failure:
            return "failed"
        return "partial" if self.curve else "waiting"

    @property
    def epochs_done(self) -> int:
        return int(self.result.get("epochs_completed", len(self.curve)))

    @property
    def wall_time_s(self) -> float:
        return float(self.result.get("wall_time_s", self.clock.get("wall_time_s", 0.0)))

    @property
    def cpu_time_s(self) -> float:
        return float(self.result.get("cpu_time_s", self.clock.get("cpu_time_s", 0.0)))

    @property
    def precision(self) -> str | None:
        """The dtype policy the run trained in: recorded, or fixed by its ``mixed_precision`` setting
        (runs from before it was recorded); ``None`` where ``auto`` left it to the machine."""
        recorded = self.result.get("precision") or self.config.get("precision")
        return recorded or fixed_precision(self.config.get("mixed_precision"))


def fixed_precision(mode: str | None) -> str | None:
    """The dtype policy a ``mixed_precision`` setting fixes: ``off`` is float32, ``auto`` (or none) depends
    on the machine (``None``), a policy name is itself."""
    return "float32" if mode == "off" else None if mode in (None, "auto") else str(mode)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
