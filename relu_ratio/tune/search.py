"""Run a ReLU-placement search end to end: its settings (:class:`SearchConfig`), the data, the keras-tuner
tuner (single process or chief/worker), and the result (:class:`SearchResult`, ``best.json``).

Example:
    >>> from relu_ratio.tune import SearchConfig, search
    >>> config = SearchConfig(family="resnet", depth=8, dataset="../shared/data", max_trials=2)
    >>> result = search(config)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import numbers
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import keras
import keras_tuner

from relu_ratio import data, files, flags, folder_lock, models, progress, train
from relu_ratio.describe import describe
from relu_ratio.tune.space import GRANULARITIES, ReLUHyperModel, format_pattern, relu_pattern_from
from relu_ratio.user_warning import warn
from relu_ratio.validators import is_finite_number, is_integer, suggest

TUNERS = ("random", "hyperband", "bayesian")
VALIDATIONS = ("holdout", "test")
OBJECTIVE = "val_accuracy"
HYPERBAND_FACTOR = 3  # keras-tuner's reduction factor, what --tuner hyperband uses unless given another
# 10**20 trials named their folders with 21 digits (keras-tuner pads trial ids to max_trials' digits) and ran
# the trial table's columns together. Lift it: relu_ratio.tune.search.MAX_TRIALS = n.
MAX_TRIALS = 100_000


# --- settings -----------------------------------------------------------------------------------


def _setting(default, help: str, group: str, **metadata):
    return dataclasses.field(default=default, metadata={"help": help, "group": group, **metadata})


SPACE, SEARCH, DATA = "search space", "search", "data and training"


@dataclasses.dataclass
class SearchConfig:
    """Every setting of :func:`search` (``search(config)``); the CLI's flags are generated from these
    fields (:func:`relu_ratio.flags.add_arguments`), so the two cannot drift apart."""

    family: str = _setting("resnet", f"network family: {', '.join(models.FAMILIES)}", SPACE)
    depth: int = _setting(8, "network depth (valid depths depend on the family)", SPACE)
    granularity: str = _setting("stage", "one choice per stage or per block position", SPACE,
                                choices=GRANULARITIES)  # fmt: skip
    min_relus_per_block: int = _setting(1, "masks keep at least this many ReLUs per block (plain: M of each "
                                        "ratio N:M)", SPACE)  # fmt: skip
    min_ratio: str | float | None = _setting(None, "lowest whole-net conv:ReLU ratio, e.g. 1.2 or 6:5", SPACE,
                                     default_text="default: none")  # fmt: skip
    max_ratio: str | float | None = _setting(None, "highest whole-net conv:ReLU ratio, e.g. 2 or 2:1", SPACE,
                                     default_text="default: none")  # fmt: skip
    choices: tuple[str, ...] | None = _setting(None, "comma-separated candidates instead of the defaults, "
                                               "e.g. 011,101,111 or 1:1,2:1", SPACE,
                                               default_text="default: every mask allowed")  # fmt: skip
    tuner: str = _setting("random", "keras-tuner algorithm", SEARCH, choices=TUNERS)
    max_trials: int | None = _setting(10, f"trials (Hyperband: an upper bound), at most {MAX_TRIALS:,}",
                                      SEARCH)  # fmt: skip
    epochs: int = _setting(1, "epochs per trial (Hyperband: the most)", SEARCH)
    hyperband_factor: int | None = _setting(
        None, "Hyperband's reduction factor, >= 2 (only with --tuner hyperband)", SEARCH,
        default_text=f"default: {HYPERBAND_FACTOR} with --tuner hyperband")  # fmt: skip
    seed: int = _setting(0, "seed for data subsets, sampling and initialisation", SEARCH)
    directory: str = _setting("runs/tune", "tuner directory (shared by all distributed processes)", SEARCH,
                              flag="--out", metavar="OUT")  # fmt: skip
    project_name: str | None = _setting(
        None, "project folder inside --out ({family}{depth}_{granularity}_{tuner} if unset)", SEARCH,
        default_text="default: unset")  # fmt: skip
    overwrite: bool = _setting(False, "start afresh instead of resuming the project", SEARCH)
    max_consecutive_failed_trials: int | None = _setting(
        None, "stop after this many failed trials in a row", SEARCH,
        default_text="default: 3, or 25 with ratio bounds")  # fmt: skip
    chief_timeout: float = _setting(3600.0, "distributed workers wait this long for the chief (s)", SEARCH)
    verbose: int = _setting(1, "keras-tuner / model.fit verbosity", SEARCH, choices=(0, 1, 2))
    dataset: str = _setting("cifar10", "cifar10, cifar100, or a folder/archive laid out split/label/image "
                            "(e.g. ../shared/data)", DATA)  # fmt: skip
    data_dir: str | None = _setting(None, "tensorflow-datasets data_dir", DATA, default_text="default: tfds'")
    validation: str = _setting("holdout", "holdout: a fixed slice of the training split validates; test: the "
                               "test split", DATA, choices=VALIDATIONS)  # fmt: skip
    train_subset: int | None = _setting(None, "training images", DATA, default_text="default: all remaining")
    val_subset: int | None = _setting(None, "validation images (holdout: 10%% of train if unset; test: all)",
                                      DATA, default_text="default: unset")  # fmt: skip
    batch_size: int | None = _setting(None, "images per step", DATA, default_text="default: the recipe's")
    recipe: str = _setting("fast", "training recipe", DATA, choices=tuple(sorted(train.RECIPES)))
    weight_decay: float | None = _setting(None, "coupled L2 on kernels", DATA,
                                          default_text="default: the recipe's")  # fmt: skip
    width_multiplier: float = _setting(1.0, "scales the widths 16/32/64 (a builder argument)", DATA)


# --- data ---------------------------------------------------------------------------------------


def load_search_data(
    dataset: str | os.PathLike,
    validation: str = "holdout",
    train_subset: int | None = None,
    val_subset: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> tuple[data.Split, data.Split]:
    """Training and validation splits for a search.

    ``validation="holdout"`` (default): a fixed, seeded slice of the training split (``val_subset`` images,
    default 10 %) validates, and ``train_subset`` of the remaining images train; the two never overlap.
    ``validation="test"``: ``train_subset`` training images and ``val_subset`` images of the test split
    (the paper reports test accuracy and has no validation split, but choosing a pattern on test data
    makes that test accuracy optimistic).
    """
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {', '.join(VALIDATIONS)}; received {validation!r}.")
    for label, value in (("train_subset", train_subset), ("val_subset", val_subset)):
        if value is not None and not is_integer(value, 1):
            raise ValueError(f"{label} must be a positive integer or None; received {value!r}.")
    full = data.load(dataset, "train", data_dir=data_dir)
    if validation == "test":
        test = data.load(dataset, "test", data_dir=data_dir)
        data.check_matching(full, test, dataset)
        return (data.subset(full, train_subset, seed, "train_subset", "the training split"),
                data.subset(test, val_subset, seed, "val_subset", "the test split"))
    n_val = val_subset if val_subset is not None else max(1, len(full) // 10)
    if n_val >= len(full):
        raise ValueError(
            f"val_subset {n_val} leaves no training images: the training split has {len(full)} images."
        )
    rest, val = full.hold_out(n_val, seed)
    return data.subset(rest, train_subset, seed, "train_subset", "the training split after val_subset"), val


# --- search -------------------------------------------------------------------------------------


@dataclasses.dataclass
class SearchResult:
    """What :func:`search` found. On a distributed worker only ``role``, ``tuner_id`` and
    ``trials_run_here`` are filled in (the chief holds the results). Trials are numbered from 1 as the
    trial table numbers them (:func:`trial_number`): ``trial`` is the best one's number, ``trials_run_here``
    the numbers of those this process ran; ``trial_id`` (and each row's in ``trials``, beside its
    ``trial``) is keras-tuner's id, the name of its ``trial_<id>`` folder in the project."""

    role: str  # "single", "chief" or "worker"
    tuner_id: str
    family: str
    depth: int
    granularity: str
    project_dir: str
    trial: int | str | None = None  # the best trial, numbered as in the table
    trial_id: str | None = None  # keras-tuner's id of the best trial: its folder trial_<id>
    relu_pattern: list | None = None  # pass to the builders as relu_pattern=
    masks: list[list[str]] | None = None  # explicit per-block masks [stage][block]
    val_accuracy: float | None = None
    convs: int | None = None
    relus: int | None = None
    ratio: float | None = None
    params: int | None = None
    flops: int | None = None
    hyperparameters: dict | None = None
    builder_kwargs: dict = dataclasses.field(default_factory=dict)
    trials: list[dict] = dataclasses.field(default_factory=list)
    trials_run_here: list[int | str] = dataclasses.field(default_factory=list)  # numbered as in the table
    space: dict = dataclasses.field(default_factory=dict)
    path: str | None = None  # best.json

    def build_model(self, **overrides) -> keras.Model:
        """The best pattern's network (untrained, uncompiled), with the search's builder kwargs."""
        if self.relu_pattern is None:
            raise ValueError(f"this {self.role} result has no best pattern; the chief's best.json has it.")
        return models.build_family(
            self.family, self.depth, self.relu_pattern, **{**self.builder_kwargs, **overrides}
        )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def distributed_role() -> tuple[str, str]:
    """``(role, tuner_id)`` from keras-tuner's environment: ``("single", "tuner0")`` when not distributed.

    The variables are checked here, before any work: a distributed search needs all three (a non-empty
    ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_PORT`` a port number); ``KERASTUNER_TUNER_ID`` without
    ``KERASTUNER_ORACLE_IP`` runs alone, with a warning.
    """
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        if "KERASTUNER_TUNER_ID" in os.environ:
            warn(f"KERASTUNER_TUNER_ID={tuner_id!r} is set but KERASTUNER_ORACLE_IP is not: this search runs "
                 "alone, not as part of a distributed one.")  # fmt: skip
        return "single", tuner_id
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise ValueError(
            f"KERASTUNER_ORACLE_IP is set, so this is a distributed search, but {' and '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} not. Set KERASTUNER_TUNER_ID ('chief' or 'tuner0', "
            "'tuner1'...) and KERASTUNER_ORACLE_PORT."
        )
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number (1 to 65535); received {port!r}.")
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_TUNER_ID"):
        if not os.environ[name].strip():
            raise ValueError(f"{name} is set but empty; give the chief's address (KERASTUNER_ORACLE_IP) and "
                             "this process's id ('chief', or 'tuner0', 'tuner1'...).")  # fmt: skip
    return ("chief" if "chief" in tuner_id else "worker"), tuner_id


