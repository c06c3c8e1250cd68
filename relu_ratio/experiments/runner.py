"""Plan an experiment's runs, train them (resuming what was cut off), and shard them across workers.

Each run is one :func:`relu_ratio.train.run` in ``<out>/runs/<model>-seed<k>/``; a finished run (its
``result.json`` written) is skipped, a cut-off one resumes from its backup because its config is unchanged.
Static sharding ``shard=(i, n)`` gives worker ``i`` every run whose index is ``i`` modulo ``n``, so workers
never share a run and any number of them (processes, GPUs, machines on a shared disk) can split a table;
:func:`relu_ratio.experiments.collect` merges whatever is in ``<out>/runs``.

Example:
    >>> from relu_ratio.experiments import plan
    >>> [r.run_id for r in plan("table2", "tiny", dataset="../shared/data", out="runs/t2")][:2]
    ['resnet62_11-seed0', 'resnet62_21-seed0']
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path

from relu_ratio import data, files, flags, train
from relu_ratio.experiments.specs import (
    EXPERIMENTS,
    Budget,
    Experiment,
    Variant,
    budget,
    check_seeds,
    experiment,
)
from relu_ratio.train import fit, series
from relu_ratio.validators import is_integer, plain_number

BUDGET_SETTINGS = {"recipe", "epochs", "train_subset", "test_subset", "seeds", "batch_size"}
RECORD_FILE = "experiment.json"  # in an experiment's folder: its name, budget and dataset
REPORT_FILES = ("results.csv", "results.md", "accuracy.png")  # what collect writes beside it


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of an experiment (by name): a variant, a seed, and its full training config."""

    experiment: str
    variant: Variant
    seed: int
    config: train.TrainConfig

    @property
    def run_id(self) -> str:
        """``<model>-seed<k>``, the name of the run's folder (:func:`run_dir`)."""
        return self.out.name

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def experiment_folder(self) -> Path:
        """The experiment's output folder (``--out``), which holds its record, its reports and the run
        folders under ``runs/`` (:func:`run_dir`)."""
        return self.out.parent.parent

    @property
    def done(self) -> bool:
        """Finished: its folder holds a readable result (:class:`~relu_ratio.train.RunRecord`, as the
        queue and the report read it)."""
        record = train.RunRecord.read(self.out)
        return record.state == "finished" and not record.damage


def default_dataset() -> str:
    """``$RELU_RATIO_DATA``, else ``../shared/data`` (CIFAR-10 JPEG) if it exists; else ``ValueError``
    naming ``--dataset`` (which also takes ``cifar10`` / ``cifar100``: a tensorflow-datasets download)."""
    try:
        return data.existing_default_source("--dataset")
    except ValueError as error:
        tfds = "Or give --dataset cifar10 / cifar100 (tensorflow-datasets download)."
        raise ValueError(f"{error} {tfds}") from None


def resolve_budget(name: str = "tiny", **overrides) -> Budget:
    """The named budget with any non-``None`` overrides (``epochs``, ``train_subset``, ``seeds``...)."""
    base = budget(name)
    changes = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(changes) - BUDGET_SETTINGS
    if unknown:
        raise ValueError(
            f"unknown budget setting(s) {sorted(unknown)}; valid: {', '.join(sorted(BUDGET_SETTINGS))}."
        )
    if "seeds" in changes:
        check_seeds(changes["seeds"])
        changes["seeds"] = tuple(changes["seeds"])
    return dataclasses.replace(base, **changes)  # checked as a Budget is (every field's type, the ranges)


def plan(
    name: str | Experiment,
    budget: str | Budget = "tiny",
    *,
    dataset: str | None = None,
    out: str | os.PathLike | None = None,
    only: str | None = None,
) -> list[Run]:
    """Every run of experiment ``name`` at ``budget``, in a fixed order (variants, then seeds).

    ``name`` is the name of one of :data:`EXPERIMENTS` or the experiment itself; an experiment of one's own
    goes there first (``EXPERIMENTS["mine"] = Experiment(...)``): :func:`run` records it and
    :func:`relu_ratio.experiments.collect` reads it back by name. ``only`` (an fnmatch pattern on model
    names, e.g. ``"resnet62_*"``) keeps a subset.
    """
    spec = _registered(name)
    chosen = _budget(budget)
    for setting, value in (("dataset", dataset), ("out", out)):
        if value is not None and files.names_nothing(value):
            raise ValueError(f"{setting} {value!r} names no file or folder (it is empty or blank); leave it "
                             "out for the default.")  # fmt: skip
    if only is not None and not isinstance(only, str):
        raise ValueError(f"only must be one pattern of model names, e.g. 'resnet62_*'; received {only!r}.")
    dataset = dataset if dataset is not None else default_dataset()
    root = Path(out) if out is not None else default_out(spec.name, chosen.name)
    variants = [v for v in spec.variants if only is None or fnmatch.fnmatchcase(v.model, only)]
    if not variants:
        names = ", ".join(v.model for v in spec.variants)
        raise ValueError(f"--only {only!r} matches none of {spec.name}'s models: {names}.")
    return [
        Run(spec.name, variant, seed, train.TrainConfig(
            model=variant.model, dataset=dataset, out=run_dir(root, variant.model, seed),
            recipe=chosen.recipe, epochs=chosen.epochs, batch_size=chosen.batch_size,
            train_subset=chosen.train_subset, test_subset=chosen.test_subset, seed=seed, verbose=2,
        ))
        for variant in variants
        for seed in chosen.seeds
    ]  # fmt: skip


