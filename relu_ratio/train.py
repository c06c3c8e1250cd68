"""Train any relu_ratio model with ``model.fit``: the paper's recipe, a fast recipe, and a CLI that resumes.

Recipes (:data:`RECIPES`):

* ``paper`` (default; fusenet's ``train_model.py``, which the paper follows): SGD, Nesterov momentum 0.9,
  lr 0.1, weight decay 1e-4, batch 64, 400 epochs, lr x0.1 at 1/2, 3/4 and 7/8 of training.
* ``fast`` (a few-minute GPU budget): same optimizer, batch 128, one warm-up epoch into a cosine decay,
  label smoothing 0.1. Epochs are yours to set.

From Python::

    from relu_ratio import train
    result = train.run(train.TrainConfig(model="resnet20_21", dataset="../shared/data", epochs=2))

or use the parts in your own script (:func:`compile_for`, :func:`relu_ratio.data.batches`). From the
command line::

    python -m relu_ratio.train --model preact164_32 --dataset ../shared/data --recipe fast \
        --epochs 30 --out runs/p164

The run directory gets ``config.json`` (the full config and the command), ``metrics.csv`` (one row per
epoch), TensorBoard logs (with TensorFlow installed), ``best.weights.h5`` / ``model.weights.h5`` (best by
test accuracy / final), a ``backup/`` for resuming, and ``result.json`` (final test accuracy, time,
device). Killed at any point, the same command resumes from the last backup (every epoch and every
``--backup-every`` steps; the interrupted epoch restarts from its beginning with the backed-up weights and
optimizer state) and ends after the same number of epochs; a kill while a backup is being written falls back
to the previous one. A NaN or infinite loss or weights stop the run with :class:`TrainingDiverged` (the CLI
exits 1) before anything non-finite is saved.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import keras
import numpy as np

from relu_ratio import data, models, paths


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; every field is also a CLI flag (``--batch-size``...).

    ``None`` fields take the recipe's value.
    """

    model: str = "preact164_32"
    dataset: str = "cifar10"
    out: str = "runs/run"
    recipe: str = "paper"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    label_smoothing: float | None = None
    schedule: str | None = None  # "step" or "cosine"
    warmup_epochs: float | None = None
    train_subset: int | None = None  # train on a random subset of this many training images
    test_subset: int | None = None
    holdout: int | None = None  # validate on this many held-out training images instead of the test split
    data_dir: str | None = None  # tensorflow-datasets data_dir
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (bfloat16 on GPU), "off", "mixed_bfloat16", "mixed_float16"
    distribute: bool = False
    backup_every: int = 200  # steps between mid-epoch backups
    verbose: int = 1

    def resolved(self) -> TrainConfig:
        """A copy with the recipe's defaults filled in, checked."""
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}; received {self.recipe!r}.")
        filled = dataclasses.replace(self)
        for key, value in RECIPES[self.recipe].items():
            if getattr(filled, key) is None:
                setattr(filled, key, value)
        if filled.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be 'step' or 'cosine'; received {filled.schedule!r}.")
        for key in ("epochs", "batch_size", "backup_every"):
            if getattr(filled, key) < 1:
                raise ValueError(f"{key} must be >= 1; received {getattr(filled, key)!r}.")
        if filled.mixed_precision not in ("auto", "off", "mixed_bfloat16", "mixed_float16"):
            raise ValueError(
                "mixed_precision must be 'auto', 'off', 'mixed_bfloat16' or 'mixed_float16'; "
                f"received {filled.mixed_precision!r}."
            )
        models.check_name(filled.model)
        return filled


HOLDOUT_SEED = 0  # --holdout takes the same training images out for every run and seed

RECIPES: dict[str, dict] = {
    "paper": {"epochs": 400, "batch_size": 64, "lr": 0.1, "label_smoothing": 0.0, "schedule": "step",
              "warmup_epochs": 0.0},
    "fast": {"epochs": 30, "batch_size": 128, "lr": 0.1, "label_smoothing": 0.1, "schedule": "cosine",
             "warmup_epochs": 1.0},
}  # fmt: skip


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The recipe's schedule as a Keras ``LearningRateSchedule`` over optimizer steps."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        # PiecewiseConstantDecay switches after a boundary: the step with index total*f gets the new lr
        bounds = sorted({max(0, int(total * f) - 1) for f in (1 / 2, 3 / 4, 7 / 8)})
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [config.lr * 0.1**i for i in range(len(bounds) + 1)]
        )
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.lr / 10 if warmup else config.lr,
        decay_steps=max(1, total - warmup),
        warmup_target=config.lr if warmup else None,
        warmup_steps=warmup,
    )