def _wait_for_chief(timeout: float) -> None:
    import grpc

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise RuntimeError(
            f"no keras-tuner chief answered at {address} within {timeout:g} s. Start the chief "
            "(KERASTUNER_TUNER_ID=chief) with the same command, or raise --chief-timeout."
        ) from None
    finally:
        channel.close()


def _tuner_class(name: str):
    bases = {
        "random": keras_tuner.RandomSearch,
        "hyperband": keras_tuner.Hyperband,
        "bayesian": keras_tuner.BayesianOptimization,
    }
    if name not in bases:
        raise ValueError(f"unknown tuner {name!r}{suggest(name, bases)}. Valid: {', '.join(TUNERS)}.")

    class Recording(bases[name]):
        """Remembers which trials this process ran (in distributed mode: this worker)."""

        def on_trial_end(self, trial):
            self.trials_run_here = [*getattr(self, "trials_run_here", []), trial.trial_id]
            super().on_trial_end(trial)

    Recording.__name__ = bases[name].__name__
    return Recording


class _DrawsWithinBounds:
    """keras-tuner oracle mixin: random draws (random search, Hyperband's first rounds, Bayesian
    optimisation's first points) come only from the configurations within the ratio bounds, so no trial of
    ``max_trials`` is spent on one that would fail before training. ``Oracle._random_values`` is where all
    three draw (keras-tuner 1.4, which pyproject asks for); Bayesian optimisation's modelled points are
    still checked by :meth:`ReLUHyperModel.fit`."""

    relu_space: ReLUHyperModel
    max_draws: int

    def _random_values(self) -> dict | None:
        for _ in range(self.max_draws):
            values = super()._random_values()  # None: keras-tuner found no untried one in 20 draws
            if values is None or self.relu_space.within_bounds(values):
                return values
        warn(f"no untried configuration within the ratio bounds found in {self.max_draws:,} random draws: "
             "no new trial (keras-tuner ends the search when none is running).")  # fmt: skip
        return None


