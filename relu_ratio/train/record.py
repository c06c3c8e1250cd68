"""What a training run leaves in its folder, read back in one place: :class:`RunRecord`.

A run folder holds ``config.json`` (the resolved :class:`~relu_ratio.train.TrainConfig`, the command, the
architecture, the dataset), ``metrics.csv`` (a row per epoch), ``progress.json`` (wall and CPU seconds, in
all and per device), ``result.json`` once finished, ``failed.json`` if it failed, and the weights. The zoo,
the experiments report and the training queue read runs through :meth:`RunRecord.read` instead of spelling
the keys themselves. A damaged file (not JSON, not an object, a key missing or of the wrong type, a value
in ``metrics.csv`` that is not a number) raises :class:`RunFileError` naming the file and what is wrong;
:meth:`RunRecord.read` collects those in :attr:`RunRecord.damage` instead, so that a report of many runs
names the damaged one and goes on with the others.

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

from relu_ratio import files
from relu_ratio.validators import check_seed, is_instance

NUMBER = (int, float)  # JSON numbers (never a bool)

# The names of what a run folder holds, given once (the training, the queue, the zoo and the packing of runs
# use these):
CONFIG_FILE = "config.json"  # the first file a run writes: a folder without it holds no run to resume
METRICS_FILE = "metrics.csv"  # a row per epoch; a zoo entry keeps its run's
PROGRESS_FILE = "progress.json"
RESULT_FILE = "result.json"  # once finished
FAILED_FILE = "failed.json"  # a series' record of its last attempt, if it failed (relu_ratio.train.series)
WEIGHTS_FILE = "model.weights.h5"  # the final weights, the model's alone: what a zoo entry stores
BEST_WEIGHTS_FILE = "best.weights.h5"  # the best epoch's
BACKUP_FOLDER = "backup"  # mid-epoch and epoch-end backups (relu_ratio.train.callbacks.Backup)
TENSORBOARD_FOLDER = "tensorboard"
LOG_FILE = "train.log"  # the run's output, where a tool of the package logs it (training/gpu_pair.py)
# A zoo entry's metadata (relu_ratio.zoo.entry), named here because the zoo imports train, not the other
# way round: a folder holding it is a zoo entry's, never a run's.
METADATA_FILE = "metadata.json"


class RunFileError(ValueError):
    """A file of a run folder that does not hold what it should; the message names the file and what is
    wrong (``path``, ``problem``)."""

    def __init__(self, path: str | os.PathLike, problem: str, hint: str = ""):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{os.fspath(path)}: {problem}" + (f"; {hint}" if hint else ""))

    @property
    def short(self) -> str:
        """``<file name>: <problem>``, for a report that already names the run."""
        return f"{self.path.name}: {self.problem}"


def read_json(path: str | os.PathLike, keys: dict[str, tuple[type, ...]] | None = None,
              required: tuple[str, ...] = (), hint: str = "") -> dict:  # fmt: skip
    """The JSON object in ``path`` (``{}`` if there is no file), checked: ``keys`` gives the types of the
    keys it may hold, ``required`` those it must hold. Raises :class:`RunFileError` (``hint``: what to do)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no such file (no such folder)
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise RunFileError(path, f"cannot be read ({error})", hint) from error
    try:
        value = json.loads(text)
    except RecursionError:
        raise RunFileError(path, "is nested deeper than JSON's reader goes (not a file this package wrote)",
                           hint) from None
    except ValueError as error:
        what = "is empty" if not text.strip() else f"is not valid JSON ({error})"
        raise RunFileError(path, f"{what} (truncated?)", hint) from None
    if not isinstance(value, dict):
        raise RunFileError(path, f"holds a JSON {type(value).__name__}, not an object", hint)
    return check_keys(path, value, keys or {}, required, hint)


def check_keys(path: Path, value: dict, keys: dict[str, tuple[type, ...]], required: tuple[str, ...] = (),
               hint: str = "") -> dict:  # fmt: skip
    """``value`` (the JSON object read from ``path``) if it holds ``required`` and ``keys`` are of their
    types; else :class:`RunFileError`."""
    missing = [key for key in required if key not in value]
    if missing:
        raise RunFileError(path, f"lacks {', '.join(map(repr, missing))}", hint)
    for key, types in keys.items():
        if key in value and not is_instance(value[key], types):
            kinds = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise RunFileError(path, f"{key!r} is {value[key]!r}, not {kinds}", hint)
    return value


