"""Run one training: data, model, recipe and callbacks, then ``model.fit``; resumes a cut-off run.

Example:
    >>> from relu_ratio.train import TrainConfig, run
    >>> result = run(TrainConfig(model="resnet20_21", dataset="../shared/data", epochs=2))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from pathlib import Path

import keras
import numpy as np

from relu_ratio import data, files, folder_lock, models
from relu_ratio.provenance import source_commit
from relu_ratio.train import callbacks as callbacks_lib
from relu_ratio.train import speeds
from relu_ratio.train.config import TrainConfig, check_config, command_for
from relu_ratio.train.devices import BF16_CPU_CLASSES, DEVICE_SEPARATOR, cpu_class, device, is_gpu
from relu_ratio.train.kernels import with_fast_kernels
from relu_ratio.train.pipeline import training_input
from relu_ratio.train.recipes import HOLDOUT_SEED, RECIPES, check_steps_per_execution, compile_for
from relu_ratio.train.record import (
    BACKUP_FOLDER,
    BEST_WEIGHTS_FILE,
    CONFIG_FILE,
    FAILED_FILE,
    LOG_FILE,
    METADATA_FILE,
    METRICS_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    TENSORBOARD_FOLDER,
    WEIGHTS_FILE,
    metric_column,
    read_json,
    read_result,
)

# A resumed run may be started with other values of these: where its folder and data are (the data itself is
# checked: _check_same_data), how often it backs up and how much it prints. Every other setting must match.
MAY_CHANGE_ON_RESUME = ("out", "dataset", "data_dir", "backup_every", "verbose", "steps_per_execution")
KERAS_BACKENDS = ("tensorflow", "jax", "torch")  # those the training CLI runs on


def run(config: TrainConfig) -> dict:
    """Train (or resume) the run ``config.out``; returns the final result written to ``result.json``.

    Before anything is written, the settings are checked, a folder another process is training in is
    refused (:class:`relu_ratio.folder_lock.FolderInUse`, naming the process), and the data is loaded and
    checked (the test split's class names and image size must match the training split's), so a mistake
    leaves no folder behind. The network is built for the dataset's image size. One process at a time
    trains in a folder: it holds the folder's lock (``.lock``, :func:`relu_ratio.folder_lock.locked_folder`)
    until it returns or raises, Ctrl-C included. The identical command on a finished run returns its
    result and rewrites nothing. The global Keras dtype policy is restored after.
    """
    check_config(config, "run")
    config.resolved()  # every setting checked before any file is touched
    steps_per_execution(config)  # and those the backend limits
    out = Path(config.out)
    folder_lock.check_folder_free(out, RUN_FOLDER)  # refused at once, before the data is loaded
    resolved, started = _settings_for(out, config)
    finished = read_result(out)
    if finished:
        _check_finished_on(out, started, resolved)
        if config.verbose:
            print(f"relu_ratio.train: the run in {out} is finished; nothing trained, its result returned.")
        return finished
    files.check_writable(out, "output directory")  # before the data is loaded
    train_split, val_split = load_data(resolved)
    policy = keras.mixed_precision.global_policy()
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(folder_lock.locked_folder(out, RUN_FOLDER))
            except OSError as error:
                raise ValueError(f"cannot write to the output directory {out}: {error}") from error
            resolved, started = _settings_for(out, config)  # again, now that no one else can change it
            return read_result(out) or _train(resolved, out, started, train_split, val_split)
    finally:
        keras.mixed_precision.set_global_policy(policy)


RUN_FOLDER = "run folder"  # how a run's folder is named in messages (a queue's folder of runs is another)


def steps_per_execution(config: TrainConfig) -> int:
    """Training steps per compiled call: ``config.steps_per_execution``, else 32 on a GPU and 1 elsewhere;
    always 1 on the torch backend, which runs one step per call (Keras refuses more there).

    Raises ``ValueError`` for ``steps_per_execution`` > 1 on the torch backend.
    """
    if keras.backend.backend() == "torch":
        return check_steps_per_execution(config.steps_per_execution or 1)
    return config.steps_per_execution or (32 if is_gpu(device()) else 1)


def _settings_for(out: Path, config: TrainConfig) -> tuple[TrainConfig, dict]:
    """``(resolved config, started)``: ``config`` resolved with the recipe values of the run already in
    ``out`` (``started``, its ``config.json``, ``{}`` if none), checked against that run's settings."""
    started = _started_config(out)
    if not started:
        _check_no_foreign_files(out)
    resolved = with_recorded_recipe(config, started).resolved()
    if started:
        changed = {
            k: (started.get(k), v) for k, v in dataclasses.asdict(resolved).items()
            if k not in MAY_CHANGE_ON_RESUME and k in started and started[k] != v  # a run predating a
            # setting ran as its default did then (augment_on: "host")
        }  # fmt: skip
        if changed:
            raise ValueError(
                f"{out} holds a run with a different config {changed} (old, new). Resume with the "
                "same settings, or choose another --out."
            )
    return resolved, started


