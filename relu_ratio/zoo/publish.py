"""Write side of the zoo: turn a finished training run into a registry entry, measuring every number."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import h5py
import keras
import numpy as np

import relu_ratio
from relu_ratio import data as data_lib
from relu_ratio import files
from relu_ratio.describe import describe
from relu_ratio.train.record import CONFIG_FILE, METRICS_FILE, RESULT_FILE, RunRecord, parse_run_folder_name
from relu_ratio.zoo import card, git_weights, presets, reference
from relu_ratio.zoo.entry import (
    DATASET_NAMES,
    FORMAT_VERSION,
    METADATA_FILE,
    TAG_PATTERN,
    WEIGHTS_FILE,
    WeightsNotStoredError,
    ZooEntry,
    ZooError,
    split_name,
)
from relu_ratio.zoo.registry import (
    accuracy,
    build_with_weights,
    check_class_count,
    explicit_pattern,
    not_stored,
    shipped_store,
    store_dir,
)

CONFIG_KEYS = ("model", "dataset", "architecture", "command")
COMPRESS_FROM_BYTES = 256  # below this, compression saved less than its chunk index cost (preact164_32)
RESULT_KEYS = ("epochs_completed", "wall_time_s", "device", "backend")
RUN_FOLDER = ("register takes the folder a training run filled (python -m relu_ratio.train --out): "
              f"{CONFIG_FILE}, {RESULT_FILE}, {WEIGHTS_FILE}; or a zoo entry's folder")  # fmt: skip
OPTIMIZER_GROUP = "optimizer"  # where Keras' save_weights keeps a compiled model's optimizer state


def register(
    run_dir: str | os.PathLike,
    name: str | None = None,
    store: str | os.PathLike | None = None,
    *,
    data: str | os.PathLike | None = None,
    overwrite: bool = False,
    weights_in_git: str | None = None,
) -> ZooEntry:
    """Add the training run in ``run_dir`` to the zoo as ``<store>/<name>/``; returns its entry.

    ``run_dir`` is what the training CLI wrote: ``config.json`` (``model``, ``dataset``, ``architecture``,
    ``command``, ...), ``result.json`` (``epochs_completed``, ``wall_time_s``, ``device``, ``backend``, ...),
    ``model.weights.h5`` and ``metrics.csv``; or an existing entry's folder (``zoo/resnet20_21``), whose
    recorded run is then registered again from its stored weights (to re-measure it). The weights are
    stored in float16 (:func:`write_float16`; loaded into float32 models) in a temporary folder of the
    store; that copy is hashed, loaded into the rebuilt architecture and measured (top-1/top-5 on the test
    split of ``config["dataset"]`` or ``data``, parameters, FLOPs, and its outputs on 40 fixed images for
    :func:`~relu_ratio.zoo.reference.verify`), the run's per-epoch log is kept beside
    it, and its model card (``README.md``, :mod:`relu_ratio.zoo.card`) is written from the measured metadata;
    then the folder is renamed into place, so a failed registration leaves nothing behind. No number
    comes from anywhere but a measurement or the run. Registering into the shipped store also records the
    entry in the package's ``presets.json`` (:mod:`relu_ratio.zoo.presets`, data written atomically; put
    back as it was if the entry cannot be published).

    With ``weights_in_git`` the entry is published without its weights file, which a git object of the
    repository that holds the store keeps (:attr:`ZooEntry.weights_git_object`, :mod:`git_weights`): git's
    copy must be, byte for byte, the float16 file that is measured; the entry's ``.gitignore`` names the
    file, which ``zoo fetch`` writes there. An entry registered again in its own store keeps its git object
    (a fetched file goes with the old folder: ``zoo fetch`` it again).

    Args:
        run_dir: the training run's output directory, or a zoo entry's folder.
        name: zoo name (``resnet20_21`` or ``resnet20_21.tag``); default :func:`default_name`, or the
            entry's own name.
        store: registry directory; default :func:`~relu_ratio.zoo.store_dir`.
        data: dataset source for the test split, instead of ``config["dataset"]``.
        overwrite: replace an existing entry of the same name.
        weights_in_git: ``<revision>:<path>`` (``HEAD:zoo/preact164_32/model.weights.h5``), recorded with
            the revision resolved to its full commit.

    Example (re-measure an entry from its stored weights)::

        python -m relu_ratio.zoo register zoo/resnet20_21 --force
    """
    run = Path(run_dir)
    config, result, precision, registered = _recorded_run(run)
    source_weights = run / WEIGHTS_FILE
    if not source_weights.is_file() and registered is not None and registered.weights_git_object:
        raise WeightsNotStoredError(not_stored(registered, source_weights))
    if not source_weights.is_file():
        raise ZooError(f"training run {run} has no {WEIGHTS_FILE}.")
    if name is not None:
        split_name(name)  # a given name is checked as given: '' is no name, not the default one
    name = name or (registered.name if registered else None) or default_name(run, config["model"])
    base, _ = split_name(name)
    architecture = config["architecture"]
    if not (isinstance(architecture, dict) and set(architecture) == {"builder_name", "kwargs"}):
        raise ZooError(
            f"{run / CONFIG_FILE}: 'architecture' must be {{'builder_name': ..., 'kwargs': {{...}}}}."
        )
    if architecture["builder_name"] != base:
        raise ZooError(
            f"zoo name {name!r} does not match the run's builder_name {architecture['builder_name']!r}."
        )
    if "normalization" not in architecture["kwargs"]:
        raise ZooError(
            f"{run}: zoo models take raw images; the architecture kwargs lack 'normalization' ([mean, std] "
            "per channel of the training images on the 0-255 scale, which the model applies to raw images)."
        )
    store = Path(store) if store is not None else store_dir()
    if weights_in_git is None and registered is not None and run.resolve().parent == store.resolve():
        weights_in_git = registered.weights_git_object  # registered again in its own store
    final = store / name
    if final.exists() and not overwrite:
        raise ZooError(f"zoo entry {final} already exists; pass overwrite=True (CLI: --force) to replace it.")
    if final.exists() and not (final / METADATA_FILE).is_file():
        raise ZooError(f"{final} is no zoo entry (it holds no {METADATA_FILE}), so overwrite=True (CLI: "
                       "--force) does not replace it; move it away or register another name.")  # fmt: skip
    files.check_writable(store, "zoo store")
    with files.folder_made(store):  # a store folder made here is not left behind by a refusal
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=store))
        staging.chmod(0o755)  # mkdtemp makes it private; the published entry is readable by all
        try:
            weights = staging / WEIGHTS_FILE
            write_float16(source_weights, weights)
            if weights_in_git is not None:  # checked before minutes of measuring
                weights_in_git = git_weights.resolve(store, weights_in_git, files.sha256(weights))
            if (run / METRICS_FILE).is_file():
                shutil.copyfile(run / METRICS_FILE, staging / METRICS_FILE)
            entry = _measure(name, config, result, precision, weights, run, data)
            if weights_in_git is not None:
                kept_in_git = {**entry.to_json(), "weights_git_object": weights_in_git}
                entry = ZooEntry.from_json(kept_in_git, where=f"metadata of {name!r}")
                weights.unlink()
                git_weights.ignore_fetched(staging, WEIGHTS_FILE)
            files.write_json(staging / METADATA_FILE, entry.to_json())
            card.write(entry, staging)  # the model card, README.md, as it belongs in the published folder
            shipped = store.resolve() == shipped_store().resolve()
            previous = presets.read() if shipped else {}
            if shipped:  # the package's presets first: a published entry is never one the package refuses
                presets.write({**previous, name: presets.of_entry(entry)})
            try:
                _publish(staging, final, overwrite)
            except BaseException:
                if shipped:
                    presets.write(previous)
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return entry


def _recorded_run(run: Path) -> tuple[dict, dict, str | None, ZooEntry | None]:
    """``(config, result, precision, entry)`` of the run in ``run``: a training run's folder (``entry`` is
    ``None``) or a zoo entry's, whose metadata keeps its run's config and result."""
    if not (run / METADATA_FILE).is_file():
        if not run.exists():
            raise ZooError(f"{run} does not exist: {RUN_FOLDER}.")
        record = RunRecord.read(run)
        if record.damage and not (record.config and record.result):  # a damaged progress.json alone does not
            raise ZooError(f"{run} is not a run that can be registered: {'; '.join(record.damage)}.")
        if record.config and not record.result:  # (cut off in its first epoch: no epoch logged yet)
            command = record.config.get("command", "its training command")
            how = (f"it failed ({record.failure.get('error', 'failed.json')})" if record.state == "failed"
                   else f"the same command resumes it: {command}")  # fmt: skip
            raise ZooError(f"the run in {run} has not finished (no result.json; epochs logged: "
                           f"{len(record.curve)}): {how}")  # fmt: skip
        config = _required(record.config, run / CONFIG_FILE, CONFIG_KEYS)
        return config, _required(record.result, run / RESULT_FILE, RESULT_KEYS), record.precision, None
    path = run / METADATA_FILE
    entry = ZooEntry.read(run)
    training = entry.training
    config = _required(training["config"], path, CONFIG_KEYS)
    return config, _required(training["result"], path, RESULT_KEYS), training.get("precision"), entry


def write_float16(
    source: str | os.PathLike, target: str | os.PathLike, *, restart_optimizer: bool = False
) -> None:
    """Copy the Keras weights file ``source`` (``*.weights.h5``) to ``target`` with every floating-point
    array stored as float16: the same groups, names and attributes, so ``model.load_weights(target)``
    fills a float32 model (Keras casts on assignment), at half the bytes. Only the model's weights are
    copied: the optimizer's state that Keras' ``save_weights`` adds for a compiled model (its top-level
    ``optimizer`` group) is left out. An array holding a value beyond float16's range (65504; e.g. the
    BatchNorm moving variance of a network whose activations grew large) keeps its own dtype instead of
    turning into inf. Every array of at least :data:`COMPRESS_FROM_BYTES` is stored losslessly compressed
    (HDF5's byte shuffle and gzip, which every HDF5 reader decodes: about 11 % smaller, the values bit for bit
    the same). Written in HDF5's newest file format (smaller group metadata) without object timestamps, so
    the same weights give the same bytes and the same sha256 (with the same h5py build, whose HDF5 and zlib
    it bundles).

    ``restart_optimizer``: keep the ``optimizer`` group instead, its single values (the step count that the
    learning-rate schedule reads) as they are and its arrays (SGD's momentum) as float16 zeros, which compress
    to almost nothing: a training backup at about a quarter of its size, from which a run resumes at the same
    step with its momentum restarted (:func:`relu_ratio.train.archive.pack` with ``float16=True``).

    Example:
        >>> write_float16("runs/resnet20_21/model.weights.h5", "/tmp/half.weights.h5")  # doctest: +SKIP
    """
    untimed_group = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    untimed_group.set_obj_track_times(False)

    def copy(source_group: h5py.Group, target_group: h5py.Group, zeroed: bool = False) -> None:
        """Copy ``source_group`` into ``target_group``; ``zeroed``: its arrays become float16 zeros."""
        target_group.attrs.update(source_group.attrs)
        for key, item in source_group.items():
            is_optimizer = source_group.name == "/" and key == OPTIMIZER_GROUP
            if is_optimizer and not restart_optimizer:
                continue
            if isinstance(item, h5py.Group):
                group = h5py.Group(h5py.h5g.create(target_group.id, key.encode(), gcpl=untimed_group))
                copy(item, group, zeroed or is_optimizer)
                continue
            array = item[()]  # a single value (the step count) reads as a numpy scalar: kept as it is
            is_float = isinstance(array, np.ndarray) and array.dtype.kind == "f"
            if is_float and zeroed:
                array = np.zeros(array.shape, np.float16)
            elif is_float and _fits_float16(array):
                array = array.astype(np.float16)
            packed = {}
            if isinstance(array, np.ndarray) and array.nbytes >= COMPRESS_FROM_BYTES:  # one chunk: the array
                packed = dict(chunks=array.shape, shuffle=True, compression="gzip", compression_opts=9)
            target_group.create_dataset(key, data=array, track_times=False, **packed).attrs.update(item.attrs)

    untimed_root = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    untimed_root.set_obj_track_times(False)
    newest = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    newest.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    try:
        created = h5py.h5f.create(os.fsencode(target), h5py.h5f.ACC_TRUNC, fcpl=untimed_root, fapl=newest)
        with h5py.File(source, "r") as read, h5py.File(created) as written:
            copy(read, written)
    except OSError as error:
        raise ZooError(f"cannot store the weights {os.fspath(source)} as float16: {error}") from error


def _fits_float16(array: np.ndarray) -> bool:
    """Whether every finite value of ``array`` is within float16's range.

    >>> _fits_float16(np.array([1.0, -65504.0, np.inf])), _fits_float16(np.array([7e5]))
    (True, False)
    """
    finite = np.abs(array[np.isfinite(array)])
    return not finite.size or float(finite.max()) <= float(np.finfo(np.float16).max)


def default_name(run_dir: str | os.PathLike, model: str) -> str:
    """The zoo name a run folder stands for: ``<model>.<tag>`` for the training queue's folder of a tagged
    variant (``<model>.<tag>-seed<k>``), else the run's ``model``.

    >>> default_name("runs/resnet20_21.long-seed0", "resnet20_21"), default_name("runs/x", "resnet20_21")
    ('resnet20_21.long', 'resnet20_21')
    """
    name, _ = parse_run_folder_name(run_dir) or ("", 0)
    base, dot, tag = name.partition(".")
    if base != model or not dot:
        return model
    if not TAG_PATTERN.fullmatch(tag):
        cleaned = re.sub("[^a-z0-9_]", "_", tag.lower())
        example = f"{model}.{cleaned}" if cleaned.strip("_") else model
        raise ZooError(
            f"the run folder {os.fspath(run_dir)} names the tag {tag!r}, which no zoo name can carry (use "
            f"lower-case letters, digits and '_'); give the entry's name with --name, e.g. --name {example}."
        )
    return f"{model}.{tag}"


def _measure(
    name: str, config: dict, result: dict, precision: str | None, weights: Path, run: Path, data
) -> ZooEntry:
    architecture = config["architecture"]
    model = build_with_weights(architecture, weights, f"training run {run}", named=run / WEIGHTS_FILE)
    source = os.fspath(data) if data is not None else str(config["dataset"])
    check_class_count(source, model.output_shape[-1], f"the model of the run in {run}")
    split = data_lib.load(source, split="test")
    trained_on = config.get("dataset_info", {}).get("class_names")
    if trained_on is not None and list(split.info.class_names) != list(trained_on):
        raise ZooError(
            f"{source} (test) has the classes {list(split.info.class_names)}, but the run in {run} trained "
            f"on {list(trained_on)}: its outputs would be read as the wrong classes. Register it with the "
            "test split of the data it trained on (--data)."
        )
    if split.info.num_classes != model.output_shape[-1]:
        raise ZooError(
            f"{source} (test) has {split.info.num_classes} classes; the model outputs "
            f"{model.output_shape[-1]}."
        )
    images, trained = tuple(split.images.shape[1:]), tuple(model.input_shape[1:])
    if images != trained:
        raise ZooError(
            f"{source} (test) has images of shape {images}, but the run in {run} trained on {trained}. "
            "Register it with the test split of the data it trained on (--data)."
        )
    description = describe(model)
    mean, std = architecture["kwargs"]["normalization"]
    entry = ZooEntry(
        format_version=FORMAT_VERSION,
        name=name,
        architecture=architecture,
        relu_pattern=explicit_pattern(architecture["builder_name"]),
        weights_file=WEIGHTS_FILE,
        sha256=files.sha256(weights),
        file_size=weights.stat().st_size,
        dataset=DATASET_NAMES.get(split.info.name, split.info.name),
        data_source=source,
        split="test",
        num_images=len(split),
        class_names=tuple(split.info.class_names),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        input_shape=tuple(int(d) for d in model.input_shape[1:]),
        metrics=accuracy(model, split),
        params=description.params,
        flops=description.flops,
        training={
            "command": str(config["command"]),
            "config": config,
            "epochs": int(result["epochs_completed"]),
            "wall_time_s": float(result["wall_time_s"]),
            "device": str(result["device"]),
            "backend": str(result["backend"]),
            "result": result,
            "cpu_time_s": float(result["cpu_time_s"]) if "cpu_time_s" in result else None,
            "precision": precision,
            "commit": result.get("commit"),
        },
        package_version=relu_ratio.__version__,
        keras_version=keras.version(),
        reference_outputs=reference.record(model),
    )
    return ZooEntry.from_json(entry.to_json(), where=f"metadata of {name!r}")  # the schema checks it too


def _required(value: dict, path: Path, keys: tuple[str, ...]) -> dict:
    """``value`` (a file of the run read by :class:`~relu_ratio.train.RunRecord`) if it holds ``keys``."""
    if not value:
        raise ZooError(f"cannot read {path}: missing, unreadable or not a JSON object ({RUN_FOLDER}).")
    missing = [key for key in keys if key not in value]
    if missing:
        raise ZooError(f"{path} lacks the keys {missing}.")
    return value


def _publish(staging: Path, final: Path, overwrite: bool) -> None:
    """Rename the finished ``staging`` folder to ``final`` (replacing it if ``overwrite``)."""
    try:
        files.publish_folder(staging, final, overwrite)
    except OSError as error:
        raise ZooError(
            f"cannot publish zoo entry {final} (created meanwhile by another process?): {error}"
        ) from error
