"""The zoo's training queue: runs in priority order, kept as data, trained by one command across sessions.

A queue file (the repository's is ``training/queue.json``) lists runs: a model name, a seed, and any
:class:`~relu_ratio.train.TrainConfig` setting (``recipe``, ``epochs``, ``weight_decay``...), with
``defaults`` shared by all, and optionally a ``tag`` for a variant trained otherwise (``"long"``: its runs
are ``<model>.<tag>-seed<k>``, its zoo entry ``<model>.<tag>``). ``run`` trains them one after the other
in that order, each in ``<runs>/<run id>/``: a finished run (``result.json`` written) is skipped if it
trained with the queued settings (so a run trained elsewhere, e.g. on a lent GPU, joins by its folder), a
cut-off one resumes from its backup, a failed one is recorded in its ``failed.json`` and the queue goes
on. So the same command, started again after a kill or in the next session on the same machine, carries
on where it stopped; on another machine, it first takes back a run kept in the repository
(``training/kept/<run id>.tar.gz``, packed with ``training/gpu_pair.py --pack training/kept --float16``)
where that is further than the run's folder there.
``status`` reads the run folders and writes the progress record (epochs reached, accuracy so far,
wall-clock and CPU hours, what is left) and the comparison of the models queued with several seeds
(mean ± sd of test top-1 per precision, the 2:1 - 1:1 difference ± its standard error), also into the
training page (``docs/TRAINING.md``, ``--seeds-page``). With ``--write`` it also keeps every finished run's
config and result in the queue's record of finished runs beside the queue file
(``training/queue.finished.json``, committed), so that a clone on a machine without the run folders
neither trains them again nor loses them from the record; a run queued for the zoo (``register``) is the
exception until an entry is registered from it, since its weights were in the lost folder. A run trained
again keeps there the finished attempts it replaced, whose hours ``status`` counts in its totals.

Command line::

    python -m relu_ratio.queue run training/queue.json --runs ~/relu_runs/zoo
    python -m relu_ratio.queue status training/queue.json --runs ~/relu_runs/zoo \
        --write training/PROGRESS.md --seeds-page docs/TRAINING.md

Example:
    >>> from relu_ratio import queue
    >>> [r.run_id for r in queue.load("training/queue.json")][:2]  # doctest: +SKIP
    ['resnet20_11-seed0', 'resnet20_21-seed0']
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import json
import os
import shlex
import sys
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from relu_ratio import data, files, flags, folder_lock, models, stats, train
from relu_ratio.train import archive
from relu_ratio.train.devices import DEVICE_SEPARATOR, is_gpu
from relu_ratio.train.fit import MAY_CHANGE_ON_RESUME
from relu_ratio.train.record import RunFileError, check_result, fixed_precision, run_folder_name, top1_key
from relu_ratio.train.series import NotTrained, train_in_order
from relu_ratio.validators import check_seed, repeated, suggest
from relu_ratio.zoo import registry
from relu_ratio.zoo.entry import TAG_PATTERN

# stands for `queue run --dataset` where a queue is read without it: a tensorflow-datasets name, so that a
# queue may set data_dir (checked against the real --dataset when it runs)
ANY_DATASET = next(iter(data.TFDS_STATS))
RESERVED = {"model", "seed", "out", "dataset"}  # set per run or by the command, not in the queue's settings
SETTINGS = {f.name for f in dataclasses.fields(train.TrainConfig)} - RESERVED
ITEM_KEYS = {"model", "tag", "seed", "register", "why"}
QUEUE_KEYS = {"about", "defaults", "runs"}  # a queue file's keys: what it is for, settings for all, the runs
EARLIER = "earlier_attempts"  # a row of the record of finished runs: the attempts that a later one replaced


@dataclasses.dataclass(frozen=True)
class QueuedRun:
    """One run of the queue: ``model`` trained with ``seed`` and ``settings`` (TrainConfig fields).

    A ``tag`` names a variant of a model trained otherwise (e.g. ``long``: more epochs): its runs, its seed
    statistics and its zoo entry (``resnet20_21.long``) are apart from the plain model's.
    """

    model: str
    seed: int
    settings: dict
    register: bool = False  # the run whose weights become the zoo entry (else a repeat for mean +- sd)
    why: str = ""
    tag: str | None = None

    @property
    def name(self) -> str:
        """The zoo name of what it trains: ``resnet20_21`` or, tagged, ``resnet20_21.long``."""
        return self.model if self.tag is None else f"{self.model}.{self.tag}"

    @property
    def run_id(self) -> str:
        return run_folder_name(self.name, self.seed)

    def config(self, runs: str | os.PathLike, dataset: str) -> train.TrainConfig:
        return train.TrainConfig(
            model=self.model, seed=self.seed, dataset=dataset, out=os.fspath(Path(runs) / self.run_id),
            **self.settings,
        )  # fmt: skip


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object's pairs as a dict, refusing a key given twice (``json`` would keep the last one)."""
    twice = repeated(key for key, _ in pairs)
    if twice:
        raise ValueError(f"{', '.join(map(repr, twice))} given twice in one object (only one would count); "
                         "give each key once")  # fmt: skip
    return dict(pairs)