def read_result(out: str | os.PathLike) -> dict:
    """The run's ``result.json`` (``{}`` if not finished), with its epochs and its split's top-1."""
    path = Path(out) / RESULT_FILE
    result = read_json(path)
    if result or path.is_file():  # {} is a damaged result, not none
        check_result(path, result)
    return result


def check_result(path: Path, result: dict) -> None:
    """:class:`RunFileError` unless ``result`` (a run's ``result.json``, read from ``path``) holds its epochs
    and its split's top-1 and its other keys are of their types."""
    check_keys(path, result, {"evaluated_on": (str,)})  # before it names the top-1's key
    top1 = top1_key(result)
    types = {"epochs_completed": (int,), "wall_time_s": NUMBER, "cpu_time_s": NUMBER, "devices": (dict,),
             top1: NUMBER}  # fmt: skip
    check_keys(path, result, types, required=("epochs_completed", top1))
    _check_devices(path, result)


def scored_on(result: dict) -> str:
    """The split a finished run's ``result`` (its ``result.json``) was scored on, its ``evaluated_on``:
    ``"test"``, or ``"holdout"`` (held-out training images, a recipe proxy:
    :attr:`~relu_ratio.train.TrainConfig.evaluated_on`); ``"test"`` for a result that predates the key."""
    return result.get("evaluated_on", "test")


def top1_key(result: dict) -> str:
    """The key of a finished run's final top-1 in its ``result``: ``test_top1``, or ``holdout_top1``
    (:func:`scored_on`).

    >>> top1_key({"evaluated_on": "holdout"}), top1_key({})
    ('holdout_top1', 'test_top1')
    """
    return f"{scored_on(result)}_top1"


def read_progress(out: str | os.PathLike) -> dict:
    """The run's ``progress.json``: wall and CPU seconds so far, in all and per device, and the epochs
    trained in them (``{}`` if none)."""
    path = Path(out) / PROGRESS_FILE
    types = {"wall_time_s": NUMBER, "cpu_time_s": NUMBER, "devices": (dict,), "epochs_trained": NUMBER}
    progress = read_json(path, types, hint="delete it to count the run's time from now on")
    _check_devices(path, progress)
    return progress


DEVICE_TIMES = ("wall_time_s", "cpu_time_s")


def _check_devices(path: Path, value: dict) -> None:
    for name, spent in value.get("devices", {}).items():
        backends = spent.get("backends", []) if isinstance(spent, dict) else None
        if not (isinstance(spent, dict) and all(is_instance(spent.get(k), NUMBER) for k in DEVICE_TIMES)
                and is_instance(spent.get("epochs_trained", 0), NUMBER)
                and isinstance(backends, list) and all(isinstance(b, str) for b in backends)):
            raise RunFileError(path, f"'devices' holds {name!r}: {spent!r}, not wall_time_s and cpu_time_s "
                                     "(and epochs_trained, a number, and backends, a list of Keras backends, "
                                     "where recorded)")


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise RunFileError(path, f"line {line}: {column} {text!r} is not a number") from None


def _metric_rows(out: str | os.PathLike) -> tuple[Path, list[str], list[dict]]:
    """``(path, header, rows)`` of the run's ``metrics.csv`` (rows as text); an empty file has no header."""
    path = Path(out) / METRICS_FILE
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return path, list(reader.fieldnames or []), rows
    except (FileNotFoundError, NotADirectoryError):
        return path, [], []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RunFileError(path, f"cannot be read ({error})") from error


def metric_column(out: str | os.PathLike, name: str) -> list[float]:
    """One column of a run's ``metrics.csv`` (a value per epoch, e.g. ``"val_accuracy"``); ``[]`` if no epoch
    is logged yet. A column the file does not have, or a value that is not a number, raises
    :class:`RunFileError` naming the file (and the columns it has, or the line)."""
    path, header, rows = _metric_rows(out)
    if header and name not in header:
        raise RunFileError(path, f"has no column {name!r} (it has {', '.join(header)})")
    return [_number(row[name], path, line, name) for line, row in enumerate(rows, start=2) if row.get(name)]