def _draw_within_bounds(oracle: keras_tuner.Oracle, hypermodel: ReLUHyperModel) -> None:
    """Make ``oracle`` (the chief's, or a lone process's) draw only configurations within the bounds."""
    total, feasible = hypermodel.space_size()
    if feasible < total:
        base = type(oracle)
        oracle.__class__ = type(f"{base.__name__}WithinBounds", (_DrawsWithinBounds, base), {})
        oracle.relu_space = hypermodel
        oracle.max_draws = min(100_000, 50 * -(-total // feasible))  # 50 times the draws one takes on average


def search(config: SearchConfig, /, **builder_kwargs) -> SearchResult:
    """Search the ReLU placement of ``config.family``/``config.depth`` on ``config.dataset``; returns the
    best pattern.

    Args:
        config: every setting (:class:`SearchConfig`, whose fields are also the CLI's flags): the search
            space (see :class:`ReLUHyperModel`), the tuner (``"random"``; ``"hyperband"`` with
            ``max_epochs=epochs`` and ``factor=hyperband_factor`` (default :data:`HYPERBAND_FACTOR`; refused
            with another tuner), ``max_trials`` capping its trial count; ``"bayesian"``, which needs
            scikit-learn), the data (:func:`load_search_data`; a batch larger than the training images is
            refused) and the training recipe. ``max_trials`` is at most :data:`MAX_TRIALS`; a project that
            already holds more trials runs none, with a warning. The project directory is
            ``directory/project_name`` (default ``{family}{depth}_{granularity}_{tuner}``);
            ``max_consecutive_failed_trials`` defaults to 3, or 25 with ratio bounds. Random draws come from
            the configurations within the bounds only; a Bayesian-modelled configuration outside them is a
            failed trial.
        **builder_kwargs: further :func:`relu_ratio.models.build_family` arguments.

    Returns:
        A :class:`SearchResult`; the chief (or a non-distributed process) also writes it to
        ``<project_dir>/best.json``.

    Raises:
        TypeError: ``config`` is not a :class:`SearchConfig`, or settings are passed beside it (they belong
            in it).
        ValueError: bad settings (the message names the value and what is valid).
        RuntimeError: no trial completed (the message carries the last failure).

    Example:
        >>> config = SearchConfig(family="resnet", depth=8, dataset="../shared/data", max_trials=2)
        >>> search(config).relu_pattern  # doctest: +SKIP
        ['11', '01', '11']
    """
    if not isinstance(config, SearchConfig):
        raise TypeError(f"search() takes a SearchConfig; received {config!r} ({type(config).__name__}): "
                        "tune.search(tune.SearchConfig(family=..., depth=..., dataset=...)).")  # fmt: skip
    if _FIELDS & set(builder_kwargs):
        given = sorted(_FIELDS & set(builder_kwargs))
        raise TypeError(f"search(config) takes its settings from the SearchConfig, not beside it "
                        f"({', '.join(given)}): use dataclasses.replace(config, name=value).")  # fmt: skip
    config = _checked(config)
    role, tuner_id = distributed_role()
    tuner_cls = _tuner_class(config.tuner)
    for label, value, low in (("epochs", config.epochs, 1), ("hyperband_factor", config.hyperband_factor, 2)):
        if value is not None and not is_integer(value, low):
            raise ValueError(f"{label} must be an integer >= {low}; received {value!r}.")
    if config.tuner != "hyperband" and config.hyperband_factor is not None:  # given, so meant: never ignored
        raise ValueError(f"hyperband_factor (--hyperband-factor) is Hyperband's reduction factor: it needs "
                         f"tuner='hyperband' (--tuner hyperband); received it with tuner={config.tuner!r}.")
    max_trials, failures = config.max_trials, config.max_consecutive_failed_trials
    for label, value in (("max_trials", max_trials), ("max_consecutive_failed_trials", failures)):
        if value is not None and not is_integer(value, 1):
            raise ValueError(f"{label} must be a positive integer; received {value!r}.")
    if max_trials is not None and max_trials > MAX_TRIALS:
        raise ValueError(f"max_trials {max_trials} is beyond relu_ratio.tune.search.MAX_TRIALS = "
                         f"{MAX_TRIALS:,}; if you mean it, raise the limit first.")  # fmt: skip
    if files.names_nothing(config.directory):
        raise ValueError(f"the tuner directory (--out) names no folder (it is empty or blank); received "
                         f"{config.directory!r} (for the current folder, give '.').")  # fmt: skip
    if not is_finite_number(config.chief_timeout) or config.chief_timeout <= 0:
        raise ValueError(f"chief_timeout must be a finite number of seconds > 0; received "
                         f"{config.chief_timeout!r}.")  # fmt: skip
    training = train.TrainConfig(recipe=config.recipe, epochs=config.epochs, batch_size=config.batch_size,
                                 seed=config.seed, weight_decay=config.weight_decay).resolved()  # fmt: skip
    space = functools.partial(
        ReLUHyperModel,
        config.family,
        config.depth,
        config.granularity,
        min_relus_per_block=config.min_relus_per_block,
        min_ratio=config.min_ratio,
        max_ratio=config.max_ratio,
        choices=config.choices,
    )
    space()  # check the space before touching data, so bad settings fail fast
    models.check_width_multiplier(config.width_multiplier)
    if is_integer(config.train_subset, 1):  # refused before the data is loaded; the images counted after it
        train.check_batch_size(training.batch_size, config.train_subset, "train_subset")
    project_name = project_name_of(config)
    if not files.names_one_entry(project_name):
        raise ValueError(f"project_name must name a folder inside --out (not blank, no '/'); received "
                         f"{project_name!r}.")  # fmt: skip
    project_dir = Path(config.directory) / project_name
    files.check_writable(project_dir, PROJECT_FOLDER)
    if role != "worker":  # refused at once, before the data is loaded
        folder_lock.check_folder_free(project_dir, PROJECT_FOLDER)
        if config.overwrite:
            _check_is_a_project(project_dir)

    keras.utils.set_random_seed(config.seed)
    train_split, val_split = load_search_data(config.dataset, config.validation, config.train_subset,
                                              config.val_subset, config.seed, config.data_dir)  # fmt: skip
    of = "the training split" + (" after val_subset" if config.validation == "holdout" else "")
    train.check_batch_size(training.batch_size, len(train_split), of)  # before the project is touched
    info = train_split.info
    kwargs = {
        **train_split.builder_kwargs(),
        "weight_decay": training.weight_decay,
        "width_multiplier": config.width_multiplier,
        **builder_kwargs,
    }
    train_batches = data.batches(train_split, training.batch_size, augment=True, seed=config.seed,
                                 one_hot=True)  # fmt: skip
    val_batches = data.batches(val_split, 256, one_hot=True)
    hypermodel = space(
        train_config=training,
        steps_per_epoch=len(train_batches),
        seed=config.seed,
        **kwargs,
    )
    constrained = hypermodel.min_ratio is not None or hypermodel.max_ratio is not None
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "seed": config.seed,
        "directory": os.fspath(config.directory),
        "project_name": project_name,
        "overwrite": False,  # --overwrite empties the project below, under its lock (keras-tuner deletes it)
        "max_consecutive_failed_trials": (25 if constrained else 3) if failures is None else failures,
    }
    if config.tuner == "hyperband":
        common.update(max_epochs=config.epochs, factor=hyperband_factor(config))
    else:
        common.update(max_trials=max_trials)
    if role == "worker":
        _wait_for_chief(config.chief_timeout)
    settings = _search_settings(
        hypermodel, config, training,
        {"dataset_info": info.to_json(), "train_images": len(train_split), "val_images": len(val_split)},
    )  # fmt: skip
    holds_project = role != "worker"  # one search per project, the chief's or a lone one's; workers join it
    overwrite = bool(config.overwrite) and holds_project
    project_lock = (folder_lock.locked_folder(project_dir, PROJECT_FOLDER) if holds_project
                    else contextlib.nullcontext())  # fmt: skip
    with project_lock:
        if overwrite:
            _empty_project(project_dir)
        else:
            _check_same_search(project_dir, settings)
        try:
            instance = tuner_cls(**common)
        except ImportError as error:
            raise ValueError(f"tuner {config.tuner!r} cannot run here: {error}") from error
        if holds_project:  # a worker's oracle is the chief's, reached through a client
            _draw_within_bounds(instance.oracle, hypermodel)
        if holds_project and (overwrite or not (project_dir / SEARCH_FILE).is_file()):
            files.write_json(project_dir / SEARCH_FILE, settings)
        if config.tuner == "hyperband" and max_trials is not None and holds_project:
            instance.oracle.max_trials = max_trials
        held = len(instance.oracle.trials) if holds_project else 0
        if max_trials is not None and held > max_trials:  # keras-tuner runs none and says nothing
            warn(f"{project_dir} already holds {held} trials, more than max_trials={max_trials} "
                 "(--max-trials), so no new trial runs: the result is of the trials it holds. Give a larger "
                 "--max-trials to run more.")  # fmt: skip
        if config.verbose and role == "single":
            progress.report_trials(instance, max_trials)
        instance.search(train_batches, validation_data=val_batches, epochs=config.epochs,
                        verbose=config.verbose)  # fmt: skip
        result = SearchResult(
            role=role,
            tuner_id=tuner_id,
            family=config.family,
            depth=config.depth,
            granularity=config.granularity,
            project_dir=os.fspath(instance.project_dir),
            builder_kwargs=kwargs,
            trials_run_here=[trial_number(trial_id) for trial_id in getattr(instance, "trials_run_here", [])],
        )
        if role == "worker":  # the oracle (and so the results) live in the chief, which may be gone already
            return result
        return _finish(result, instance, hypermodel)


PROJECT_FOLDER = "tuner's project folder"  # how the project is named in messages (FolderInUse)


def project_name_of(config: SearchConfig) -> str:
    """The project folder's name inside ``config.directory``: ``config.project_name``, else
    ``{family}{depth}_{granularity}_{tuner}``."""
    if config.project_name is not None:
        return config.project_name
    return f"{config.family}{config.depth}_{config.granularity}_{config.tuner}"


def hyperband_factor(config: SearchConfig) -> int | None:
    """The reduction factor a search uses: ``config.hyperband_factor``, else :data:`HYPERBAND_FACTOR`, with
    ``tuner="hyperband"``; ``None`` with another tuner, which has none."""
    if config.tuner != "hyperband":
        return None
    return HYPERBAND_FACTOR if config.hyperband_factor is None else config.hyperband_factor


def _check_is_a_project(project_dir: Path) -> None:
    """``--overwrite`` empties a search's project folder, never a folder of other files: one that holds
    files but neither this package's record of a search nor keras-tuner's oracle is refused."""
    held = files.visible_entries(project_dir)  # hidden ones aside: the lock, .DS_Store
    if held and not {SEARCH_FILE, "oracle.json"} & set(held):
        raise ValueError(f"--overwrite would empty {project_dir}, which holds files of no search "
                         f"({files.some(held)}); "
                         "give --out and --project-name a new folder or a search's project folder.")


def _empty_project(project_dir: Path) -> None:
    """What ``--overwrite`` does: delete everything in ``project_dir`` but the lock this process holds."""
    for child in project_dir.iterdir():
        if child.name == folder_lock.LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


_FIELDS = frozenset(f.name for f in dataclasses.fields(SearchConfig))
_PATHS = ("dataset", "directory", "data_dir")


def _checked(config: SearchConfig) -> SearchConfig:
    """``config`` with its paths as strings and a list of choices as a tuple, every field checked against
    its type and choices (:func:`relu_ratio.flags.check_values`): ``overwrite="false"`` would otherwise
    start the search afresh.

    Raises:
        ValueError: naming the field, the value and what is valid.
    """
    given = {name: getattr(config, name) for name in _PATHS}
    plain = {name: os.fspath(value) for name, value in given.items() if isinstance(value, os.PathLike)}
    for name in ("min_ratio", "max_ratio"):  # a Fraction, a numpy number: as a float
        value = getattr(config, name)
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, int, float)):
            plain[name] = float(value)
    if isinstance(config.choices, Sequence) and not isinstance(config.choices, (str, tuple)):
        plain["choices"] = tuple(config.choices)
    config = dataclasses.replace(config, **plain)
    flags.check_values(config)
    return config