def load(path: str | os.PathLike) -> list[QueuedRun]:
    """The runs of the queue file at ``path``, checked (names, settings, values) before anything trains."""
    try:
        spec = json.loads(Path(path).read_text(), object_pairs_hook=_unique_keys)
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested past Python's limit
        raise ValueError(f"cannot read the queue {os.fspath(path)!r}: {error}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise ValueError(f"the queue {os.fspath(path)!r} must be a JSON object with a non-empty list 'runs'.")
    unknown = set(spec) - QUEUE_KEYS
    if unknown:
        raise ValueError(f"the queue {os.fspath(path)!r} has unknown key(s) {sorted(unknown)}"
                         f"{suggest(min(unknown), QUEUE_KEYS)}; valid: {', '.join(sorted(QUEUE_KEYS))}.")
    defaults = spec.get("defaults", {})
    _check_settings(defaults, "defaults")
    queued, seen, networks = [], set(), {}
    for number, item in enumerate(spec["runs"], start=1):
        where = f"run {number} of {os.fspath(path)!r}"
        if not isinstance(item, dict) or "model" not in item:
            raise ValueError(f"{where} must be an object with at least 'model'; received {item!r}.")
        settings = {k: v for k, v in item.items() if k not in ITEM_KEYS}
        _check_settings(settings, where)
        seed = item.get("seed", 0)
        check_seed(seed, f"{where}: seed")
        tag = item.get("tag")
        if tag is not None and not (isinstance(tag, str) and TAG_PATTERN.fullmatch(tag)):
            raise ValueError(f"{where}: tag must be lower-case letters, digits and '_' (e.g. 'long'); "
                             f"received {tag!r}.")  # fmt: skip
        register, why = item.get("register", False), item.get("why", "")
        if not isinstance(register, bool):
            raise ValueError(f"{where}: register must be true or false (a boolean); received {register!r}.")
        if not isinstance(why, str):
            raise ValueError(f"{where}: why must be a string; received {why!r}.")
        run = QueuedRun(item["model"], seed, {**defaults, **settings}, register, why, tag)
        try:
            run.config("runs", ANY_DATASET).resolved()
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where} ({run.run_id}): {error}") from None
        if run.run_id in seen:
            raise ValueError(f"{where}: {run.run_id} is queued twice.")
        same = networks.setdefault((models.network_of(run.model), run.tag, seed), run.run_id)
        if same != run.run_id:
            raise ValueError(f"{where}: {run.run_id} trains the network of {same} (another name for it) "
                             "with the same seed: it is queued twice. Drop one, or tag a variant "
                             "('tag').")  # fmt: skip
        seen.add(run.run_id)
        queued.append(run)
    return queued


def _check_settings(settings: dict, where: str) -> None:
    if not isinstance(settings, dict):
        raise ValueError(f"{where} must be an object of training settings; received {settings!r}.")
    unknown = set(settings) - SETTINGS
    set_elsewhere = unknown & {"out", "dataset"}
    if set_elsewhere:
        raise ValueError(f"{where} sets {sorted(set_elsewhere)}: a queued run's folder is <--runs>/<run id> "
                         "and its data queue run's --dataset, for every run.")  # fmt: skip
    if unknown:
        raise ValueError(
            f"{where} has unknown setting(s) {sorted(unknown)}{suggest(min(unknown), SETTINGS)}; "
            f"valid: {', '.join(sorted(SETTINGS))} (and per run: {', '.join(sorted(ITEM_KEYS))})."
        )


def finished_path(queue_path: str | os.PathLike) -> Path:
    """The queue's record of finished runs, beside it: ``training/queue.json`` -> ``queue.finished.json``."""
    path = Path(queue_path)
    return path.with_name(f"{path.stem}.finished.json")


def kept_folder(queue_path: str | os.PathLike) -> Path:
    """Where runs of the queue are kept across a change of machine, beside it: ``training/kept/`` (each as
    ``<run id>.tar.gz``, packed by ``training/gpu_pair.py --pack training/kept --float16``), taken back by
    :func:`run`."""
    return Path(queue_path).with_name("kept")


class FinishedRecord(NamedTuple):
    """The record of finished runs (see :func:`write_finished`), read by :func:`read_record`."""

    runs: dict[str, train.RunRecord]  # the last finished attempt of each run, by run id
    earlier: dict[str, tuple[train.RunRecord, ...]]  # those a later attempt replaced, first first


def read_record(path: str | os.PathLike) -> FinishedRecord:
    """The finished runs recorded in ``path`` and the earlier attempts of each run trained again; empty if
    no file."""
    rows = _finished_rows(path)
    return FinishedRecord(
        {run_id: _recorded_run(path, row) for run_id, row in rows.items() if row["result"]},
        {run_id: tuple(_recorded_run(path, attempt) for attempt in row.get(EARLIER, []))
         for run_id, row in rows.items()},
    )  # fmt: skip


def _recorded_run(path: str | os.PathLike, row: dict) -> train.RunRecord:
    return train.RunRecord(Path(path), row["config"], row["result"], {}, {}, ())


