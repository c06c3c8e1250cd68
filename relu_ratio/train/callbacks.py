"""The callbacks of a training run: a divergence guard, kill-safe backups and a wall/CPU clock; and
:func:`save_weights`, the one way a run writes a weights file (backups, ``best.weights.h5``,
``model.weights.h5``): room checked first, written to a temporary file and renamed.

:func:`make` puts them in the order a run needs (the guard first, so nothing non-finite is ever saved; an
epoch's clock and metrics row before the backup that commits the epoch; with ``--ema``, Keras'
``SwapEMAWeights`` after the backup and before the best-epoch checkpoint).

Example:
    >>> from relu_ratio.train import callbacks
    >>> made = callbacks.make(Path("runs/x"), config, "cpu: 2 cores")  # doctest: +SKIP
    >>> [type(c).__name__ for c in made][:4]  # doctest: +SKIP
    ['DivergenceGuard', 'WallClock', 'MetricsLog', 'Backup']
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from relu_ratio import files
from relu_ratio.train.record import (
    BACKUP_FOLDER,
    BEST_WEIGHTS_FILE,
    METRICS_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    TENSORBOARD_FOLDER,
    WEIGHTS_FILE,
    check_keys,
    drop_epochs_from,
    metric_column,
    read_json,
    read_progress,
)

if TYPE_CHECKING:
    from relu_ratio.data import Batches
    from relu_ratio.train.config import TrainConfig


def make(out: Path, config: TrainConfig, device: str) -> list[keras.callbacks.Callback]:
    """The callbacks of a run in ``out``, in the order Keras calls them: the guard first, then Ctrl-C's
    (:class:`StopOnCtrlC`), the clock and the metrics log, the backup, the best-epoch checkpoint, TensorBoard
    and the progress bar.

    An epoch's time and metrics row are written before :class:`Backup` commits the epoch (and the time
    before each mid-epoch backup): a kill between the two makes the resume train the rest of that epoch
    from its last backup (its row is dropped and written again), never leaves a committed epoch without
    its row.

    With ``config.ema``, ``SwapEMAWeights`` puts the averaged weights in the model for validation and from
    each epoch's end to the next epoch's start: after the backup (which keeps the raw weights and their
    average, so a resume continues both) and before the best-epoch checkpoint (which keeps the weights
    that were scored).
    """
    best = max(metric_column(out, "val_accuracy"), default=None)
    clock = WallClock(out / PROGRESS_FILE, device)
    callbacks = [
        DivergenceGuard(out, config),  # first: it stops a diverged step before anything saves it
        StopOnCtrlC(),
        clock,
        MetricsLog(out / METRICS_FILE, append=True),
        Backup(out / BACKUP_FOLDER, save_freq=config.backup_every, metrics=out / METRICS_FILE,
               clock=clock if config.ema is None else None),  # --ema trains a cut-off epoch whole again
    ]
    if config.ema is not None:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks.append(
        BestWeights(out / BEST_WEIGHTS_FILE, monitor="val_accuracy", mode="max", save_best_only=True,
                    save_weights_only=True, initial_value_threshold=best)
    )  # fmt: skip
    try:
        import tensorboard  # noqa: F401  (TensorBoard writes through tf.summary)
        import tensorflow  # noqa: F401

        callbacks.append(keras.callbacks.TensorBoard(out / TENSORBOARD_FOLDER))
    except ImportError:
        print("relu_ratio.train: TensorFlow/TensorBoard not installed, so no TensorBoard logs are written.")
    return [*callbacks, Progress(config.epochs)]


def epoch_of(batches: Batches) -> keras.callbacks.Callback:
    """A callback that gives ``batches`` (a :class:`relu_ratio.data.Batches`) the epoch Keras starts, before
    its batches are read: epoch ``e`` of a fit serves epoch ``e``'s draws (order and augmentation), whatever
    the batches served before (another fit of them, a resumed run's ``initial_epoch``, a search's earlier
    trials)."""
    return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs=None: batches.set_epoch(epoch))


class StopOnCtrlC(keras.callbacks.Callback):
    """Ctrl-C stops a fit even where its ``KeyboardInterrupt`` is lost. Python drops an exception raised in
    some callbacks of its own, such as a garbage-collection callback (JAX installs one, and TensorFlow
    imports JAX where it is installed): an interrupt delivered there vanished and the run trained on to the
    end. While a fit runs, SIGINT raises ``KeyboardInterrupt`` as usual and is remembered, and the next
    batch or epoch end, or the fit's end, raises it again if it was lost; then the previous handler is put
    back (:meth:`restore`). Where SIGINT is not Python's default (ignored, as in a background job of a
    script, or a handler of the caller's), nothing changes.

    Example:
        >>> stop = StopOnCtrlC()
        >>> stop.on_train_begin(); stop.on_train_end()  # a handler only while a fit runs
    """

    def __init__(self):
        super().__init__()
        self.pending = False
        self._installed = False

    def _interrupt(self, signum, frame):
        self.pending = True
        raise KeyboardInterrupt

    def on_train_begin(self, logs=None):
        main = threading.current_thread() is threading.main_thread()  # signal handlers live there only
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._interrupt)
            self._installed = True

    def on_train_batch_end(self, batch, logs=None):
        if self.pending:
            raise KeyboardInterrupt

    on_test_batch_end = on_epoch_end = on_train_batch_end

    def on_train_end(self, logs=None):
        self.restore()
        self.on_train_batch_end(None)

    def restore(self) -> None:
        """Put Python's default SIGINT handler back, where this callback replaced it."""
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite; the run stopped and kept its last good files."""


def _sums_fitting(state: list, variables: list) -> list[np.ndarray] | None:
    """A backup's ``metrics_state`` as arrays of the shapes and dtypes of the model's ``metrics_variables``;
    ``None`` if there is none or it does not fit (another set of metrics, or a record edited by hand: not
    numbers, or ``null``, which numpy would read as NaN).

    >>> _sums_fitting([[7.5], 3], [np.zeros(1, "float32"), np.zeros((), "float32")])
    [array([7.5], dtype=float32), array(3., dtype=float32)]
    >>> _sums_fitting([["x"], 3], [np.zeros(1, "float32"), np.zeros((), "float32")]) is None
    True
    """
    if not state or len(state) != len(variables):
        return None
    try:
        sums = [np.asarray(value, dtype=variable.dtype) for value, variable in zip(state, variables)]
    except (TypeError, ValueError):
        return None
    fits = all(s.shape == tuple(v.shape) and np.isfinite(s).all() for s, v in zip(sums, variables))
    return sums if fits else None


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


class DivergenceGuard(keras.callbacks.Callback):
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
        kept = [
            f"{path} keeps {what_it_holds}"
            for path, what_it_holds in ((Backup.record_path(self.out), "the last finite backup"),
                                        (self.out / BEST_WEIGHTS_FILE, "the best epoch's weights"))
            if path.is_file()
        ]  # fmt: skip
        saved = "; ".join(kept) if kept else "no backup or checkpoint had been written yet"
        raise TrainingDiverged(
            f"training diverged in epoch {self.epoch + 1}: {what}. Nothing non-finite was saved ({saved}); "
            f"{WEIGHTS_FILE} and {RESULT_FILE} were not written. Lower the learning rate (--lr, now "
            f"{self.config.lr}) or the momentum (--momentum, now {self.config.momentum}), or check the data, "
            "and start a new run (--out)."
        )


def _is_number(value) -> bool:
    try:
        float(np.asarray(value))
    except (TypeError, ValueError):
        return False
    return True


class Backup(keras.callbacks.BackupAndRestore):
    """Backups every ``save_freq`` steps and at every epoch end that a kill at any instant cannot spoil.

    Keras' own ``BackupAndRestore(double_checkpoint=True)`` (3.15) overwrites ``latest.weights.h5`` and then
    ``training_metadata.json`` in place, one after the other, and falls back to its ``.bkp`` copies only on
    an ``OSError``: a kill inside the JSON write leaves an empty file (``JSONDecodeError``, resume fails for
    good), a kill between the two writes pairs new weights with the old epoch, and mid-epoch backups in the
    first epoch after a resume record epoch 0. Here every backup goes to a new file
    ``ckpt-<n>.weights.h5``; then ``training_metadata.json`` (epoch, batches of it done, file, sha256, and
    the previous record) is replaced atomically: that is the commit. A half-written file is never
    referenced. Restoring takes the record's file if it exists, matches its sha256 and loads, else the
    previous record's. Weights that are not finite are never backed up (:class:`TrainingDiverged`).

    Keras' ``BackupAndRestore`` restarts a cut-off epoch from its first batch with the mid-epoch weights;
    here :meth:`restore` says how many batches of the epoch were done, and the run trains only the rest
    (:func:`relu_ratio.train.fit.run`, with :meth:`relu_ratio.data.Batches.starting_at`). A mid-epoch
    backup also keeps the training metrics' running sums (``metrics_state``), added back at the first step
    of the rest of the epoch, so that epoch's metrics row averages all its batches, as an uncut run's does.
    """

    RECORD = "training_metadata.json"
    FIELDS = {"epoch": (int,), "batch": (int,), "number": (int,), "weights": (str,), "sha256": (str,)}
    # Records written before batches_done have "batch" only (batches_done); metrics_state: mid-epoch ones.
    OPTIONAL = {"batches_done": (int,), "metrics_state": (list,)}

    def __init__(
        self, backup_dir: Path, save_freq: int, metrics: Path | None = None, clock: WallClock | None = None
    ):
        """``metrics``: the run's ``metrics.csv``, whose rows of the epochs a resume trains again are
        dropped (a damaged newest backup falls back to an earlier epoch); ``clock``: the run's
        :class:`WallClock`, written before each mid-epoch backup (it writes itself at each epoch's end); none
        where a resume trains the cut-off epoch whole again (``--ema``), so its time is not counted twice."""
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=False, delete_checkpoint=False)
        self.dir, self.metrics, self.clock = Path(backup_dir), metrics, clock
        self.record = self.read_record(self.dir)
        self.resumed_at: tuple[int, int] | None = None  # (epoch, batches of it done), once restored
        self.metrics_state: list | None = None  # the metrics' sums of the batches a resume skips, to add

    @classmethod
    def record_path(cls, run: Path) -> Path:
        """Where the committed backup record of the run in folder ``run`` is: ``run/backup/<RECORD>``.

        >>> Backup.record_path(Path("runs/r20")).as_posix()
        'runs/r20/backup/training_metadata.json'
        """
        return Path(run) / BACKUP_FOLDER / cls.RECORD

    @classmethod
    def read_record(cls, backup_dir: Path) -> dict | None:
        """The committed record in ``backup_dir`` (``None`` if none), checked: a damaged record raises
        :class:`~relu_ratio.train.record.RunFileError` naming it and what is wrong."""
        path = Path(backup_dir) / cls.RECORD
        if not path.exists():
            return None
        hint = f"delete {backup_dir} to start the run over"
        types = {**cls.FIELDS, **cls.OPTIONAL}
        record = read_json(path, {**types, "previous": (dict, type(None))}, tuple(cls.FIELDS), hint)
        if record.get("previous") is not None:  # the backup before, to fall back to
            check_keys(path, record["previous"], types, tuple(cls.FIELDS), hint)
        return record

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch  # keras leaves it 0 until the first epoch end after a resume

    def on_train_batch_end(self, batch, logs=None):
        if self.metrics_state is not None:  # the first step of the rest of a cut-off epoch: metrics built
            self._add_skipped_metrics()
        super().on_train_batch_end(batch, logs)

    def _add_skipped_metrics(self) -> None:
        """Add the metrics' running sums of the batches the resume skipped to those of its first step
        (Keras resets the metrics as an epoch begins, and builds a TensorFlow model's compiled metrics only
        in its first step). Without sums that fit (a backup written before they were kept, or after the
        epoch's last batch, which is trained again) the epoch's row averages the batches trained after the
        resume, and the console says so."""
        state, self.metrics_state = self.metrics_state, None
        variables = self.model.metrics_variables
        sums = _sums_fitting(state, variables)
        if sums is None:
            print(f"relu_ratio.train: the backup has no training metrics that fit this model for the batches "
                  f"it skips ({'none kept' if not state else 'metrics_state: ' + repr(state)[:80]}), "
                  f"so epoch {self._current_epoch + 1}'s training metrics average only the batches trained "
                  "after the resume.")  # fmt: skip
            return
        for variable, value in zip(variables, sums):
            variable.assign(keras.ops.convert_to_numpy(variable) + value)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._save_model(batches_done=0)

    def restore(self, batches_per_epoch: int | None = None) -> tuple[int, int]:
        """Load the newest backup that loads into the model (set and compiled first) and drop the rows of
        the epochs trained again from the metrics; returns ``(epoch, batches of it to skip)``, ``(0, 0)``
        with no backup. Done once: later calls return the same.

        With ``batches_per_epoch`` the caller trains only the rest of the cut-off epoch (the batches the
        backup had not seen; its last batch again if the backup came after it, since a fit needs one), the
        later backups count that epoch's batches from its first, and the metrics' sums of the skipped
        batches (``metrics_state``) are added at the first step. Without, it is trained whole again
        (as Keras' ``BackupAndRestore`` does).
        """
        if self.resumed_at is None:
            self._restore_latest()
            epoch = self.record["epoch"] if self.record else 0
            if self.metrics is not None:  # the epochs trained again are logged again: drop their old rows
                drop_epochs_from(self.metrics.parent, epoch)
            done = 0
            if self.record and batches_per_epoch:  # a fit needs a batch: one after the last is trained again
                done = min(batches_done(self.record), batches_per_epoch - 1)
            if done:  # the metrics' sums of the skipped batches, added at the first step ([]: none kept)
                kept = done == batches_done(self.record)  # not if the epoch's last batch is trained again
                self.metrics_state = self.record.get("metrics_state", []) if kept else []
            self.resumed_at = (epoch, done)
        return self.resumed_at

    def on_train_begin(self, logs=None):
        self.restore()  # at the first fit, unless the caller did; a later fit starts at the latest backup
        self.model._initial_epoch = self.record["epoch"] if self.record else None

    def _restore_latest(self) -> None:
        self.record = self.read_record(self.dir)
        if self.record is None:  # nothing backed up yet
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
        if files.sha256(path) != record.get("sha256"):
            return f"{path.name} does not match its sha256 (partly written or damaged)"
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(path)
        except (OSError, ValueError, KeyError) as error:
            return f"{path.name} does not load: {str(error).splitlines()[0] if str(error) else error!r}"
        return None

    def _save_model(self, batches_done: int | None = None):
        """Back up the model; ``batches_done``: of the current epoch (``None``: a mid-epoch backup, counted
        from Keras' last batch index, plus the batches a resumed epoch skipped)."""
        metrics_state, per_epoch = None, None  # per_epoch: known mid-epoch (a fit of known length)
        if batches_done is None:
            epoch, skipped = self.resumed_at or (0, 0)
            skipped = skipped if self._current_epoch == epoch else 0  # the fit of a cut-off epoch's rest
            batches_done = self._last_batch_seen + 1 + skipped
            metrics_state = [keras.ops.convert_to_numpy(v).tolist() for v in self.model.metrics_variables]
            steps = (self.params or {}).get("steps")
            per_epoch = steps + skipped if steps else None
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
            "batches_done": batches_done,
            **({"metrics_state": metrics_state} if metrics_state is not None else {}),
            "number": number,
            "weights": name,
            "sha256": files.sha256(self.dir / name),
            "previous": {k: v for k, v in previous.items() if k != "previous"} if previous else None,
        }
        if self.clock is not None and per_epoch:  # mid-epoch: the time of the batches this backup keeps
            self.clock.write(self._current_epoch + batches_done / per_epoch)
        self._commit(record)
        self.record = record
        keep = {name, (previous or {}).get("weights")}
        for stale in self.dir.glob("ckpt-*.weights.h5"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)

    def _write_weights(self, path: Path) -> None:
        previous = (self.record or {}).get("weights")
        kept = f"the previous backup {self.dir / previous} is intact" if previous else "no backup yet"
        save_weights(self.model, path, durable=True, consequence=f"{kept}; free space and run the same "
                     "command again")  # fmt: skip

    def _commit(self, record: dict) -> None:
        files.write_json(self.dir / self.RECORD, record, durable=True)

    def epochs_done(self) -> int:
        record = read_json(self.dir / self.RECORD, {"epoch": (int,)}, hint=f"delete {self.dir} to start over")
        return record.get("epoch", 0)


class MetricsLog(keras.callbacks.CSVLogger):
    """Keras' ``CSVLogger`` that opens its file when it writes the first row, not when training starts.

    :func:`make` puts it before :class:`Backup`, so each epoch's row is written before the backup commits
    the epoch, while Backup's start, which drops the rows of the epochs a resume trains again
    (:func:`~relu_ratio.train.record.drop_epochs_from` replaces the file), still comes before the file is
    opened.
    """

    def on_train_begin(self, logs=None):
        self.on_train_end()  # closes a file left open by an earlier fit; the first row opens it again

    def on_epoch_end(self, epoch, logs=None):
        if self.csv_file is None or self.csv_file.closed:
            super().on_train_begin()
        super().on_epoch_end(epoch, logs)


def batches_done(record: dict) -> int:
    """The batches of ``record["epoch"]`` a backup record says were trained. A record written before
    ``batches_done`` holds Keras' last batch index, ``batch``: 0 at an epoch's end (a mid-epoch backup after
    the first batch reads as none done: one batch trained again)."""
    if "batches_done" in record:
        return record["batches_done"]
    return record["batch"] + 1 if record["batch"] > 0 else 0


class Progress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar (as ``fit(verbose=...)`` sets it), numbering epochs out of the run's ``epochs``,
    also in the ``fit`` that trains the rest of a cut-off epoch (whose own ``epochs`` ends with it)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.run_epochs


class BestWeights(keras.callbacks.ModelCheckpoint):
    """Keras' ``ModelCheckpoint`` (weights only) writing through :func:`save_weights`: a kill or a full disk
    while it writes leaves the previous best weights, not half a file (Keras writes in place)."""

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            save_weights(self.model, Path(filepath), consequence="the previous best weights are intact")


class WallClock(keras.callbacks.Callback):
    """Training time summed over resumed runs, kept in ``progress.json``: wall-clock seconds and the
    process's CPU seconds (all its threads), so a run's CPU-hours are measured, not estimated; also per
    ``device`` (``"devices"``), since a run cut off on one machine may finish on another, with the Keras
    backends it trained under there (``"backends"``); and the epochs trained in that time
    (``"epochs_trained"``, a fraction after a mid-epoch backup; also per device), for the pace.

    Written at each epoch's end and by :class:`Backup` before each mid-epoch backup, so a run cut off and
    resumed counts the time of the batches its backup kept (not the time after its last backup, whose
    batches are trained again)."""

    def __init__(self, path: Path, device: str, backend: str | None = None):
        super().__init__()
        self.path, self.device = path, device
        self.backend = backend or keras.backend.backend()
        previous = read_progress(path.parent)
        self.previous = previous.get("wall_time_s", 0.0)
        self.previous_cpu = previous.get("cpu_time_s", 0.0)
        self.previous_devices = previous.get("devices", {})
        self.previous_epochs = previous.get("epochs_trained", 0.0)
        self.start, self.start_cpu = time.time(), time.process_time()

    def devices(self, epochs_trained: float) -> dict[str, dict]:
        """Wall-clock and CPU seconds, the epochs trained and the Keras backends per device, the run's
        ``epochs_trained`` so far given, e.g. ``{"cpu: 2 cores": {"wall_time_s": 60.0, "cpu_time_s": 110.0,
        "epochs_trained": 2, "backends": ["tensorflow"]}}`` (a device recorded by code before the epochs or
        the backends were kept per device has none: what it trained before is not known)."""
        times = {name: dict(spent) for name, spent in self.previous_devices.items()}
        new = {"wall_time_s": 0.0, "cpu_time_s": 0.0, "epochs_trained": 0.0, "backends": []}
        here = times.pop(self.device, new)
        times[self.device] = here  # last: the device that trained the run most recently
        here["wall_time_s"] = round(here["wall_time_s"] + time.time() - self.start, 1)
        here["cpu_time_s"] = round(here["cpu_time_s"] + time.process_time() - self.start_cpu, 1)
        if "epochs_trained" in here:
            here["epochs_trained"] = round(here["epochs_trained"] + epochs_trained - self.previous_epochs, 4)
        if "backends" in here:
            here["backends"] = sorted({*here["backends"], self.backend})
        return times

    @property
    def total(self) -> float:
        return round(self.previous + time.time() - self.start, 1)

    @property
    def total_cpu(self) -> float:
        return round(self.previous_cpu + time.process_time() - self.start_cpu, 1)

    def resumes_at(self, epochs_trained: float) -> None:
        """Where the restored backup resumes (e.g. 2.3), which may lie before the one ``progress.json``
        recorded (a fallback to the previous backup): this device's epochs count from there."""
        self.previous_epochs = epochs_trained

    def write(self, epochs_trained: float) -> None:
        """Record the time so far and the ``epochs_trained`` in it (e.g. 2.5: half of epoch 3 done)."""
        devices = self.devices(epochs_trained)
        times = {"wall_time_s": self.total, "cpu_time_s": self.total_cpu, "devices": devices}
        files.write_json(self.path, {**times, "epochs_trained": round(epochs_trained, 4)})

    def on_epoch_end(self, epoch, logs=None):
        self.write(epoch + 1)


def save_weights(model: keras.Model, path: Path, durable: bool = False, consequence: str = "") -> None:
    """``model.save_weights(path)``, whole or not at all: first the disk's free space and the file-size limit
    are checked against the file's size (estimated from the variables), then it is written to a temporary
    file and renamed (:func:`relu_ratio.files.atomic_file`; ``durable``: ``fsync`` first). h5py fails
    badly when a disk fills part-way (a flood of "Exception ignored" tracebacks, then a crash at exit when
    the failed file is freed), so what it prints meanwhile is dropped and the failed file is freed before
    the one error is raised (a successful write prints what it printed).

    Raises:
        OSError: naming ``path``, the reason (no space, file too large...) and ``consequence`` (what was
            kept, what to do); its ``errno`` is the cause's.
    """
    optimizer = getattr(model, "optimizer", None)  # an uncompiled model has none
    variables = list(model.weights) + list(getattr(optimizer, "variables", None) or [])
    size = sum(int(np.prod(v.shape)) * _itemsize(v.dtype) for v in variables)
    printed = io.StringIO()
    try:
        files.ensure_room(path, size + 4096 * len(variables) + (1 << 16))  # h5py's overhead, generously
        with contextlib.redirect_stderr(printed), files.atomic_file(path, durable) as tmp:
            model.save_weights(tmp, overwrite=True)
    except OSError as error:
        what = error.strerror if error.filename else os.strerror(error.errno) if error.errno else str(error)
        failure = OSError(f"cannot write {path}: {what}" + (f"; {consequence}" if consequence else ""))
        failure.errno = error.errno
    else:
        sys.stderr.write(printed.getvalue())
        return
    with contextlib.redirect_stderr(io.StringIO()):  # the error (and its frames) are gone: free the file
        gc.collect()
    raise failure


def _itemsize(dtype) -> int:
    """Bytes per value of a variable's dtype (8 where numpy does not know it, e.g. ``bfloat16``: an upper
    bound is what a room check needs)."""
    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 8