def drop_epochs_from(out: str | os.PathLike, epoch: int) -> int:
    """Remove the rows of epoch ``epoch`` (0-based) and later from the run's ``metrics.csv`` (atomically);
    returns how many. A run resumed from an earlier backup than its last one (a damaged newest backup)
    trains those epochs again, and logs them again."""
    path, header, rows = _metric_rows(out)
    epochs = [_number(row.get("epoch") or "", path, line, "epoch") for line, row in enumerate(rows, start=2)]
    keep = [row for row, number in zip(rows, epochs) if number < epoch]
    if len(keep) == len(rows):
        return 0
    with files.atomic_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(keep)
    return len(rows) - len(keep)


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """The files of one run folder, parsed. Missing files read as empty (a run not started yet); damaged
    ones too, and :attr:`damage` says which and why (a path that is a file, not a folder, too)."""

    path: Path
    config: dict  # config.json: the resolved TrainConfig fields, "command", "architecture", "dataset_info"...
    result: dict  # result.json: "epochs_completed", "<split>_top1", "wall_time_s", "cpu_time_s", "device"...
    failure: dict  # failed.json: "error", "traceback"
    clock: dict  # progress.json: "wall_time_s", "cpu_time_s" summed over resumed sessions, "devices",
    # "epochs_trained" (in that time; older records lack it)
    curve: tuple[float, ...]  # validation accuracy (0-1) after each epoch, from metrics.csv
    damage: tuple[str, ...] = ()  # "<file>: <what is wrong>" for each damaged file (read as empty)

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunRecord:
        path = Path(path)
        if path.exists() and not path.is_dir():
            problem = RunFileError(path, "is a file, not a run folder (the folder a training run fills)")
            return cls(path, {}, {}, {}, {}, (), (problem.short,))
        damage: list[str] = []

        def attempt(empty, read, *args):
            try:
                return read(*args)
            except RunFileError as error:
                damage.append(error.short)
                return empty

        config = attempt({}, read_json, path / CONFIG_FILE)
        result = attempt({}, read_result, path)
        failure = attempt({}, read_json, path / FAILED_FILE)
        clock = attempt({}, read_progress, path)
        curve = tuple(attempt([], metric_column, path, "val_accuracy"))
        return cls(path, config, result, failure, clock, curve, tuple(damage))

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
    def dataset_name(self) -> str | None:
        """The name of the data the run trains on (its ``DatasetInfo.name``), where its config records it."""
        return self.config.get("dataset_info", {}).get("name")

    @property
    def epochs_done(self) -> int:
        return int(self.result.get("epochs_completed", len(self.curve)))

    @property
    def epochs_trained(self) -> float:
        """Epochs trained in :attr:`wall_time_s`: a fraction where the time was recorded at a mid-epoch
        backup; :attr:`epochs_done` where it was not recorded (older runs) or the run finished."""
        if self.result or "epochs_trained" not in self.clock:
            return float(self.epochs_done)
        return float(self.clock["epochs_trained"])

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


SEED_SEPARATOR = "-seed"  # a seeded run's folder: <name>-seed<k>


def run_folder_name(name: str, seed: int) -> str:
    """The folder of the run of ``name`` (a model or zoo name) with ``seed``, in a queue's or an experiment's
    runs: ``run_folder_name("resnet20_21.long", 0)`` is ``"resnet20_21.long-seed0"``."""
    check_seed(seed, "a run's seed")
    return f"{name}{SEED_SEPARATOR}{seed}"


def parse_run_folder_name(folder: str | os.PathLike) -> tuple[str, int] | None:
    """``(name, seed)`` of a folder named by :func:`run_folder_name` (its last path part), else ``None``.

    >>> parse_run_folder_name("runs/resnet20_21.long-seed3"), parse_run_folder_name("runs/x")
    (('resnet20_21.long', 3), None)
    """
    name, separator, seed = Path(folder).name.rpartition(SEED_SEPARATOR)
    ok = separator and name and seed.isascii() and seed.isdigit() and seed == str(int(seed))
    return (name, int(seed)) if ok else None


def fixed_precision(mode: str | None) -> str | None:
    """The dtype policy a ``mixed_precision`` setting fixes: ``off`` is float32, ``auto`` (or none) depends
    on the machine (``None``), a policy name is itself."""
    return "float32" if mode == "off" else None if mode in (None, "auto") else str(mode)