SEARCH_FILE = "search.json"  # in the project folder: the settings its trials were trained with


def _search_settings(hypermodel: ReLUHyperModel, search: SearchConfig, config: train.TrainConfig,
                     data_seen: dict) -> dict:  # fmt: skip
    """What a project's trials depend on, as JSON: the search space, the tuner, the training and the data
    (its name, classes, mean/std and image counts, not its path). ``max_trials`` may grow on resume."""
    bound = lambda value: None if value is None else float(value)  # noqa: E731  ("3:2" and 1.5 are one bound)
    settings = {
        "family": hypermodel.family, "depth": hypermodel.depth, "granularity": hypermodel.granularity,
        "min_relus_per_block": hypermodel.min_relus_per_block, "min_ratio": bound(hypermodel.min_ratio),
        "max_ratio": bound(hypermodel.max_ratio), "choices": list(hypermodel.choices), "tuner": search.tuner,
        "epochs": search.epochs, "hyperband_factor": hyperband_factor(search), "seed": config.seed,
        "recipe": config.recipe, "batch_size": config.batch_size, "weight_decay": config.weight_decay,
        "validation": search.validation, "train_subset": search.train_subset, "val_subset": search.val_subset,
        "builder_kwargs": {k: v for k, v in hypermodel.builder_kwargs.items() if k != "normalization"},
        **data_seen,
    }  # fmt: skip
    return json.loads(json.dumps(settings, default=str))