def _finished_rows(path: str | os.PathLike) -> dict[str, dict]:
    """The rows ``{run id: {"config": {...}, "result": {...}}}`` of the record of finished runs, checked (a
    run trained again also has ``EARLIER``: a list of such rows)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        recorded = json.loads(path.read_text())["runs"]
        problems = (_row_problem(path, run_id, row) for run_id, row in recorded.items())
        error = next(filter(None, problems), None)
        if error is None:
            return recorded
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as caught:
        error = repr(caught)
    raise ValueError(f"cannot read the record of finished runs {os.fspath(path)!r}: {error}; "
                     "it is written by `queue status --write`")  # fmt: skip


def _row_problem(path: Path, run_id: str, row: object) -> str | None:
    """What is wrong with one run's row of the record of finished runs ``path`` (its result checked as a run
    folder's ``result.json`` is), or ``None``."""
    if not (isinstance(row, dict) and all(isinstance(row.get(k), dict) for k in ("config", "result"))):
        return f"{run_id}: {row!r:.60} is not an object holding the run's config and result (objects)"
    attempts = row.get(EARLIER, [])
    if not isinstance(attempts, list):
        return f"{run_id}: its {EARLIER} {attempts!r:.60} is not a list"
    problems = (_row_problem(path, f"{run_id}, earlier attempt {n}", a) for n, a in enumerate(attempts, 1))
    error = next(filter(None, problems), None)
    if error is not None:
        return error
    try:
        if row["result"]:
            check_result(path, row["result"])
    except RunFileError as error:
        return f"{run_id}: its result: {error.problem}"
    return None


def write_finished(path: str | os.PathLike, queued: list[QueuedRun], runs: str | os.PathLike) -> None:
    """Record in ``path`` the config and result of every finished run of ``queued`` under ``runs``, keeping
    the runs recorded before (from run folders on other machines) whose folders are not here. A run recorded
    with another result (another attempt: ``result.json`` is written once, when a run finishes) was trained
    again: its row keeps the attempts recorded before, each once, in ``EARLIER`` (the replaced one last)."""
    rows = _finished_rows(path)
    for item in queued:
        record = train.RunRecord.read(Path(runs) / item.run_id)
        if record.state == "finished":
            before = rows.get(item.run_id, {"result": {}})
            recorded = [*before.get(EARLIER, []), {k: v for k, v in before.items() if k != EARLIER}]
            earlier = [attempt for attempt in recorded if attempt["result"] not in ({}, record.result)]
            rows[item.run_id] = {"config": record.config, "result": record.result}
            if earlier:
                rows[item.run_id][EARLIER] = earlier
    order = {item.run_id: number for number, item in enumerate(queued)}
    rows = dict(sorted(rows.items(), key=lambda row: (order.get(row[0], len(order)), row[0])))
    about = ("Every finished run of the queue beside this file: its config.json and result.json, written by "
             "`python -m relu_ratio.queue status <queue> --runs <folder> --write <record>`. `queue run` "
             "skips these runs and `queue status` reports them where their folders are not on this "
             f"machine. A run trained again keeps the finished attempts it replaced in '{EARLIER}' (their "
             "config.json and result.json), whose hours `queue status` counts.")  # fmt: skip
    files.write_json(path, {"about": about, "runs": rows})


def record_of(
    item: QueuedRun, runs: str | os.PathLike, finished: dict[str, train.RunRecord]
) -> train.RunRecord:
    """The run's folder under ``runs``, or its entry in ``finished`` where no finished run is there. A run
    queued for the zoo (``register``) counts as finished elsewhere only once a zoo entry was registered from
    it: until then its weights are its folder's, so one recorded without them (a folder lost with its
    machine) is trained again."""
    record = train.RunRecord.read(Path(runs) / item.run_id)
    return finished[item.run_id] if record.state != "finished" and recorded(item, finished) else record


def recorded(item: QueuedRun, finished: dict[str, train.RunRecord]) -> bool:
    """Whether the record of finished runs ``finished`` is enough for ``item``: it holds the run and, for a
    run queued for the zoo, a zoo entry was registered from it (see :func:`record_of`)."""
    if item.run_id not in finished:
        return False
    return not item.register or registered(item.run_id, finished[item.run_id].result)


def registered(run_id: str, result: dict) -> bool:
    """Whether a zoo entry was registered from the finished run ``run_id`` whose ``result.json`` is
    ``result``: an entry of the shipped store or of ``$RELU_RATIO_ZOO`` whose training run folder is named
    ``run_id`` and whose recorded result has the same epochs and final top-1 (not another run that happened
    to be trained in a folder of that name). An entry whose metadata cannot be read stands for no run, and
    a store that is not there holds none."""
    keys = ("epochs_completed", top1_key(result))
    stores = sorted({registry.shipped_store().resolve(), registry.store_dir().resolve()})
    entries = [entry for store in stores if store.is_dir() for entry in registry.readable_entries(store)[0]]
    for entry in entries:
        out, done = entry.training["config"].get("out", ""), entry.training["result"]
        same = all(key in done and done[key] == result.get(key) for key in keys)
        if same and Path(str(out)).name == run_id:
            return True
    return False