def _registered(name: str | Experiment) -> Experiment:
    """The experiment of :data:`EXPERIMENTS` that ``name`` names or is."""
    if not isinstance(name, Experiment):
        try:
            return experiment(name)
        except ValueError as error:
            raise ValueError(f"{error} An experiment of one's own goes into "
                             f"relu_ratio.experiments.EXPERIMENTS first: EXPERIMENTS[{name!r}] = "
                             "Experiment(...).") from None  # fmt: skip
    if EXPERIMENTS.get(name.name) != name:
        raise ValueError(
            f"experiment {name.name!r} is not in relu_ratio.experiments.EXPERIMENTS, from which collect "
            "reads an experiment back by the name run records: add it first, "
            f"EXPERIMENTS[{name.name!r}] = experiment."
        )
    return name


def _budget(chosen: str | Budget) -> Budget:
    """The budget ``chosen`` names or is."""
    if isinstance(chosen, str):
        return resolve_budget(chosen)
    if not isinstance(chosen, Budget):
        raise TypeError(
            "budget must be a budget's name or a Budget (resolve_budget(...)); received "
            f"{type(chosen).__name__}."
        )
    return chosen


def _check_planned(runs: list[Run], experiment_name: str, chosen: Budget) -> None:
    """Refuse runs that :func:`plan` did not plan for ``experiment_name`` at ``chosen``: the folder's record
    and its report would describe other runs than those trained."""
    _registered(experiment_name)
    settings = sorted(BUDGET_SETTINGS - {"seeds"})  # and the seed, below
    for item in runs:
        if item.experiment != experiment_name:
            raise ValueError(
                f"run {item.run_id} was planned for experiment {item.experiment!r}, not {experiment_name!r}: "
                "give run() the experiment given to plan()."
            )
        differs = [
            f"{key}: {getattr(item.config, key)!r}, {getattr(chosen, key)!r}"
            for key in settings
            if getattr(item.config, key) != getattr(chosen, key)
        ]
        if item.seed not in chosen.seeds:
            differs.append(f"seed: {item.seed!r}, {list(chosen.seeds)}")
        if differs:
            raise ValueError(
                f"run {item.run_id} was not planned at budget {chosen.name!r}: {'; '.join(differs)} (the "
                "run's, the budget's): give run() the budget given to plan()."
            )


def run_dir(root: Path, model: str, seed: int) -> str:
    """Where the run of ``model`` with ``seed`` lives under an experiment's output folder ``root``."""
    return os.fspath(root / "runs" / train.run_folder_name(model, seed))


def default_out(name: str, budget_name: str) -> Path:
    """Where an experiment's runs go without ``--out``: ``runs/experiments/<name>-<budget>``."""
    return Path("runs") / "experiments" / f"{name}-{budget_name}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``: worker 1 of 4 (0-based)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = -1, 0
    return check_shard((index, count), given=text)


def check_shard(shard: tuple[int, int], given: str | None = None) -> tuple[int, int]:
    """``shard`` as ``(I, N)`` with ``0 <= I < N`` (worker I of N); a ``ValueError`` names ``given`` (the
    text of ``--shard``) or else ``shard``."""
    values = tuple(plain_number(v) for v in shard) if isinstance(shard, tuple) else ()
    if len(values) != 2 or not all(is_integer(v) for v in values) or not 0 <= values[0] < values[1]:
        form = "(I, N) with 0 <= I < N, e.g. (0, 2)" if given is None else "'I/N' with 0 <= I < N, e.g. '0/2'"
        raise ValueError(f"shard must be {form}; received {shard if given is None else given!r}.")
    return values