def compile_for(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """Compile ``model`` with the recipe's optimizer, schedule, loss and metrics (one-hot labels)."""
    optimizer = keras.optimizers.SGD(
        learning_rate(config, steps_per_epoch), momentum=config.momentum, nesterov=config.nesterov
    )
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    metrics = [
        keras.metrics.CategoricalAccuracy("accuracy"),
        keras.metrics.TopKCategoricalAccuracy(5, "top5"),
    ]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def run(config: TrainConfig) -> dict:
    """Train (or resume) the run ``config.out``; returns the final result written to ``result.json``."""
    config = config.resolved()
    out = Path(config.out)
    _prepare_out(out, config)
    keras.utils.set_random_seed(config.seed)
    _set_precision(config.mixed_precision)

    train_split = data.load(config.dataset, "train", data_dir=config.data_dir)
    if config.holdout:  # a fixed slice (the same for every seed), so runs are compared on the same images
        train_split, val_split = train_split.hold_out(config.holdout, HOLDOUT_SEED)
    else:
        val_split = data.load(config.dataset, "test", data_dir=config.data_dir).take(
            config.test_subset, config.seed
        )
    train_split = train_split.take(config.train_subset, config.seed)
    info = train_split.info
    evaluated_on = "holdout" if config.holdout else "test"
    arch_kwargs = {"classes": info.num_classes, "normalization": [list(info.mean), list(info.std)]}

    with _Distribution(config.distribute) as distribution:
        model = models.build(config.model, weight_decay=config.weight_decay, **arch_kwargs)
        train_batches = data.batches(
            train_split, config.batch_size, augment=True, seed=config.seed, one_hot=True
        )
        val_batches = data.batches(val_split, 256, one_hot=True)
        compile_for(model, config, len(train_batches))

    paths.write_json(out / "config.json", {
        **dataclasses.asdict(config),
        "command": command_for(config),
        "architecture": {"builder_name": config.model, "kwargs": arch_kwargs},
        "dataset_info": info.to_json(),
        "train_images": len(train_split), f"{evaluated_on}_images": len(val_split),
    })  # fmt: skip
    callbacks = _callbacks(out, config)
    try:
        history = model.fit(
            train_batches,
            epochs=config.epochs,
            validation_data=val_batches,
            callbacks=callbacks,
            verbose=config.verbose,
        )
    except BaseException:  # diverged, interrupted, failed: close the CSV and TensorBoard files, write nothing
        for callback in callbacks:
            if isinstance(callback, (keras.callbacks.CSVLogger, keras.callbacks.TensorBoard)):
                with contextlib.suppress(Exception):  # never mask the error that stopped training
                    callback.on_train_end()
        raise
    backup, clock = callbacks[1], callbacks[2]
    save_model_weights(model, config.model, arch_kwargs, out / "model.weights.h5")
    scores = model.evaluate(val_batches, verbose=0, return_dict=True)
    result = {
        "model": config.model,
        "epochs_completed": backup.epochs_done(),
        "evaluated_on": evaluated_on,
        f"{evaluated_on}_top1": float(scores["accuracy"]),
        f"{evaluated_on}_top5": float(scores["top5"]),
        f"best_{evaluated_on}_top1": max(metric_column(out, "val_accuracy"), default=None),
        "wall_time_s": clock.total,
        "device": device(),
        "backend": keras.backend.backend(),
        "replicas": distribution.replicas,
        "versions": {"keras": keras.__version__, "numpy": np.__version__},
        "last_epoch_metrics": {k: float(v[-1]) for k, v in history.history.items()}
        if history.history
        else {},
    }
    paths.write_json(out / "result.json", result)
    return result


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
    tmp = path.with_name(".tmp-" + path.name)
    clean.save_weights(tmp)
    os.replace(tmp, path)


def _prepare_out(out: Path, config: TrainConfig) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"cannot write to the output directory {out}: {error}") from error
    previous = out / "config.json"
    if previous.exists():
        old = json.loads(previous.read_text())
        changed = {
            k: (old.get(k), v) for k, v in dataclasses.asdict(config).items()
            if k not in ("verbose", "out") and old.get(k) != v
        }  # fmt: skip
        if changed:
            raise ValueError(
                f"{out} holds a run with a different config {changed} (old, new). Resume with the "
                "same settings, or choose another --out."
            )