def run(
    queued: list[QueuedRun],
    runs: str | os.PathLike,
    dataset: str,
    only: str | None = None,
    log=print,
    finished: dict[str, train.RunRecord] | None = None,
    kept: str | os.PathLike | None = None,
) -> list[tuple[QueuedRun, str]]:
    """Train the queue in order (skip finished runs, in ``runs`` or in ``finished``, and resume cut-off
    ones); ``(run, message)`` per failure. A run kept in the folder ``kept`` (:func:`kept_folder`) further
    than its folder in ``runs`` (or where it has none) is taken back first, so that it goes on where it was
    packed (:func:`relu_ratio.train.archive.take_back`); one that cannot be taken back is a failure.

    One queue at a time works in ``runs``: a second is refused at once
    (:class:`relu_ratio.folder_lock.FolderInUse` naming the first). A run whose folder another process
    trains in (a ``python -m relu_ratio.train`` on it), or whose files are damaged, is a failure logged
    without touching the folder; the queue goes on.
    """
    chosen = [q for q in queued if only is None or fnmatch.fnmatchcase(q.run_id, only)]
    if not chosen:
        raise ValueError(f"--only {only!r} matches none of {', '.join(q.run_id for q in queued)}.")
    for split in ("train", *(["test"] if any(not q.settings.get("holdout") for q in chosen) else [])):
        data.find(dataset, split)  # once, before any run's folder: not a failure per run
    for item in chosen:  # settings that need the real --dataset (data_dir: a tfds name)
        try:
            item.config(runs, dataset).resolved()
        except ValueError as error:
            raise ValueError(f"{item.run_id}: {error}") from None
    with folder_lock.locked_folder(runs, "queue's runs folder"):
        return _run(chosen, runs, dataset, log, finished or {}, kept)


def _run(
    chosen: list[QueuedRun],
    runs: str | os.PathLike,
    dataset: str,
    log,
    finished: dict[str, train.RunRecord],
    kept: str | os.PathLike | None,
) -> list[tuple[QueuedRun, str]]:
    """:func:`run` once it holds ``runs``."""
    dataset_names: list[str] = []

    def check(item: QueuedRun) -> str | None:
        """``None``: train it; a note: skip it; :class:`NotTrained`: a damaged folder, other settings, or a
        kept run that cannot be taken back."""
        config = item.config(runs, dataset)
        record = record_of(item, runs, finished)
        kept_here = kept is not None and record.state != "finished" and not record.damage
        if kept_here and _took_back(archive.packed_path(Path(kept), item.run_id), Path(runs), log):
            record = record_of(item, runs, finished)
        if record.damage:
            raise NotTrained(f"{config.out} is damaged: {'; '.join(record.damage)}; repair or move it")
        if record.state != "finished":
            if item.run_id in finished:  # recorded, but its weights are lost (see record_of)
                log(f"{item.run_id}: recorded as finished in {finished[item.run_id].path}, but its weights "
                    "are neither in its folder here nor in a zoo entry registered from it: training it again")
            return None
        if not dataset_names:  # read once, and only when a finished run needs it
            dataset_names.append(data.load(dataset, "train", data_dir=config.data_dir).info.name)
        differ = differences(config, record.config, dataset_names[0])
        if differ:
            where = config.out if record.path == Path(config.out) else f"{record.path} ({item.run_id})"
            raise NotTrained(f"{where} holds a finished run trained with other settings: "
                             f"{', '.join(differ)}; move it away or change the queue")  # fmt: skip
        elsewhere = "" if record.path == Path(config.out) else f" (recorded in {record.path})"
        return f"finished{elsewhere}, skipped"

    return train_in_order(chosen, lambda item: item.config(runs, dataset), check,
                          name=attrgetter("run_id"), log=log)  # fmt: skip


def _took_back(packed: Path, runs: Path, log) -> bool:
    """Whether the run that the archive ``packed`` keeps (if there is one) was taken back into ``runs``, as
    it is where it is further than the run's folder there; :class:`NotTrained` where it cannot be taken back
    (damaged, or the folder in use, a disk that fails), rather than train the run from an earlier state."""
    if not packed.is_file():
        return False
    try:
        run_id = archive.take_back(packed, runs)
    except archive.NotFurther:
        return False  # the folder here is as far (the machine that packed it) or finished
    except (ValueError, OSError) as error:
        raise NotTrained(f"{packed} keeps this run but cannot be taken back: {error}") from None
    log(f"{run_id}: taken back from {packed}, where it was kept from another machine")
    return True