def run(
    runs: list[Run],
    *,
    experiment_name: str,
    budget: str | Budget,
    shard: tuple[int, int] = (0, 1),
    log: Callable[[str], object] = print,
) -> list[tuple[Run, str]]:
    """Train this worker's share of ``runs``; returns ``(run, message)`` for every run that failed.

    ``experiment_name`` and ``budget`` are those given to :func:`plan` (checked against the runs: the
    experiment's folder records them). A failed run (a diverged loss, a bad dataset...) is recorded in its
    ``failed.json`` and the worker goes on with the next; finished runs are skipped; cut-off runs resume.
    """
    budget = _budget(budget)
    _check_planned(runs, experiment_name, budget)
    index, count = check_shard(shard)
    mine = [r for i, r in enumerate(runs) if i % count == index]
    if runs and not mine:
        log(f"shard {index}/{count}: none of the {len(runs)} run(s) falls to this shard (more shards than "
            "runs)")
    prepare(runs, experiment_name, budget)
    return series.train_in_order(mine, attrgetter("config"), _skip_done, name=attrgetter("run_id"), log=log)


def _skip_done(item: Run) -> str | None:
    """A finished run is skipped, a damaged folder is a failure (:class:`~relu_ratio.train.series.NotTrained`,
    as in the queue), any other run is trained or resumed."""
    record = train.RunRecord.read(item.out)
    if record.damage:
        raise series.NotTrained(f"{item.out} is damaged: {'; '.join(record.damage)}; repair or move it")
    return "done, skipped" if record.state == "finished" else None


def check_where(runs: list[Run]) -> None:
    """The data ``runs`` read and the folder they write, checked without reading an image or writing a
    file, so that ``plan`` refuses what ``run`` would (``ValueError`` / ``FileNotFoundError`` naming it;
    ``run`` checks them in :func:`prepare`, the data only while a run is left to train)."""
    if runs:
        for split in ("train", "test"):
            data.find(runs[0].config.dataset, split)
        files.check_writable(runs[0].experiment_folder, "experiment's output folder (--out)")
        check_outputs(runs[0].experiment_folder)


def check_outputs(root: Path, names: tuple[str, ...] = (RECORD_FILE, *REPORT_FILES)) -> None:
    """Refuse an experiment's folder ``root`` where a folder (or anything but a file) stands in the place of
    a file the experiment writes there (``names``: its record and the reports of
    :func:`relu_ratio.experiments.collect`): a ``ValueError`` naming it, before anything trains or is
    written (the report failed with "[Errno 21] Is a directory" once every run had trained)."""
    for name in names:
        what = "experiment's record" if name == RECORD_FILE else "report"
        files.check_file_place(Path(root) / name, what, f"Move it out of {root}, where the experiment writes "
                               f"{', '.join((RECORD_FILE, *REPORT_FILES))}.")  # fmt: skip


def check_data(runs: list[Run], download: bool = True) -> bool:
    """The one check of the data the runs not yet done train on against their budget, for ``plan`` and
    ``run`` (:func:`prepare`) alike: the splits are loaded as training loads them, and a subset they cannot
    give (``--train-subset 60000`` of 50,000 images) or a batch larger than the training images raises the
    ``ValueError`` training would, before any run starts (it would fail every run). With ``download=False``
    (``plan``) a tensorflow-datasets name not yet downloaded is left unchecked; returns whether the data
    were checked (``True`` too where no run is left to train, which needs none)."""
    pending = [r for r in runs if not r.done]
    if not pending:
        return True
    config = pending[0].config.resolved()
    if not download and not data.is_prepared(config.dataset, config.data_dir):
        return False
    fit.load_data(config)
    return True


def prepare(runs: list[Run], experiment_name: str, budget: Budget) -> None:
    """Before any run or worker starts: check the data the runs not yet done train on against their budget
    (:func:`check_data`), then record the experiment in its folder, or refuse another experiment there. A
    folder in the place of a file the experiment writes is refused first (:func:`check_outputs`)."""
    if not runs:
        return
    root = runs[0].experiment_folder
    check_outputs(root)
    check_data(runs)
    _record_experiment(root, experiment_name, budget, runs[0].config.dataset)


SPAWNED = "RELU_RATIO_SPAWNED_SHARD"  # set in the workers :func:`spawn_workers` starts: their parent collects


def spawn_workers(argv: list[str], workers: int, gpus: list[str] | None = None) -> int:
    """Start ``workers`` processes of ``python -m relu_ratio.experiments <argv> --shard i/workers`` (one per
    GPU in ``gpus``, through ``CUDA_VISIBLE_DEVICES``) and wait for all; returns 0 if all succeeded."""
    procs = []
    for i in range(workers):
        env = {**os.environ, SPAWNED: "1"}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i]
        command = [sys.executable, "-m", "relu_ratio.experiments", *argv, "--shard", f"{i}/{workers}"]
        procs.append(subprocess.Popen(command, env=env))
    statuses = [proc.wait() for proc in procs]  # a worker killed by a signal has a negative status
    return 0 if all(status == 0 for status in statuses) else max(1, *statuses)