def _check_same_search(project_dir: Path, settings: dict) -> None:
    """Refuse to resume the project in ``project_dir`` with other settings than it was started with (its
    ``search.json``): keras-tuner would train nothing new and report the old trials as this search's. A
    project from before ``search.json`` was written is resumed as it is (it cannot be checked); one whose
    ``search.json`` records ``hyperband_factor`` 3 with a tuner other than Hyperband (every such search did,
    before the factor became ``None`` there) is resumed as one that records ``None``."""
    path = project_dir / SEARCH_FILE
    if not path.is_file():
        return
    old = train.record.read_json(path, hint="pass --overwrite to start afresh")  # a RunFileError (ValueError)
    if old.get("tuner") != "hyperband" and "hyperband_factor" in old:  # recorded unused: 3, the old default
        old = {**old, "hyperband_factor": None}
    changed = [f"{k} {old.get(k)!r} (now {new!r})" for k, new in settings.items() if old.get(k) != new]
    if changed:
        raise ValueError(
            f"{project_dir} holds a search with other settings: {'; '.join(changed)}. Resume it with the "
            "same settings, pass --overwrite to start afresh, or choose another --out or --project-name."
        )


def _finish(result: SearchResult, tuner, hypermodel: ReLUHyperModel) -> SearchResult:
    oracle = tuner.oracle
    trials = sorted(oracle.trials.values(), key=lambda t: t.trial_id)
    result.trials = [_trial_row(t, hypermodel) for t in trials]
    total, feasible = hypermodel.space_size()
    result.space = {
        "hyperparameters": [name for name, _, _ in hypermodel.positions],
        "choices": list(hypermodel.choices),
        "configurations": total,
        "feasible": feasible,
    }
    completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    if not completed:
        last = next((t.message for t in reversed(trials) if t.message), "no trial ran")
        raise RuntimeError(f"no trial of the search in {result.project_dir} completed. Last failure: "
                           f"{last.strip().splitlines()[-1]}")  # one line: its traceback is in the trial
    # the highest val_accuracy (the objective's "max"), the first trial among equal ones: the table's top row,
    # and the same on every read of the project (keras-tuner's ranking of ties follows the order it reloads)
    best = max(completed, key=lambda trial: trial.score)
    pattern = hypermodel.pattern(best.hyperparameters)
    measured = describe(hypermodel.build_pattern(pattern))
    result.trial, result.trial_id = trial_number(best.trial_id), best.trial_id
    result.relu_pattern = pattern
    result.masks = hypermodel.masks(pattern)
    result.val_accuracy = float(best.score)
    result.convs, result.relus = measured.convs, measured.relus
    result.ratio, result.params, result.flops = measured.ratio, measured.params, measured.flops
    result.hyperparameters = dict(best.hyperparameters.values)
    path = Path(result.project_dir) / "best.json"
    result.path = os.fspath(path)
    files.write_json(path, result.to_json())
    return result