def load_data(config: TrainConfig) -> tuple[data.Split, data.Split]:
    """The training and validation splits of ``config`` (resolved): a fixed held-out slice, or the test split,
    whose class names and image size must match the training split's (:func:`relu_ratio.data.check_matching`);
    images too small for the network, subsets larger than their split and a batch larger than the training
    images are refused (a ``ValueError`` naming them)."""
    train_split = data.load(config.dataset, "train", data_dir=config.data_dir)
    if config.holdout:  # a fixed slice (the same for every seed), so runs are compared on the same images
        train_split, val_split = train_split.hold_out(config.holdout, HOLDOUT_SEED)
    else:
        test_split = data.load(config.dataset, "test", data_dir=config.data_dir)
        data.check_matching(train_split, test_split, config.dataset)
        val_split = data.subset(test_split, config.test_subset, config.seed, "test_subset", "the test split")
    try:
        models.check_input_shape(train_split.images.shape[1:])
    except ValueError as error:
        raise ValueError(f"the images of {config.dataset!r} cannot be trained on: {error}") from None
    of = "the training split" + (" left after the held-out slice" if config.holdout else "")
    train_split = data.subset(train_split, config.train_subset, config.seed, "train_subset", of)
    check_batch_size(config.batch_size, len(train_split), of)
    return train_split, val_split


def check_batch_size(batch_size: int, images: int, of: str) -> None:
    """Refuse a batch larger than the ``images`` training images (``of``: what they are, for the message):
    an epoch would be one smaller batch, recorded as this size. ``train`` and ``tune`` check with it.

    >>> check_batch_size(256, 100, "train_subset")
    Traceback (most recent call last):
    ValueError: batch_size 256 is more than the 100 training images (train_subset); give at most 100.
    """
    if batch_size > images:
        raise ValueError(f"batch_size {batch_size} is more than the {images} training images ({of}); give at "
                         f"most {images}.")  # fmt: skip


# What a run writes into its folder (beside config.json, the first file it writes): found in a folder
# without a run's config.json, they belong to something else (a zoo entry, a copied run) and would be
# overwritten.
RUN_FILES = (WEIGHTS_FILE, METRICS_FILE, RESULT_FILE, PROGRESS_FILE, BEST_WEIGHTS_FILE, BACKUP_FOLDER,
             TENSORBOARD_FOLDER)  # fmt: skip
# What the package's own tools write into a run's folder before the run starts: a GPU window's log
# (training/gpu_pair.py) and a series' record of a failed attempt (train.series); not another's files.
RUN_LOGS = (LOG_FILE, FAILED_FILE)


def _check_no_foreign_files(out: Path) -> None:
    """Refuse to start a run in ``out`` when it holds files (hidden ones and :data:`RUN_LOGS` aside) but
    no run's config: a zoo entry, a copied run, a dataset or the working folder (``--out .``)."""
    if (out / METADATA_FILE).exists():
        raise ValueError(
            f"{out} is a zoo entry (it holds {METADATA_FILE}), not a run folder: training there would "
            "overwrite its weights. Choose another --out."
        )
    held = files.visible_entries(out, ignore=RUN_LOGS)
    if held:
        clash = [name for name in RUN_FILES if name in held]
        why = f"would overwrite {', '.join(clash)}" if clash else "would write its files among them"
        raise ValueError(
            f"{out} holds {files.some(held)} but no run's {CONFIG_FILE}, so it is not a run to resume: "
            f"training there {why}. Choose another --out: a new or empty folder, or a run to resume."
        )


def _started_config(out: Path) -> dict:
    """The ``config.json`` of the run already in ``out`` (``{}`` if none), read once per start; a damaged one
    raises :class:`~relu_ratio.train.record.RunFileError` (a ``ValueError``) naming it and what is wrong."""
    hint = f"it cannot be read as a run's config: delete {out} or choose another --out"
    return read_json(out / CONFIG_FILE, hint=hint)