def differences(config: train.TrainConfig, recorded: dict, dataset_name: str | None = None) -> list[str]:
    """The training settings in which a run folder's ``config.json`` (``recorded``) differs from the queued
    ``config``. A setting the queue leaves to the recipe takes the value the run started with (as a resumed
    run keeps it), so only the queue's own settings and the recipe's name are held against the folder. Where
    and how it ran (``MAY_CHANGE_ON_RESUME``: run folder, dataset path, backups, logging; ``distribute``) is
    not compared, nor a setting the folder does not record (it predates the setting), so a run trained
    elsewhere (a lent GPU) with the queued settings counts as the queued run. ``dataset_name``: the name of
    the queued dataset's training split (e.g. ``cifar10_jpeg``), compared with the one the run recorded.

    Example:
        >>> config = train.TrainConfig(model="resnet20_21", recipe="fast", weight_decay=5e-4)
        >>> differences(config, {"recipe": "fast", "lr": 0.2, "weight_decay": 1e-4})
        ['weight_decay 0.0001 (queued: 0.0005)']
    """
    if not recorded:
        return ["config.json missing or unreadable"]
    expected = dataclasses.asdict(train.with_recorded_recipe(config, recorded).resolved())
    found = [f"{key} {recorded[key]!r} (queued: {expected[key]!r})"
             for key in sorted(set(expected) - set(MAY_CHANGE_ON_RESUME) - {"distribute"})
             if key in recorded and recorded[key] != expected[key]]  # fmt: skip
    name = recorded.get("dataset_info", {}).get("name")
    if dataset_name is not None and name != dataset_name:
        found.append(f"dataset {name!r} (queued: {dataset_name!r})")
    return found


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where one queued run stands, read from its folder."""

    run: QueuedRun
    state: str  # "finished", "partial" (running or cut off), "failed", "waiting" or "damaged: <file>: <what>"
    epochs_done: int
    epochs: int
    top1: float | None  # final test top-1 (finished) or the last epoch's (so far), in %
    wall_hours: float
    cpu_hours: float
    precision: str | None = None  # the dtype policy it trained in, where recorded or fixed by its config
    device: str | None = None  # what it trained on so far, e.g. "cpu: 2 cores" or "gpu: … + cpu: …"
    differs: tuple[str, ...] = ()  # settings in which the folder differs from the queue (see differences)
    devices: dict | None = None  # wall and CPU seconds per device, where recorded (a run resumed elsewhere)
    split: str = "test"  # what top1 was measured on: "test", or "holdout" (a slice of the training set)
    epochs_trained: float = 0.0  # in wall_hours, a fraction after a mid-epoch backup (see RunRecord)
    dataset: str | None = None  # the name of the data it trains on (DatasetInfo.name), where recorded
    lost: bool = False  # its recorded finished run has no weights here and no zoo entry (trained again, see
    # record_of); that attempt is one of :attr:`earlier`
    recorded: bool = False  # read from the queue's record of finished runs: finished where its folder is not
    earlier: tuple[train.RunRecord, ...] = ()  # its finished attempts that a later one replaced (trained
    # again, see write_finished), counted in hours()

    @property
    def on_gpu(self) -> bool:
        """Whether it trained on a GPU, all or part (an unfinished run: where its clock recorded devices)."""
        return is_gpu(self.device or "")

    def hours(self, on_gpu: bool) -> tuple[float, float]:
        """Wall-clock and CPU hours spent on GPU machines (``on_gpu``) or on CPUs alone, by this attempt and
        the :attr:`earlier` ones."""
        attempts = [(self.device, self.devices, self.wall_hours, self.cpu_hours)]
        attempts += [(r.result.get("device"), r.result.get("devices"), *_final(r)[1:]) for r in self.earlier]
        spent = [_hours_on(*attempt, on_gpu) for attempt in attempts]
        return sum(wall for wall, _ in spent), sum(cpu for _, cpu in spent)

    @property
    def hours_left(self) -> float | None:
        """Wall-clock hours the remaining epochs take at this run's own pace on the CPU that trained it last
        (where the epochs of each device are recorded, one at least), else at its pace so far if it never ran
        on a GPU; ``None`` before an epoch, and for a run a lent GPU trained last (the CPU queue finishes it)
        or whose CPU pace cannot be told from the GPU's."""
        if self.state == "finished":
            return 0.0
        wall_s, epochs = self.wall_hours * 3600, self.epochs_trained
        last, spent = list((self.devices or {"": {}}).items())[-1]  # the device that trained it last
        if spent.get("epochs_trained", 0) >= 1 and not is_gpu(last):  # an epoch at least: start-up amortised
            wall_s, epochs = spent["wall_time_s"], spent["epochs_trained"]
        elif self.on_gpu:
            return None
        if not epochs:
            return None
        return wall_s / 3600 / epochs * (self.epochs - self.epochs_trained)


def _hours_on(
    device: str | None, devices: dict | None, wall_hours: float, cpu_hours: float, on_gpu: bool
) -> tuple[float, float]:
    """Of one attempt's ``wall_hours`` and ``cpu_hours``, those spent on GPU machines (``on_gpu``) or on CPUs
    alone: by its ``devices`` (seconds per device) where recorded, else all on its ``device``."""
    if not devices:
        return (wall_hours, cpu_hours) if is_gpu(device or "") == on_gpu else (0.0, 0.0)
    spent = [t for name, t in devices.items() if is_gpu(name) == on_gpu]
    return sum(t["wall_time_s"] for t in spent) / 3600, sum(t["cpu_time_s"] for t in spent) / 3600