def _record_experiment(root: Path, name: str, chosen: Budget, dataset: str) -> None:
    """Write ``experiment.json`` once; refuse to mix another experiment, budget or dataset into ``root``,
    naming each setting that differs."""
    record = {"experiment": name, "budget": dataclasses.asdict(chosen), "dataset": dataset}
    record["budget"]["seeds"] = list(chosen.seeds)
    path = root / RECORD_FILE
    if path.is_file():
        changed = _differences(read_record(root), record)
        if changed:
            raise ValueError(
                f"{root} holds another experiment: {'; '.join(changed)} (recorded, given). Resume with the "
                "recorded settings or choose another --out."
            )
        return
    files.check_writable(root, "experiment's output folder (--out)")  # a file on its path is named
    check_outputs(root, (RECORD_FILE,))  # a folder there: create_once would find it, and try again forever
    root.mkdir(parents=True, exist_ok=True)
    if not files.create_once(path, json.dumps(record, indent=2) + "\n"):  # another worker was first
        _record_experiment(root, name, chosen, dataset)


def _differences(old: dict, new: dict) -> list[str]:
    """``"budget.epochs: 30, 1"`` for each setting of two experiment records that differs; a dataset given
    as the same path spelled differently (``data`` and ``data/``) is the same."""
    flat = [("experiment", old["experiment"], new["experiment"])]
    flat += [(f"budget.{key}", old["budget"].get(key), value) for key, value in new["budget"].items()]
    same_data = os.path.normpath(old["dataset"]) == os.path.normpath(new["dataset"])
    flat += [] if same_data else [("dataset", old["dataset"], new["dataset"])]
    return [f"{key}: {before!r}, {after!r}" for key, before, after in flat if before != after]


RECORD_REMEDY = "Delete it and run the experiment again with its settings (finished runs are kept, skipped)."


def read_record(root: Path) -> dict:
    """The experiment recorded in ``root/experiment.json``, checked: a missing, unreadable or damaged record
    raises ``ValueError`` naming the file and what is wrong."""
    path = Path(root) / RECORD_FILE
    if not path.is_file():
        there = f"{path} is no file" if path.exists() else f"no {RECORD_FILE}"
        raise ValueError(f"{root} holds no experiment ({there}); run one there first.")
    for _ in range(50):  # another worker may be writing it this instant
        try:
            record = json.loads(path.read_text())
            break
        except json.JSONDecodeError:
            time.sleep(0.1)
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
    else:
        raise ValueError(f"{path} is not valid JSON. {RECORD_REMEDY}")
    problem = _record_problem(record)
    if problem:
        raise ValueError(f"{path} is damaged: {problem.rstrip('.')}. {RECORD_REMEDY}")
    return {**record, "budget": {**_BUDGET_DEFAULTS, **record["budget"]}}  # a field added since: its default


# the Budget fields a record may leave out (written before the field was added): they read with their default
_BUDGET_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Budget)
                    if field.default is not dataclasses.MISSING}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Named:
    """The fields of an ``experiment.json`` record beside its budget, checked as a :class:`Budget` is
    (:func:`relu_ratio.flags.check_values`)."""

    experiment: str
    dataset: str


def _record_problem(record: object) -> str | None:
    """What is wrong with an ``experiment.json`` record (``None`` if nothing): its keys, then every field
    against its type (a budget's as a :class:`Budget` checks them), naming the field, the value and what is
    valid."""
    optional = set(_BUDGET_DEFAULTS)
    required = {field.name for field in dataclasses.fields(Budget)} - optional
    if not isinstance(record, dict) or set(record) != {"experiment", "budget", "dataset"}:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        return f"it holds {keys}, not the keys 'experiment', 'budget' and 'dataset'"
    try:
        flags.check_values(_Named(record["experiment"], record["dataset"]))
    except ValueError as error:
        return str(error)
    budget_record = record["budget"]
    if not isinstance(budget_record, dict) or not required <= set(budget_record) <= required | optional:
        allowed = f"{', '.join(sorted(required))} (and may hold {', '.join(sorted(optional))})"
        return f"'budget' must hold the keys {allowed}"
    seeds = budget_record["seeds"]
    try:
        if not isinstance(seeds, list):  # JSON's spelling of the Budget's tuple
            raise ValueError(f"seeds must be a list of seeds, e.g. [0, 1, 2]; received {seeds!r}.")
        Budget(**{**budget_record, "seeds": tuple(seeds)})
    except ValueError as error:
        return f"budget: {error}"
    return None