def _trial_row(trial, hypermodel: ReLUHyperModel) -> dict:
    values = trial.hyperparameters.values
    row = {
        "trial": trial_number(trial.trial_id),
        "trial_id": trial.trial_id,
        "status": trial.status,
        "val_accuracy": None if trial.score is None else float(trial.score),
        "epochs": values.get("tuner/epochs"),
    }
    try:
        pattern = relu_pattern_from(values)
        convs, relus = hypermodel.counts(values)
        row.update(pattern=format_pattern(pattern), convs=convs, relus=relus)
    except (KeyError, ValueError):
        row.update(pattern=None, convs=None, relus=None)
    if trial.message:
        row["message"] = trial.message.strip().splitlines()[-1]
    return row


def trial_number(trial_id: str) -> int | str:
    """The number from 1 of the trial keras-tuner names ``trial_id`` (``"00"``, its folder ``trial_00``): the
    ``N`` of keras-tuner's "Search: Running Trial #N" and of the trials-done line after it
    (:func:`relu_ratio.progress.report_trials`). An id of another form is returned as it is.

    >>> trial_number("00"), trial_number("099999")
    (1, 100000)
    """
    return int(trial_id) + 1 if str(trial_id).isascii() and str(trial_id).isdigit() else trial_id


def trial_table(result: SearchResult) -> str:
    """The trials as a small text table (best first among the completed ones). Trials are numbered from 1, as
    keras-tuner's screen numbers them while the search runs ("Search: Running Trial #1"): trial ``N`` is the
    one whose id is ``N - 1`` (:func:`trial_number`; its files are in the project's ``trial_<id>`` folder,
    the id zero-padded, and ``best.json`` names the best one's ``trial`` and ``trial_id``)."""
    rows = sorted(result.trials, key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0)))
    numbers = [str(r["trial"]) for r in rows]  # each row's trial_number (_trial_row)
    width = max([len("trial"), *map(len, numbers)]) + 1  # numbers up to max_trials
    lines = [f"{'trial':<{width}}{'status':<11}{'val_acc':>8}  {'convs:ReLUs':<13}pattern"]
    for number, r in zip(numbers, rows):
        acc = "-" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        counts = f"{r['convs']}:{r['relus']}" if r.get("relus") else "-"
        note = f"  ({r['message']})" if r.get("message") and r["status"] != "COMPLETED" else ""
        epochs = f"  [{r['epochs']} ep]" if r.get("epochs") else ""
        lines.append(f"{number:<{width}}{r['status']:<11}{acc:>8}  {counts:<13}{r['pattern']}{epochs}{note}")
    return "\n".join(lines)