def _callbacks(out: Path, config: TrainConfig) -> list[keras.callbacks.Callback]:
    best = max(metric_column(out, "val_accuracy"), default=None)
    callbacks = [
        _DivergenceGuard(out, config),  # first: it stops a diverged step before anything saves it
        _Backup(out / "backup", save_freq=config.backup_every),
        _WallClock(out / "progress.json"),
        keras.callbacks.CSVLogger(out / "metrics.csv", append=True),
        keras.callbacks.ModelCheckpoint(out / "best.weights.h5", monitor="val_accuracy", mode="max",
                                        save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=best),
    ]  # fmt: skip
    try:
        import tensorboard  # noqa: F401  (TensorBoard writes through tf.summary)
        import tensorflow  # noqa: F401

        callbacks.append(keras.callbacks.TensorBoard(out / "tensorboard"))
    except ImportError:
        print("relu_ratio.train: TensorFlow/TensorBoard not installed, so no TensorBoard logs are written.")
    return callbacks


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite; the run stopped and kept its last good files."""


def _all_finite(model: keras.Model) -> bool:
    """Whether every model and optimizer variable is finite (BatchNorm statistics included)."""
    variables = list(model.weights)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    for variable in variables:
        value = np.asarray(keras.ops.convert_to_numpy(variable))
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            return False
    return True


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops the run with :class:`TrainingDiverged` at the first non-finite loss (every step) or
    non-finite weights or metrics (every epoch end), before the callbacks after it save anything."""

    def __init__(self, out: Path, config: TrainConfig):
        super().__init__()
        self.out, self.config, self.epoch = out, config, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(np.asarray(loss))):
            self.stop(f"the training loss is {float(np.asarray(loss))} at step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: float(np.asarray(v)) for k, v in (logs or {}).items() if _is_number(v)}
        bad = {k: v for k, v in bad.items() if not math.isfinite(v)}
        if bad:
            self.stop(f"{', '.join(f'{k} is {v}' for k, v in bad.items())} at the end of the epoch")
        if not _all_finite(self.model):
            self.stop("the weights hold NaN or infinite values at the end of the epoch")

    def stop(self, what: str):
        raise TrainingDiverged(
            f"training diverged in epoch {self.epoch + 1}: {what}. Nothing non-finite was saved: "
            f"{self.out / 'backup'} keeps the last finite backup and best.weights.h5 the best epoch; "
            f"model.weights.h5 and result.json were not written. Lower the learning rate (--lr, now "
            f"{self.config.lr}) or check the data, and start a new run (--out)."
        )


def _is_number(value) -> bool:
    try:
        float(np.asarray(value))
    except (TypeError, ValueError):
        return False
    return True


class _Backup(keras.callbacks.BackupAndRestore):
    """Backups every ``save_freq`` steps and at every epoch end that a kill at any instant cannot spoil.

    Keras' own ``BackupAndRestore(double_checkpoint=True)`` (3.15) overwrites ``latest.weights.h5`` and then
    ``training_metadata.json`` in place, one after the other, and falls back to its ``.bkp`` copies only on
    an ``OSError``: a kill inside the JSON write leaves an empty file (``JSONDecodeError``, resume fails for
    good), a kill between the two writes pairs new weights with the old epoch, and mid-epoch backups in the
    first epoch after a resume record epoch 0. Here every backup goes to a new file
    ``ckpt-<n>.weights.h5``; then ``training_metadata.json`` (epoch, batch, file, sha256, and the previous
    record) is replaced atomically: that is the commit. A half-written file is never referenced. Restoring
    takes the record's file if it exists, matches its sha256 and loads, else the previous record's. Weights
    that are not finite are never backed up (:class:`TrainingDiverged`).
    """

    RECORD = "training_metadata.json"

    def __init__(self, backup_dir: Path, save_freq: int):
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=False, delete_checkpoint=False)
        self.dir = Path(backup_dir)
        self.record = self._read_record()

    def _read_record(self) -> dict | None:
        path = self.dir / self.RECORD
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(
                f"the backup record {path} is unreadable ({error}); delete {self.dir} to start the run over."
            ) from error
        return record if "weights" in record else None  # a record of keras' own layout: no "weights"

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch  # keras leaves it 0 until the first epoch end after a resume

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._save_model()

    def on_train_begin(self, logs=None):
        self.record = self._read_record()
        if self.record is None:
            super().on_train_begin(logs)  # nothing yet, or a backup in keras' own layout
            return
        problems = []
        for record in (self.record, self.record.get("previous")):
            if record is None:
                continue
            problem = self._restore(record)
            if problem is None:
                self.model._initial_epoch = record["epoch"]
                self.record = record
                return
            problems.append(problem)
        raise ValueError(
            f"no backup in {self.dir} can be restored ({'; '.join(problems)}); delete {self.dir} to start "
            "the run over."
        )

    def _restore(self, record: dict) -> str | None:
        path = self.dir / record["weights"]
        if not path.is_file():
            return f"{path.name} is missing"
        if _sha256(path) != record.get("sha256"):
            return f"{path.name} does not match its sha256 (partly written or damaged)"
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(path)
        except (OSError, ValueError, KeyError) as error:
            return f"{path.name} does not load: {str(error).splitlines()[0] if str(error) else error!r}"
        return None

    def _save_model(self):
        if not _all_finite(self.model):
            raise TrainingDiverged(
                f"training diverged in epoch {self._current_epoch + 1}: the weights hold NaN or infinite "
                f"values. They were not backed up: {self.dir} keeps the last finite backup. Lower the "
                "learning rate or check the data, and start a new run (--out)."
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        previous = self.record
        number = (previous or {}).get("number", 0) + 1
        name = f"ckpt-{number:06d}.weights.h5"
        self._write_weights(self.dir / name)
        record = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "number": number,
            "weights": name,
            "sha256": _sha256(self.dir / name),
            "previous": {k: v for k, v in previous.items() if k != "previous"} if previous else None,
        }
        self._commit(record)
        self.record = record
        keep = {name, (previous or {}).get("weights")}
        for stale in self.dir.glob("ckpt-*.weights.h5"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)

    def _write_weights(self, path: Path) -> None:
        self.model.save_weights(path, overwrite=True)
        with open(path, "rb+") as file:
            os.fsync(file.fileno())

    def _commit(self, record: dict) -> None:
        path = self.dir / self.RECORD
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as file:
            file.write(json.dumps(record))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)

    def epochs_done(self) -> int:
        path = Path(self.backup_dir) / self.RECORD
        return json.loads(path.read_text())["epoch"] if path.exists() else 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _WallClock(keras.callbacks.Callback):
    """Training time summed over resumed runs, kept in ``progress.json``."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.previous = json.loads(path.read_text())["wall_time_s"] if path.exists() else 0.0
        self.start = time.time()

    @property
    def total(self) -> float:
        return round(self.previous + time.time() - self.start, 1)

    def on_epoch_end(self, epoch, logs=None):
        paths.write_json(self.path, {"wall_time_s": self.total})


def metric_column(out: str | os.PathLike, name: str) -> list[float]:
    """One column of a run's ``metrics.csv`` (a value per epoch, e.g. ``"val_accuracy"``); ``[]`` if none."""
    path = Path(out) / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