def progress(
    queued: list[QueuedRun],
    runs: str | os.PathLike,
    finished: dict[str, train.RunRecord] | None = None,
    attempts: dict[str, tuple[train.RunRecord, ...]] | None = None,
) -> list[Progress]:
    """The :class:`Progress` of every queued run under ``runs`` (or recorded in ``finished``), with its
    earlier attempts in ``attempts`` (:attr:`FinishedRecord.earlier`) and the one ``finished`` records where
    the run finished again under ``runs`` (which ``status --write`` moves to them) or trains again (its
    weights lost, :attr:`Progress.lost`)."""
    rows, finished, attempts = [], finished or {}, attempts or {}
    for item in queued:
        record = record_of(item, runs, finished)
        lost = finished.get(item.run_id) if record.state != "finished" and not record.damage else None
        earlier = attempts.get(item.run_id, ())
        if record.state == "finished":  # and the recorded attempt, where it finished again here
            recorded = (*earlier, finished.get(item.run_id, record))
            earlier = tuple(attempt for attempt in recorded if attempt.result != record.result)
        elif lost is not None:  # the recorded attempt, lost, is an earlier one of the run training again
            earlier = (*earlier, lost)
        top1 = record.result.get(top1_key(record.result)) if record.result else (record.curve or [None])[-1]
        config = item.config(runs, ANY_DATASET).resolved()
        devices = record.result.get("devices") or record.clock.get("devices")
        state = f"damaged: {'; '.join(record.damage)}" if record.damage else record.state
        rows.append(Progress(
            item, state, record.epochs_done, config.epochs,
            None if top1 is None else 100 * top1, record.wall_time_s / 3600, record.cpu_time_s / 3600,
            record.precision or fixed_precision(config.mixed_precision),
            record.result.get("device") or (DEVICE_SEPARATOR.join(devices) if devices else None),
            tuple(differences(config, record.config)) if record.state == "finished" else (),
            devices, config.evaluated_on, record.epochs_trained,
            record.dataset_name, lost is not None,
            record is finished.get(item.run_id), earlier,
        ))  # fmt: skip
    return rows


def _final(record: train.RunRecord) -> tuple[float | None, float, float]:
    """A finished run's final top-1 (%, where recorded), wall-clock and CPU hours."""
    top1 = record.result.get(top1_key(record.result))
    return None if top1 is None else 100 * top1, record.wall_time_s / 3600, record.cpu_time_s / 3600


def _final_text(final: tuple[float | None, float, float]) -> str:
    """:func:`_final` in words: ``91.24 %, 14.62 wall h / 21.07 CPU h``."""
    top1, wall, cpu = final
    return f"{'' if top1 is None else f'{top1:.2f} %, '}{wall:.2f} wall h / {cpu:.2f} CPU h"


SEEDS_START, SEEDS_END = "<!-- seeds:table:start -->", "<!-- seeds:table:end -->"