def with_recorded_recipe(config: TrainConfig, old: dict) -> TrainConfig:
    """``config`` with the recipe values the run in its folder started with (``old``, its ``config.json``),
    for the settings left unset (``None``): a run resumes with its own recipe even if the recipe's defaults
    changed since."""
    if not old or old.get("recipe") != config.recipe:
        return config  # a different recipe: _settings_for names the difference
    keys = {key for values in RECIPES.values() for key in values}
    recorded = {k: old[k] for k in keys if getattr(config, k, 0) is None and old.get(k) is not None}
    return dataclasses.replace(config, **recorded)


def _check_finished_on(out: Path, started: dict, config: TrainConfig) -> None:
    """The command of a finished run given another ``--dataset`` must name the data it trained on (moved
    elsewhere); its result is not another dataset's. The same source (``data`` and ``data/`` alike) loads
    nothing; a tensorflow-datasets name is its data (compared by name, nothing downloaded); a folder or
    archive is loaded and compared."""
    if os.path.normpath(str(started.get("dataset"))) == os.path.normpath(config.dataset):
        return
    source = data.find(config.dataset, "train")
    if isinstance(source, str):
        found = {"dataset_info": {"name": source}}
    else:
        found = _data_seen(config, *load_data(config))
    _check_same_data(out, started, found, config.dataset, finished=True)


def _data_seen(config: TrainConfig, train_split: data.Split, val_split: data.Split) -> dict:
    """What a run records of its data (and a resume must find again): the training split's name, classes,
    mean and std, and both splits' image counts, as JSON gives them back."""
    evaluated_on = config.evaluated_on
    seen = {"dataset_info": train_split.info.to_json(), "train_images": len(train_split),
            f"{evaluated_on}_images": len(val_split)}  # fmt: skip
    return json.loads(json.dumps(seen))


def _check_same_data(out: Path, started: dict, found: dict, dataset: str, finished: bool = False) -> None:
    """A resumed run must see the data it started on (``found``: what ``dataset`` gave this start: the
    training split's name, classes, mean and std, and both splits' image counts), wherever its files are now
    (a run cut off on a GPU machine may finish here, its dataset at another path). Mean and std are compared
    to 1e-9 relative (another machine's decoder or summation order may differ in the last bits). The
    message names each difference."""
    differences = []
    for key, value in found.items():
        if key not in started:
            continue
        old = started[key]
        if isinstance(value, dict) and isinstance(old, dict):  # dataset_info: the keys found, one by one
            differences += [f"{key}.{k}: {old.get(k)!r}, {v!r}" for k, v in value.items()
                            if not _same(old.get(k), v)]  # fmt: skip
        elif not _same(old, value):
            differences.append(f"{key}: {old!r}, {value!r}")
    if not differences:
        return
    renamed = all(d.startswith("dataset_info.name") for d in differences)
    hint = " (an image folder's name is its dataset's name: keep it when the folder moves)" if renamed else ""
    advice = "Give the data it trained on" if finished else "Resume with the data it started on"
    raise ValueError(
        f"{out} holds a run {'trained' if finished else 'started'} on other data than --dataset {dataset!r}: "
        f"{'; '.join(differences)} (as {started.get('dataset')!r} gave it, as given now){hint}. {advice}, or "
        "choose another --out."
    )