def _set_precision(mode: str) -> None:
    if mode == "auto":
        mode = "mixed_bfloat16" if device().startswith("gpu") else "float32"
    keras.mixed_precision.set_global_policy("float32" if mode == "off" else mode)


def device() -> str:
    """The device training runs on, e.g. ``"cpu: 2 cores"`` or ``"gpu: NVIDIA H100 x1"``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        dev = jax.devices()[0]
        return f"{dev.platform}: {getattr(dev, 'device_kind', dev)} x{jax.device_count()}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"gpu: {len(gpus)} x {gpus[0].name}" if gpus else f"cpu: {os.cpu_count()} cores"
    return backend


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


def command_for(config: TrainConfig) -> str:
    """The CLI command that reproduces ``config`` (every setting spelled out)."""
    args = ["python", "-m", "relu_ratio.train"]
    for field in dataclasses.fields(TrainConfig):
        value = getattr(config, field.name)
        flag = "--" + field.name.replace("_", "-")
        if field.name == "verbose" or value is None:
            continue
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, str(value)]
    return shlex.join(args)


def parser() -> argparse.ArgumentParser:
    """CLI flags generated from :class:`TrainConfig`, so the two cannot drift apart."""
    p = argparse.ArgumentParser(prog="python -m relu_ratio.train", description=__doc__.split("\n")[0])
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = {"int | None": int, "int": int, "float | None": float, "float": float}.get(field.type, str)
            p.add_argument(flag, type=kind, default=field.default, help=f"default: {field.default}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = TrainConfig(**vars(args))
    try:
        result = run(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:  # bad settings or data; a full or unwritable disk (CacheError too)
        print(f"error: {error}", file=sys.stderr)
        return 2
    top1 = f"{result['evaluated_on']}_top1"
    print(json.dumps({k: result[k] for k in ("model", "epochs_completed", top1, "wall_time_s")}))
    return 0 if math.isfinite(result[top1]) else 1


if __name__ == "__main__":
    sys.exit(main())