def seed_comparison(rows: list[Progress]) -> str:
    """Markdown: every model (a tagged variant apart) queued with several seeds, its finished seeds' test
    top-1 as mean +- sd (one row per precision: runs trained in different precisions are not pooled), and
    each 2:1 (or other) model against its ``_11`` twin (same tag) in the same precision: the difference of
    the means +- its standard error, also over the seeds trained on CPUs alone where some trained on a GPU
    (another backend, BatchNorm kernel)."""
    queued: dict[str, int] = {}
    for row in rows:
        queued[row.run.name] = queued.get(row.run.name, 0) + 1
    if all(count == 1 for count in queued.values()):
        return "No model is queued with several seeds."
    groups: dict[tuple[str, str], list[Progress]] = {}
    for row in rows:
        if queued[row.run.name] > 1 and row.state == "finished" and row.top1 is not None and not row.differs:
            groups.setdefault((row.run.name, row.precision or "precision not recorded"), []).append(row)
    lines = [
        "| model | precision | seeds finished | test top-1 % by seed | mean ± sd |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (model, precision), done in sorted(groups.items()):
        by_seed = ", ".join(f"{row.top1:.2f} (seed {row.run.seed}{', GPU' if row.on_gpu else ''})"
                            for row in done)  # fmt: skip
        lines.append(f"| `{model}` | {precision} | {len(done)} of {queued[model]} | {by_seed} | "
                     f"{stats.mean_sd([row.top1 for row in done]).text()} |")  # fmt: skip
    lines += [f"| `{model}` | | 0 of {n} | | |" for model, n in queued.items()
              if n > 1 and not any(key[0] == model for key in groups)]  # fmt: skip
    notes = []
    for (model, precision), done in sorted(groups.items()):
        family, depth, _ = models.parse_name(done[0].run.model)
        paired = f"{family}{depth}_11" + ("" if done[0].run.tag is None else f".{done[0].run.tag}")
        if model == paired or (paired, precision) not in groups:
            continue
        base = groups[paired, precision]
        notes.append(_difference(f"`{model}` minus `{paired}` ({precision})", done, base))
        if any(row.on_gpu for row in done + base):
            cpu_only = [[row for row in side if not row.on_gpu] for side in (done, base)]
            notes.append(_difference("The same, seeds trained on CPUs only", *cpu_only))
    return "\n".join(lines + (["", "\n\n".join(notes)] if notes else []))


def _difference(label: str, rows: list[Progress], base: list[Progress]) -> str:
    """``label``: the difference of the mean test top-1 of ``rows`` and ``base`` ± its standard error."""
    mine, theirs = stats.mean_sd([row.top1 for row in rows]), stats.mean_sd([row.top1 for row in base])
    if min(mine.n, theirs.n) < 2:
        return f"{label}: needs 2 finished seeds each ({mine.n} and {theirs.n} now)."
    difference = f"{mine.mean - theirs.mean:+.2f} ± {stats.difference_error(mine, theirs):.2f}"
    return f"{label}: {difference} points (difference of the means ± its standard error)."


def _total_hours(rows: list[Progress], on_gpu: bool) -> tuple[float, float]:
    """Wall-clock and CPU hours of ``rows`` spent on GPU machines (``on_gpu``) or on CPUs alone."""
    spent = [row.hours(on_gpu) for row in rows]
    return sum(wall for wall, _ in spent), sum(cpu for _, cpu in spent)


PROGRESS_TITLE = "# Training queue: progress record"  # its first line; --write replaces only such files


def markdown(rows: list[Progress], queue_path: str, runs: str, options: tuple[str, ...] = ()) -> str:
    """The progress record: one table row per queued run, in queue order, and the totals; its last line
    names the command that wrote it, ``status`` with ``options`` (e.g. ``("--write", "PROGRESS.md")``)."""
    lines = [
        PROGRESS_TITLE,
        "",
        f"Where the training queue `{queue_path}` stands. State `partial`: epochs done, not finished "
        "(running, or cut off and resumed by the next `run`).",
        "",
        "| # | run | state | epochs | test top-1 % | wall h | CPU h | wall h left (est.) | trained on "
        "| why |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, row in enumerate(rows, start=1):
        top1 = "" if row.top1 is None else f"{row.top1:.2f}"
        marks = (("so far", row.state != "finished"), ("holdout", row.split == "holdout"))
        notes = [note for note, applies in marks if applies and row.top1 is not None]
        top1 += f" ({', '.join(notes)})" if notes else ""
        left = "" if row.hours_left is None else f"{row.hours_left:.1f}"
        state = row.state.replace("|", "\\|")  # a damaged file's message may hold one
        state += f" (other settings: {', '.join(row.differs)})" if row.differs else ""
        if row.lost:
            state += " (trained again: its recorded finished run has no weights here and no zoo entry)"
        if row.earlier:
            state += (f" ({len(row.earlier)} earlier attempt(s), in the totals: "
                      f"{'; '.join(_final_text(_final(record)) for record in row.earlier)})")  # fmt: skip
        lines.append(
            f"| {number} | `{row.run.run_id}`{' (zoo entry)' if row.run.register else ''} | {state} | "
            f"{row.epochs_done}/{row.epochs} | {top1} | {row.wall_hours:.2f} | {row.cpu_hours:.2f} | "
            f"{left} | {row.device or ''} | {row.run.why} |"
        )
    done = [r for r in rows if r.state == "finished" and not r.differs]
    recorded = sum(r.recorded for r in done)
    where = (f" ({recorded} of them from the record of finished runs `{finished_path(queue_path)}`, not "
             f"from folders under `{runs}`)") if recorded else ""  # fmt: skip
    (cpu_wall, cpu_cpu), (gpu_wall, gpu_cpu) = (
        _total_hours(rows, on_gpu=False),
        _total_hours(rows, on_gpu=True),
    )
    spent = (f"{cpu_wall:.2f} wall-clock hours and {cpu_cpu:.2f} CPU hours spent on CPUs (CPU hours: the "
             "training processes' CPU time, all threads)")  # fmt: skip
    if gpu_wall:
        on_gpu = sum(any(r.hours(on_gpu=True)) for r in rows)
        spent += (f", {gpu_wall:.2f} wall-clock hours by {on_gpu} run(s) on a lent GPU "
                  f"(their host CPU time: {gpu_cpu:.2f} hours)")  # fmt: skip
    earlier = [_final(record) for row in rows for record in row.earlier]
    if earlier:
        wall, cpu = sum(hours[1] for hours in earlier), sum(hours[2] for hours in earlier)
        spent += (f"; counted in these: {wall:.2f} wall-clock and {cpu:.2f} CPU hours of {len(earlier)} "
                  "earlier attempt(s) of runs trained again")  # fmt: skip
    command = shlex.join(["python", "-m", "relu_ratio.queue", "status", queue_path, "--runs", runs, *options])
    measured = {r.dataset for r in rows if r.dataset and r.top1 is not None}
    names = sorted(data.DATASET_LABELS.get(name, name) for name in measured)
    tested = f"{' / '.join(names)} test split" if names else "test split"
    lines += [
        "",
        f"{len(done)} of {len(rows)} runs finished{where}; {spent}. Test top-1 is on the {tested} "
        "(on held-out training images where marked holdout: a recipe proxy); \"so far\" is the "
        "last finished epoch's, logged for progress only; a zoo entry's number is its final weights' "
        "accuracy, measured by `zoo register`. Estimates of hours left use the run's own pace on the CPU "
        "(none for a run partly trained on a lent GPU until its CPU epochs are recorded apart).",
        "",
        "## Models trained with several seeds",
        "",
        seed_comparison(rows),
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` on "
        f"{train.device()}.",
    ]
    return "\n".join(lines) + "\n"


QUEUE_EXAMPLES = {
    "run": "python -m relu_ratio.queue run training/queue.json --runs ~/relu_runs/zoo --only 'resnet20_*'",
    "status": "python -m relu_ratio.queue status training/queue.json --runs ~/relu_runs/zoo "
    "--write training/PROGRESS.md",
}


def parser() -> flags.Parser:
    p = flags.Parser(prog="python -m relu_ratio.queue", description=__doc__.split("\n")[0],
                     allow_abbrev=False, **flags.examples(*QUEUE_EXAMPLES.values()))  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("run", "train the queued runs in order: skip finished ones, resume cut-off ones"),
                       ("status", "print (or --write) the progress record of every queued run")):  # fmt: skip
        cmd = sub.add_parser(name, help=text, description=text, allow_abbrev=False,
                             **flags.examples(QUEUE_EXAMPLES[name]))
        cmd.add_argument("queue", type=flags.path, help="the queue file, e.g. training/queue.json (its "
                         "finished runs are recorded beside it, in training/queue.finished.json)")
        cmd.add_argument(
            "--runs",
            required=True,
            type=flags.path,
            help="folder of the run folders (outside the work tree, e.g. ~/relu_runs/zoo)",
        )
        if name == "run":
            cmd.add_argument(
                "--dataset",
                default=data.default_source(),
                type=flags.path,
                help="dataset for every run: a local folder/archive or a tfds name "
                "(default: $RELU_RATIO_DATA, else ../shared/data: the CIFAR-10 JPEG archives)",
            )
            cmd.add_argument(
                "--only",
                help="train only runs whose id matches this fnmatch pattern, e.g. 'resnet20_??-seed0' "
                "('*' also spans a tag: 'resnet20_*-seed0' matches resnet20_21.long-seed0)",
            )
        else:
            cmd.add_argument(
                "--write",
                type=flags.path,
                help="also write the record (markdown) to this file, and the finished runs' configs and "
                "results to the queue's record of finished runs",
            )
            cmd.add_argument(
                "--seeds-page",
                metavar="FILE",
                type=flags.path,
                help=f"also put the seed comparison between the lines {SEEDS_START} "
                f"and {SEEDS_END} of this file, e.g. docs/TRAINING.md",
            )
    return p


def _check_not_an_input(write: str, queue_path: str, runs: str) -> None:
    """Refuse a ``--write`` path that is the queue file, its record of finished runs (both inputs), a
    folder, anything in the runs folder (a run's own files), or a file that is not a progress record."""
    target = Path(write).expanduser().resolve()
    inputs = {"the queue": Path(queue_path), "its record of finished runs": finished_path(queue_path)}
    what = next((what for what, path in inputs.items() if target == path.resolve()), None)
    if what is None and target.is_relative_to(Path(runs).expanduser().resolve()):
        what = f"inside --runs {runs!r}, among the runs' own files"
    if what is None and target.is_dir():
        what = "a folder"
    if what is None and not files.may_replace(target, PROGRESS_TITLE):
        what = "a file that is not a progress record (never overwritten)"
    if what is not None:
        raise ValueError(f"--write {write!r} is {what}; write the progress record to another file "
                         "(e.g. training/PROGRESS.md).")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runs = os.path.expanduser(args.runs)
    try:
        if os.path.exists(runs) and not os.path.isdir(runs):
            raise ValueError(f"--runs {args.runs!r} is a file, not the folder of the run folders.")
        queued = load(args.queue)
        record = read_record(finished_path(args.queue))
        if args.command == "status" and args.write:
            _check_not_an_input(args.write, args.queue, runs)
        if args.command == "status" and not os.path.isdir(runs):
            print(f"note: --runs {args.runs!r} does not exist: no queued run has started there.",
                  file=sys.stderr)  # fmt: skip
        if args.command == "run":
            try:
                failures = run(queued, runs, args.dataset, args.only, finished=record.runs,
                               kept=kept_folder(args.queue))  # fmt: skip
            except KeyboardInterrupt:
                return flags.report_interrupt(
                    "the same command goes on with the queue: finished runs are skipped, the cut-off run "
                    f"resumes from its last backup in {args.runs}."
                )
            return 1 if failures else 0
        rows = progress(queued, runs, record.runs, record.earlier)
        given = (("--write", args.write), ("--seeds-page", args.seeds_page))
        options = tuple(part for flag, value in given if value for part in (flag, value))
        text = markdown(rows, args.queue, args.runs, options)
        print(text, end="")
        seeds = seed_comparison(rows) if args.seeds_page else None
        if args.seeds_page:  # its markers checked before anything is written
            files.replace_between(args.seeds_page, SEEDS_START, SEEDS_END, seeds, check=True)
        written = {"progress record (--write)": args.write, "seeds page (--seeds-page)": args.seeds_page,
                   "record of finished runs": args.write and finished_path(args.queue)}  # fmt: skip
        for what, path in written.items():  # each folder, before the first file is written
            if path:
                files.check_writable(Path(path).parent, f"folder of the {what}")
        if args.write:
            with files.folder_made(Path(args.write).parent):  # a new folder, as `results --update` makes
                files.write_atomic(args.write, text)
            write_finished(finished_path(args.queue), queued, runs)
        if args.seeds_page:
            files.replace_between(args.seeds_page, SEEDS_START, SEEDS_END, seeds)
    except (ValueError, OSError) as error:
        return flags.report_error(error)
    return 0


if __name__ == "__main__":
    flags.exit_with(main)