def _same(a, b) -> bool:
    """Equal JSON values, floats to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
        )
    return a == b


def _train(
    config: TrainConfig, out: Path, started: dict, train_split: data.Split, val_split: data.Split
) -> dict:
    """``started``: the config a cut-off run started with; it resumes in its precision, keeps its commit.
    The data was loaded and checked before the folder was locked (:func:`load_data`)."""
    keras.utils.set_random_seed(config.seed)
    policy = started.get("precision") or precision_policy(config.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    if config.verbose:
        print("\n".join(start_lines(config, policy, resumed=bool(started))))
    where = started.get("augmentation", "host") if started else augmentation(config.augment_on)

    evaluated_on = config.evaluated_on
    arch_kwargs = train_split.builder_kwargs()
    seen = _data_seen(config, train_split, val_split)
    _check_same_data(out, started, seen, config.dataset)

    with _Distribution(config.distribute) as distribution:
        model = with_fast_kernels(
            models.build(config.model, weight_decay=config.weight_decay, **arch_kwargs)
        )
        trainable, train_batches = training_input(model, train_split, config.batch_size, config.seed, where)
        val_batches = data.batches(val_split, 256, one_hot=True)
        compile_for(trainable, config, len(train_batches), steps_per_execution(config))
        trainable.optimizer.build(trainable.trainable_variables)  # here, in a strategy's scope: a backup
        # is restored into it before fit (_train), and TensorFlow builds distributed variables in the scope

    files.write_json(out / CONFIG_FILE, {
        **dataclasses.asdict(config),
        "command": command_for(config),
        "architecture": {"builder_name": config.model, "kwargs": arch_kwargs},
        **seen,
        "precision": policy, "augmentation": where, "commit": started.get("commit", source_commit()),
    })  # fmt: skip
    callbacks = callbacks_lib.make(out, config, device())
    backup = next(c for c in callbacks if isinstance(c, callbacks_lib.Backup))
    clock = next(c for c in callbacks if isinstance(c, callbacks_lib.WallClock))
    last_logs = {}
    try:
        backup.set_model(trainable)  # fit sets it too; the restore comes first, to choose the batches
        # With --ema the cut-off epoch is trained whole again: a fit that ends with it would fold the
        # averaged weights into the model (SwapEMAWeights and Keras finalise the average at a fit's end).
        epoch, done = backup.restore(len(train_batches) if config.ema is None else None)
        clock.resumes_at(epoch + done / len(train_batches))
        if done and config.verbose:
            print(f"relu_ratio.train: epoch {epoch + 1} resumes after {done} of its {len(train_batches)} "
                  "batches")  # fmt: skip
        for batches, initial_epoch, epochs in _stages(train_batches, (epoch, done), config.epochs):
            history = trainable.fit(
                batches,
                initial_epoch=initial_epoch,
                epochs=epochs,
                validation_data=val_batches,
                callbacks=[*callbacks, callbacks_lib.epoch_of(batches)],
                verbose=config.verbose,
                shuffle=False,  # the batches are shuffled; served in order, a resume skips the ones trained
            )
            last_logs.update({k: float(v[-1]) for k, v in history.history.items()})
    except BaseException:  # diverged, interrupted, failed: write nothing, but close the CSV and TensorBoard
        for callback in callbacks:  # files and put back the SIGINT handler that StopOnCtrlC replaced
            if isinstance(callback, (keras.callbacks.CSVLogger, keras.callbacks.TensorBoard)):
                with contextlib.suppress(Exception):  # never mask the error that stopped training
                    callback.on_train_end()
            elif isinstance(callback, callbacks_lib.StopOnCtrlC):
                callback.restore()
        raise
    save_model_weights(model, config.model, arch_kwargs, out / WEIGHTS_FILE)
    scores = trainable.evaluate(val_batches, verbose=0, return_dict=True)
    devices = clock.devices(backup.epochs_done())
    result = {
        "model": config.model,
        "epochs_completed": backup.epochs_done(),
        "evaluated_on": evaluated_on,
        f"{evaluated_on}_top1": float(scores["accuracy"]),
        f"{evaluated_on}_top5": float(scores["top5"]),
        f"best_{evaluated_on}_top1": max(metric_column(out, "val_accuracy"), default=None),
        "wall_time_s": clock.total,
        "cpu_time_s": clock.total_cpu,
        "device": DEVICE_SEPARATOR.join(devices),  # where it trained: more than one if it resumed elsewhere
        "devices": devices,
        "backend": keras.backend.backend(),
        "precision": policy,
        "augmentation": where,
        "commit": source_commit(),
        "replicas": distribution.replicas,
        "versions": {"keras": keras.__version__, "numpy": np.__version__},
        "last_epoch_metrics": last_logs,
    }
    files.write_json(out / RESULT_FILE, result)
    return result


def _stages(
    batches: data.Batches, resumed_at: tuple[int, int], epochs: int
) -> list[tuple[data.Batches, int, int]]:
    """``(batches, initial_epoch, epochs)`` of each ``fit`` that trains a run resumed at ``resumed_at``
    (epoch, batches of it done; ``(0, 0)`` for a new run) to ``epochs``: first the rest of a cut-off
    epoch (Keras reads an epoch's length once a fit), then the epochs after it."""
    epoch, done = resumed_at
    rest = [(batches.starting_at(epoch, skip=done), epoch, epoch + 1)] if done else []
    return [*rest, (batches.starting_at(epoch + bool(done)), epoch + bool(done), epochs)]


def save_model_weights(model: keras.Model, name: str, arch_kwargs: dict, path: Path) -> None:
    """Save only the model's float32 weights (``model.save_weights`` would add the optimizer state).

    They are copied into a freshly built, uncompiled float32 model, which is what the zoo loads.
    """
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clean = models.build(name, **arch_kwargs)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    clean.set_weights([np.asarray(w, dtype=np.float32) for w in model.get_weights()])
    callbacks_lib.save_weights(clean, path, consequence="nothing else was changed; free space and run the "
                               "same command again to finish")  # fmt: skip


def augmentation(mode: str) -> str:
    """Where ``--augment-on mode`` augments: ``auto`` is ``device`` on a GPU (the host would hold the GPU
    back: :mod:`relu_ratio.train.pipeline`) and ``host`` on a CPU, where numpy's augmentation costs the step
    little. A resumed run keeps where it started."""
    if mode == "auto":
        return "device" if is_gpu(device()) else "host"
    return mode


def start_lines(
    config: TrainConfig, policy: str, resumed: bool, table: list[dict] | None = None
) -> list[str]:
    """What a run prints at its start: the device (a CPU with its class, :func:`cpu_class`), the backend and
    the precision ``policy``; then, for a new run on a CPU, :func:`relu_ratio.train.speeds.hint` from
    ``table`` (default: the package's measured speeds) if another backend trained faster on this class.

    >>> start_lines(TrainConfig(model="resnet20_21"), "float32", resumed=False)  # doctest: +SKIP
    ['relu_ratio.train: cpu: 2 cores (AVX2, no bfloat16), Keras on tensorflow: float32']
    """
    backend, where = keras.backend.backend(), device()
    if is_gpu(where):
        return [f"relu_ratio.train: {where}, Keras on {backend}: {policy}"]
    cls = cpu_class()
    bf16 = "" if cls in BF16_CPU_CLASSES else ", no bfloat16"
    lines = [f"relu_ratio.train: {where} ({cls}{bf16}), Keras on {backend}: {policy}"]
    if not resumed:
        precisions = {b: precision_policy(config.mixed_precision, b) for b in KERAS_BACKENDS}
        table = speeds.read() if table is None else table
        advice = speeds.hint(table, cls, config.model, backend, precisions, command_for(config))
        lines += [f"relu_ratio.train: {advice}"] if advice else []
    return lines


BF16_CPU_BACKENDS = ("tensorflow", "torch")  # where `auto` trains a bfloat16 CPU in mixed_bfloat16


def precision_policy(mode: str, backend: str | None = None) -> str:
    """The Keras dtype policy that ``--mixed-precision mode`` trains in under ``backend`` (default: the
    current one).

    ``auto`` is ``mixed_bfloat16`` on a GPU and, under TensorFlow and PyTorch (:data:`BF16_CPU_BACKENDS`),
    on a CPU with bfloat16 instructions (AVX512-BF16 or AMX-BF16): on 2 such cores the training step with
    the fast layers (:mod:`relu_ratio.train.kernels`) ran 1.9x (``preact56_32``) to 3.0x (``resnet20_21``)
    faster in bfloat16 than in float32 on TensorFlow and 1.6x (``resnet20_21``) to 1.9x
    (``preact164_type2``) on PyTorch, with the same proxy accuracy (docs/BENCHMARKS.md;
    training/README.md). Elsewhere ``float32`` (JAX on a CPU: unmeasured); ``off`` is ``float32``. A
    resumed run keeps the precision it started in.
    """
    if mode == "auto":
        bf16_cpu = (backend or keras.backend.backend()) in BF16_CPU_BACKENDS and cpu_has_bf16_instructions()
        return "mixed_bfloat16" if is_gpu(device()) or bf16_cpu else "float32"
    return "float32" if mode == "off" else mode


def cpu_has_bf16_instructions(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU reports bfloat16 arithmetic (``avx512_bf16`` or ``amx_bf16``; Linux only)."""
    return cpu_class(cpuinfo) in BF16_CPU_CLASSES


class _Distribution:
    """Context: Keras' own data parallelism (JAX) or ``tf.distribute.MirroredStrategy`` (TensorFlow)."""

    def __init__(self, enabled: bool):
        self.enabled, self.scope, self.replicas = enabled, None, 1

    def __enter__(self):
        if not self.enabled:
            return self
        backend = keras.backend.backend()
        if backend == "jax":
            distribution = keras.distribution.DataParallel()
            keras.distribution.set_distribution(distribution)
            self.replicas = int(distribution.device_mesh.devices.size)
        elif backend == "tensorflow":
            import tensorflow as tf

            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
            self.scope, self.replicas = strategy.scope(), strategy.num_replicas_in_sync
            self.scope.__enter__()
        else:
            raise ValueError(f"--distribute supports the jax and tensorflow backends, not {backend!r}.")
        return self

    def __exit__(self, *exc):
        if self.scope is not None:
            self.scope.__exit__(*exc)
        return False
