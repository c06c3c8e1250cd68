"""Training: recipe schedules, the CLI on JPEG CIFAR-10, kill-and-resume, distribution, bad settings,
divergence, backups that are damaged or killed while written."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import logged_epochs, start_module, write_image_folder
from helpers import REAL, CtrlCLostAfterTheFirstBatch, Steps, full_disk, lock_of, lose_ctrl_c

from relu_ratio import data, files, folder_lock, models, train
from relu_ratio.provenance import source_commit
from relu_ratio.train.record import RunFileError, metric_column, read_progress
from relu_ratio.zoo.entry import METADATA_FILE

TINY = ["--model", "resnet8_21", "--train-subset", "256", "--test-subset", "128", "--batch-size", "32",
        "--verbose", "2"]  # fmt: skip


def test_paper_schedule_drops_at_half_three_quarters_and_seven_eighths():
    config = train.TrainConfig(epochs=8).resolved()
    schedule = train.learning_rate(config, steps_per_epoch=10)
    lrs = [float(schedule(step)) for step in (0, 39, 40, 59, 60, 69, 70, 79)]
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4], rtol=1e-5)
    assert (config.batch_size, config.epochs, config.momentum, config.nesterov) == (64, 8, 0.9, True)


def test_fast_schedule_warms_up_then_decays():
    config = train.TrainConfig(recipe="fast", epochs=4).resolved()
    schedule = train.learning_rate(config, steps_per_epoch=10)
    assert float(schedule(0)) < float(schedule(10)) == pytest.approx(0.1)
    assert float(schedule(39)) < 0.01
    assert (config.label_smoothing, config.weight_decay) == (0.0, 5e-4)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_a_warm_up_shorter_than_one_step_still_warms_up_one_step(schedule):
    config = train.TrainConfig(recipe="fast", epochs=4, schedule=schedule, warmup_epochs=0.01).resolved()
    lr = train.learning_rate(config, steps_per_epoch=10)
    assert float(lr(0)) == pytest.approx(0.01) and float(lr(1)) == pytest.approx(0.1, rel=0.01)


@pytest.mark.backend
def test_linear_schedule_warms_up_then_falls_to_zero_in_a_straight_line():
    config = train.TrainConfig(recipe="fast", epochs=4, schedule="linear").resolved()
    schedule = train.learning_rate(config, steps_per_epoch=10)
    lrs = [float(schedule(step)) for step in (0, 5, 10, 25, 40, 45)]
    np.testing.assert_allclose(lrs, [0.01, 0.055, 0.1, 0.05, 0.0, 0.0], atol=1e-6)


@pytest.mark.backend
def test_ema_validates_and_saves_the_averaged_weights_and_backs_up_the_raw_ones(folder, tmp_path):
    """One epoch with --ema: the final and the best-epoch weights are the average (the validated ones), the
    backup keeps the raw weights beside their average (so a resume continues both)."""
    import h5py

    from relu_ratio import models

    def first_kernel(path):
        with h5py.File(path) as f:
            return f["layers/conv2d/vars/0"][()]

    kernels = {}
    for ema in (None, 0.5):
        out = tmp_path / f"ema-{ema}"
        train.run(train.TrainConfig(model="resnet8_21", dataset=str(folder), out=str(out), epochs=1,
                                    batch_size=4, verbose=0, ema=ema, mixed_precision="off"))  # fmt: skip
        record = json.loads((out / "backup" / "training_metadata.json").read_text())
        kernels[ema] = {name: first_kernel(path) for name, path in [
            ("final", out / "model.weights.h5"), ("best", out / "best.weights.h5"),
            ("backup", out / "backup" / record["weights"])]}  # fmt: skip
    config = train.TrainConfig(model="resnet8_21", recipe="fast", ema=0.5).resolved()
    optimizer = train.compile_for(models.build("resnet8_21"), config, steps_per_epoch=4).optimizer
    assert optimizer.use_ema and optimizer.ema_momentum == 0.5
    plain, averaged = kernels[None], kernels[0.5]
    np.testing.assert_allclose(plain["final"], plain["backup"], rtol=1e-6)  # no EMA: final = last step
    np.testing.assert_allclose(averaged["backup"], plain["backup"], rtol=1e-5)  # the same raw training
    assert not np.allclose(averaged["final"], averaged["backup"])  # the final weights are the average
    np.testing.assert_allclose(averaged["best"], averaged["final"], rtol=1e-6)  # the one validation scored


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"recipe": "slow"}, "recipe must be one of"),
     ({"recipe": "fats"}, r"must be one of \[.fast., .paper.\]; received .fats. \(did you mean .fast.\?\)"),
     ({"epochs": 0}, "epochs must be >= 1"),
     ({"model": "preact165_32"}, "Nearest valid depths: 164, 173"),
     ({"schedule": "one-cycle"}, r"schedule must be one of \['step', 'cosine', 'linear'\]"),
     ({"mixed_precision": "fp8"}, "mixed_precision must be"), ({"ema": 1.0}, r"ema must be .* in \(0, 1\)"),
     ({"ema": 0.0}, "ema must be"), ({"ema": float("nan")}, "ema must be"), ({"ema": True}, "ema must be"),
     ({"lr": -1.0}, r"lr must be a finite number > 0; received -1"), ({"lr": float("nan")}, "lr must be"),
     ({"momentum": float("nan")}, r"momentum must be a finite number in \[0, 1\)"),
     ({"label_smoothing": 2.0}, "label_smoothing must be"), ({"weight_decay": float("inf")}, "weight_decay"),
     ({"recipe": "fast", "warmup_epochs": 100.0, "epochs": 1}, r"warmup_epochs .* in \[0, epochs = 1\]"),
     ({"schedule": "step", "warmup_epochs": 2.0}, r"warmup_epochs \(2.0\) needs a schedule that warms up"),
     ({"recipe": "paper", "warmup_epochs": -1.0}, r"warmup_epochs must be a finite number in \[0, epochs"),
     ({"recipe": "paper", "warmup_epochs": float("nan")}, "warmup_epochs must be a finite number"),
     ({"holdout": 0}, "holdout must be >= 1"), ({"train_subset": -5}, "train_subset must be >= 1"),
     ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*32 - 1\]; received -1"),
     ({"seed": 2**32}, "seed must"),
     ({"out": " "}, "out must name the run's folder; received ' '"),
     ({"dataset": "cifar10", "data_dir": " "}, r"data_dir must name a folder .*; received ' ' \(leave"),
     ({"dataset": ""}, r"dataset must be a tensorflow-datasets name .* received '' \(for the current folder"),
     ({"batch_size": np.int64(128)}, r"batch_size must be an integer .*\(a numpy value: .* a Python int"),
     ({"dataset": "my_images", "data_dir": "/t"}, r"data_dir \('/t'\) is where tensorflow-datasets .*Drop")],
)  # fmt: skip
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.TrainConfig(**kwargs).resolved()


def test_the_step_schedule_runs_without_the_recipes_warm_up_and_records_so():
    """``--recipe fast --schedule step``: fast's 1-epoch warm-up belongs to its cosine schedule; the step
    schedule has none, so the run records 0 rather than a warm-up it never had."""
    config = train.TrainConfig(recipe="fast", schedule="step", epochs=4).with_recipe()
    assert config.warmup_epochs == 0.0
    schedule = train.learning_rate(config, steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(0.1) and float(schedule(39)) == pytest.approx(1e-4)


@pytest.mark.slow
def test_cli_trains_one_epoch_on_jpeg_cifar10(shared_data, decoded_data_home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    out = tmp_path / "run"
    assert train.main([*TINY, "--dataset", shared_data, "--epochs", "1", "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    result = json.loads((out / "result.json").read_text())
    assert result["epochs_completed"] == 1 and 0 <= result["test_top1"] <= 1
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["kwargs"]["classes"] == 10 and "relu_ratio.train" in config["command"]
    expected = {"model.weights.h5", "best.weights.h5", "metrics.csv", "tensorboard", "result.json"}
    assert {p.name for p in out.iterdir()} >= expected
    assert logged_epochs(out) == [0]


def test_a_finished_run_registers_in_the_zoo(image_folder, tmp_path, monkeypatch):
    """train -> register -> load: the run's model.weights.h5 holds the model alone, as the zoo needs."""
    from relu_ratio import zoo

    write_image_folder(image_folder, split="train")
    out = tmp_path / "run"
    train.run(train.TrainConfig(model="resnet8_21", dataset=str(image_folder), out=str(out), epochs=1,
                                batch_size=4, verbose=0, mixed_precision="mixed_bfloat16"))  # fmt: skip
    monkeypatch.setenv("RELU_RATIO_ZOO", str(tmp_path / "store"))
    entry = zoo.register(out)
    assert entry.training["epochs"] == 1 and entry.metrics["top1"] >= 0
    assert entry.training["precision"] == "mixed_bfloat16" and entry.training["cpu_time_s"] > 0
    assert entry.training["commit"] == source_commit()
    assert keras.mixed_precision.global_policy().name == "float32"  # run() restores the policy
    model = zoo.load("resnet8_21")
    assert model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0).shape == (2, 3)


@pytest.mark.slow
def test_a_run_killed_mid_epoch_under_one_backend_resumes_under_the_other_after_the_same_epochs(
    tmp_path, monkeypatch, capsys
):
    """Two checks on one killed training process (each process start costs 10-20 s; these were two tests):
    a run killed mid-epoch, after a step backup, resumes with the same command (taking over the dead
    process's lock) and ends after the epochs it was given; and it does so under the other backend than the
    one it started under. A kill under this backend is resumed in
    :func:`test_killed_while_writing_backups_the_same_command_resumes`."""
    folder = write_image_folder(tmp_path / "ds", split="train", per_class=40)
    write_image_folder(folder, split="test", per_class=4)
    out = tmp_path / "run"
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    args = ["--model", "resnet8_21", "--dataset", str(folder), "--epochs", "4", "--batch-size", "8",
            "--backup-every", "3", "--verbose", "2", "--out", str(out)]  # fmt: skip
    env = {"RELU_RATIO_HOME": str(tmp_path / "home"), "KERAS_BACKEND": other}
    proc = start_module("relu_ratio.train", args, env=env, start_new_session=True)
    meta = out / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill mid-epoch 2, after a step backup
        if (
            meta.exists()
            and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1
            and (json.loads(meta.read_text() or "{}").get("batch", 0) > 0)
        ):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = logged_epochs(out)
    assert 1 <= len(before) < 4, "the run was not killed part-way"
    monkeypatch.setenv("RELU_RATIO_HOME", env["RELU_RATIO_HOME"])
    with pytest.warns(UserWarning, match=f"taking over the lock of process {proc.pid}"):
        assert train.main(args) == 0  # the same command again, in this process, under this backend
    log = capsys.readouterr().out
    assert f"Epoch {len(before) + 1}/4" in log and "Epoch 1/4" not in log, log
    assert logged_epochs(out) == [0, 1, 2, 3]
    result = json.loads((out / "result.json").read_text())
    assert result["epochs_completed"] == 4 and result["backend"] == keras.backend.backend()
    assert np.isfinite(result["test_top1"])


def test_resume_with_other_settings_is_refused(finished_run, tmp_path):
    base = _copy_of(finished_run, tmp_path / "r")
    with pytest.raises(ValueError, match=r"different config .*'lr'"):
        train.run(train.TrainConfig(**{**base.__dict__, "lr": 0.5}))


class _CutOff(keras.callbacks.Callback):
    """Stops a run as a kill right after an epoch's backup would."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.backend
@pytest.mark.parametrize("ema", [None, 0.9], ids=["rest-of-the-epoch", "ema-whole-epoch"])
def test_a_run_cut_off_mid_epoch_trains_only_the_rest_of_that_epoch(
    folder, tmp_path, monkeypatch, capsys, ema
):
    """With --ema the cut-off epoch is trained whole again (a fit ending with the rest of the epoch would
    fold the averaged weights into the model)."""
    from relu_ratio.train import fit

    make, commit, steps = fit.callbacks_lib.make, train.callbacks.Backup._commit, Steps()

    def commit_then_cut(backup, record):  # cut off right after the backup 4 batches into epoch 2
        commit(backup, record)
        if (record["epoch"], record["batches_done"]) == (1, 4):
            raise KeyboardInterrupt

    monkeypatch.setattr(fit.callbacks_lib, "make", lambda *args: [steps, *make(*args)])  # counts first
    monkeypatch.setattr(train.callbacks.Backup, "_commit", commit_then_cut)
    config = _tiny(folder, tmp_path / "run", epochs=3, batch_size=4, backup_every=2, verbose=2, ema=ema)
    with pytest.raises(KeyboardInterrupt):
        train.run(config)
    assert steps.count == 6 + 4 and logged_epochs(tmp_path / "run") == [0]
    clock = read_progress(tmp_path / "run")  # written with the backup: the time of the 4 batches it kept
    assert clock["epochs_trained"] == pytest.approx(1 + 4 / 6 if ema is None else 1, abs=1e-4)  # --ema: again
    assert clock["wall_time_s"] > 0 and clock["devices"]
    capsys.readouterr()
    monkeypatch.setattr(train.callbacks.Backup, "_commit", commit)
    result = train.run(config)  # 6 steps an epoch
    log = capsys.readouterr().out
    assert "Epoch 2/3" in log and "Epoch 1/3" not in log, log
    if ema is None:  # the 2 batches left of epoch 2, then epoch 3: no batch trained twice
        assert steps.count == 3 * 6 and "epoch 2 resumes after 4 of its 6 batches" in log
        # and the cut-off epoch's row averages all 6 batches (the 4 before the cut kept by the backup)
        train.run(dataclasses.replace(config, out=str(tmp_path / "uncut"), verbose=0))
        _assert_same_rows(tmp_path / "run", tmp_path / "uncut", epochs=3, rtol=1e-4)
    else:
        assert steps.count == 3 * 6 + 4 and "resumes after" not in log
    assert logged_epochs(tmp_path / "run") == [0, 1, 2] and result["epochs_completed"] == 3


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost interrupt
def test_ctrl_c_stops_a_run_even_where_its_keyboard_interrupt_is_lost(
    folder, tmp_path, monkeypatch, default_sigint
):
    from relu_ratio.train import fit

    make, steps, handler = fit.callbacks_lib.make, Steps(), signal.getsignal(signal.SIGINT)
    lost = CtrlCLostAfterTheFirstBatch()
    monkeypatch.setattr(fit.callbacks_lib, "make", lambda *args: [*make(*args), lost, steps])
    config = _tiny(folder, tmp_path / "run", epochs=3, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        train.run(config)
    assert steps.count == 1 and not (tmp_path / "run" / "result.json").exists()  # stopped at the next batch
    assert signal.getsignal(signal.SIGINT) is handler  # put back


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_lost_after_the_last_batch_still_stops_and_an_ignored_or_own_sigint_is_left_alone(
    default_sigint,
):
    stop = train.callbacks.StopOnCtrlC()
    for disposition in (signal.SIG_IGN, lambda signum, frame: None):  # a script's background job; a caller's
        signal.signal(signal.SIGINT, disposition)
        stop.on_train_begin()
        assert signal.getsignal(signal.SIGINT) is disposition
        stop.on_train_end()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop.on_train_begin()
    stop.on_train_begin()  # a second fit inside the first: the handler is not taken for Python's
    lose_ctrl_c()  # after the last batch, e.g. while the last epoch's backup is written
    with pytest.raises(KeyboardInterrupt):
        stop.on_train_end()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _assert_same_rows(cut: Path, uncut: Path, epochs: int, rtol: float) -> None:
    """The ``metrics.csv`` of a run cut off and resumed has the uncut run's rows (``epochs`` of them)."""
    columns = (uncut / "metrics.csv").read_text().splitlines()[0].split(",")
    assert (cut / "metrics.csv").read_text().splitlines()[0].split(",") == columns and "accuracy" in columns
    for column in columns:
        got, want = metric_column(cut, column), metric_column(uncut, column)
        assert len(got) == len(want) == epochs, column
        np.testing.assert_allclose(got, want, rtol=rtol, err_msg=column)


def test_a_run_cut_off_on_one_machine_finishes_on_another_with_the_same_data(folder, tmp_path, monkeypatch):
    from relu_ratio.train import fit

    make = fit.callbacks_lib.make

    def make_then_cut(out, config, device):
        return [*make(out, config, device), _CutOff()]

    out = tmp_path / "r"
    there = train.TrainConfig(model="resnet8_11", dataset=str(folder), out=str(out), recipe="fast", epochs=2,
                              batch_size=8, verbose=0, backup_every=1_000_000)  # fmt: skip
    monkeypatch.setattr(fit, "device", lambda: "gpu: lent x1")
    monkeypatch.setattr(fit.callbacks_lib, "make", make_then_cut)
    with pytest.raises(KeyboardInterrupt):
        train.run(there)
    monkeypatch.setattr(fit.callbacks_lib, "make", make)
    assert logged_epochs(out) == [0] and not (out / "result.json").exists()

    other = write_image_folder(tmp_path / "other", split="train", per_class=5)
    write_image_folder(other, split="test")
    with pytest.raises(ValueError, match=r"on other data than --dataset .*; train_images: 24, 15 \(as"):
        train.run(train.TrainConfig(**{**there.__dict__, "dataset": str(other)}))

    moved = tmp_path / "elsewhere" / folder.name  # the same images at another path; another backup interval
    moved.parent.mkdir()
    os.rename(folder, moved)
    monkeypatch.setattr(fit, "device", lambda: "cpu: 2 cores")
    monkeypatch.setattr(fit, "cpu_has_bf16_instructions", lambda: False)  # "auto" would now be float32
    result = train.run(train.TrainConfig(**{**there.__dict__, "dataset": str(moved), "backup_every": 200}))
    assert result["epochs_completed"] == 2 and logged_epochs(out) == [0, 1]
    assert result["precision"] == "mixed_bfloat16"  # "auto" on the GPU it started on: kept on the CPU
    assert result["device"] == "gpu: lent x1 + cpu: 2 cores"
    assert set(result["devices"]) == {"gpu: lent x1", "cpu: 2 cores"}
    assert [d["epochs_trained"] for d in result["devices"].values()] == [1, 1]  # each device's own pace
    spent = sum(d["wall_time_s"] for d in result["devices"].values())
    assert spent == pytest.approx(result["wall_time_s"], abs=0.2)
    assert json.loads((out / "config.json").read_text())["dataset"] == str(moved)


def test_resumed_data_is_compared_to_the_last_bits_of_mean_and_std_and_exactly_otherwise(tmp_path):
    from relu_ratio.train import fit

    started = {"dataset": "a", "dataset_info": {"name": "x", "class_names": ["cat"], "mean": [125.0],
               "std": [62.5]}, "train_images": 10, "test_images": 4}  # fmt: skip
    near = {"dataset_info": {**started["dataset_info"], "std": [62.5 * (1 + 1e-12)]}, "train_images": 10}
    fit._check_same_data(tmp_path, started, near, "b")
    for changed in ({"std": [62.6]}, {"class_names": ["dog"]}, {"name": "y"}):
        found = {"dataset_info": {**started["dataset_info"], **changed}, "train_images": 10}
        key, value = next(iter(changed.items()))
        old, new = (re.escape(repr(v)) for v in (started["dataset_info"][key], value))
        named = rf"--dataset 'b': dataset_info.{key}: {old}, {new} \(as 'a' gave"
        with pytest.raises(ValueError, match=rf"started on other data than {named}"):
            fit._check_same_data(tmp_path, started, found, "b")
    with pytest.raises(ValueError, match="other data"):
        fit._check_same_data(tmp_path, started, {"test_images": 5}, "b")


@pytest.mark.parametrize(
    "text, complaint",
    [("{not json", "is not valid JSON"), ("[1, 2]", "holds a JSON list, not an object"),
     ("", "is empty"), ("[" * 100_000, "is nested deeper than JSON's reader goes")],
)  # fmt: skip
def test_a_corrupt_run_config_is_named_and_left_alone(image_folder, tmp_path, text, complaint):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text(text)
    said = (rf"config.json: {complaint}.*; it cannot be read as a run's config: delete {re.escape(str(out))} "
            "or choose another --out")  # fmt: skip
    with pytest.raises(ValueError, match=said):
        train.run(train.TrainConfig(model="resnet8_11", dataset=str(image_folder), out=str(out)))
    assert (out / "config.json").read_text() == text


@pytest.mark.parametrize(
    ("files", "complaint"),
    [([METADATA_FILE, "model.weights.h5", "metrics.csv"], rf"is a zoo entry \(it holds {METADATA_FILE}\)"),
     (["metrics.csv", "backup"], "holds backup, metrics.csv but no run's config.json.*overwrite metrics"),
     (["train", "test", "notes.txt"], r"holds notes.txt, test, train but no run's config.json.*among them")],
)  # fmt: skip
def test_a_folder_of_other_files_a_run_would_overwrite_is_refused(image_folder, tmp_path, files, complaint,
                                                                   monkeypatch):
    out = tmp_path / "entry"
    out.mkdir()
    for name in files:
        (out / name).mkdir() if "." not in name else (out / name).write_text(name)
    monkeypatch.setattr(data, "load", lambda *args, **kwargs: pytest.fail("loaded the data first"))
    with pytest.raises(ValueError, match=f"{complaint}.*another --out"):  # before the data is loaded
        train.run(train.TrainConfig(model="resnet8_11", dataset=str(image_folder), out=str(out)))
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    assert all((out / name).read_text() == name for name in files if "." in name)


def test_the_packages_own_logs_in_a_new_run_folder_are_not_another_s_files(tmp_path):
    """training/gpu_pair.py logs into ``<run>/train.log`` before the run starts; a series may leave a
    ``failed.json`` of an attempt that failed before its config: neither makes the folder another's."""
    from relu_ratio.train.fit import RUN_LOGS, _check_no_foreign_files

    for name in (*RUN_LOGS, ".lock", ".DS_Store"):
        (tmp_path / name).write_text("")
    _check_no_foreign_files(tmp_path)  # no error


@pytest.mark.parametrize(
    ("subset", "message"),
    [({"train_subset": 25}, "train_subset 25 is more than the 24 images of the training split; give at most"),
     ({"test_subset": 13}, "test_subset 13 is more than the 12 images of the test split")],
)  # fmt: skip
def test_a_subset_larger_than_its_split_is_refused_before_the_folder(folder, tmp_path, subset, message):
    with pytest.raises(ValueError, match=message):
        train.run(_tiny(folder, tmp_path / "r", **subset))
    assert not (tmp_path / "r").exists()


def test_unwritable_output_directory_is_named(image_folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot write to the output directory"):
        train.run(train.TrainConfig(model="resnet8_11", dataset=str(image_folder), out=str(blocker / "x")))


def test_a_folder_whose_writes_fail_whatever_its_permissions_say_is_named(tmp_path, monkeypatch):
    """/proc, a read-only file system, root refused: os.access says writable, making a folder there fails."""
    import errno
    import tempfile

    def read_only(**_):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(ValueError, match=rf"cannot write to the output directory {tmp_path}/x: {tmp_path} is "
                                         r"not writable \(Read-only file system\)\."):  # fmt: skip
        files.check_writable(tmp_path / "x", "output directory")
    assert list(tmp_path.iterdir()) == []


def test_a_batch_larger_than_the_training_images_is_refused_before_the_run_folder(folder, tmp_path, capsys):
    argv = ["--model", "resnet8_21", "--dataset", str(folder), "--out", str(tmp_path / "run"),
            "--epochs", "1", "--batch-size", "100", "--train-subset", "20"]  # fmt: skip
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "batch_size 100 is more than the 20 training images (the training split); give at most 20" in err
    assert not (tmp_path / "run").exists()


SCRIPT = """
import os, sys
backend = os.environ["KERAS_BACKEND"]
if backend == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import dataclasses
from relu_ratio import train
config = train.TrainConfig(model="resnet8_11", dataset=sys.argv[1], out=sys.argv[2], epochs=2, batch_size=4,
                           backup_every=2, distribute=True, verbose=0)  # fmt: skip
commit = train.callbacks.Backup._commit
def commit_then_cut(backup, record):  # cut off right after the backup 4 batches into epoch 2 (of 6)
    commit(backup, record)
    if (record["epoch"], record["batches_done"]) == (1, 4):
        raise KeyboardInterrupt
train.callbacks.Backup._commit = commit_then_cut
try:
    train.run(config)
except KeyboardInterrupt:
    train.callbacks.Backup._commit = commit
else:
    raise AssertionError("the run was not cut off")
result = train.run(config)
print("replicas", result["replicas"], "epochs", result["epochs_completed"])
train.run(dataclasses.replace(config, out=sys.argv[3]))
"""


def _cut_and_uncut(proc, tmp_path) -> None:
    """:data:`SCRIPT`'s checks: it ran, on two replicas, and the run cut off and resumed logged what the
    uncut one did."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "replicas 2 epochs 2" in proc.stdout, proc.stdout
    _assert_same_rows(tmp_path / "r", tmp_path / "uncut", epochs=2, rtol=1e-3)  # val_loss differs by ~3e-5


@pytest.mark.slow
def test_distributed_training_on_two_virtual_cpus(image_folder, tmp_path):
    """Data-parallel over two virtual CPUs with TensorFlow's MirroredStrategy, cut off mid-epoch and
    resumed, against the same run uncut (JAX's DataParallel: in
    :func:`test_jax_without_tensorflow_loads_the_zoo_trains_and_distributes_on_two_virtual_cpus`)."""
    write_image_folder(image_folder, split="train", per_class=8)  # 6 steps of 4 images an epoch
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    runs = [str(tmp_path / "r"), str(tmp_path / "uncut")]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(image_folder), *runs], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    _cut_and_uncut(proc, tmp_path)


def test_user_script_path(image_folder):
    """The README's own-script path: relu_ratio.data + train.compile_for + model.fit."""
    from relu_ratio import data, models

    split = data.load(image_folder, "test")
    config = train.TrainConfig(recipe="fast", epochs=1, batch_size=4).resolved()
    info = split.info
    model = models.build("resnet8_21", classes=info.num_classes, normalization=(info.mean, info.std))
    batches = data.batches(split, config.batch_size, augment=True, one_hot=True)
    train.compile_for(model, config, steps_per_epoch=len(batches))
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_run_takes_a_train_config_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = (({"model": "resnet8_11"}, r"dict: TrainConfig\(\*\*settings\)"), ("resnet8_11", "str"))
    for given, said in cases:
        with pytest.raises(TypeError, match=rf"run takes a relu_ratio.train.TrainConfig .*received {said}"):
            train.run(given)  # was AttributeError: 'dict' object has no attribute 'resolved'
    assert list(tmp_path.iterdir()) == []


def test_compile_for_resolves_the_config_and_names_what_it_cannot_use(monkeypatch):
    from relu_ratio import models

    model = models.build("resnet8_21")
    unresolved = train.TrainConfig(model="my_net", recipe="fast", epochs=3)  # lr... from the recipe; a name
    # that is no relu_ratio network: compiling uses none of the run's settings
    assert train.compile_for(model, unresolved, steps_per_epoch=np.int64(4)).optimizer.momentum == 0.9
    with pytest.raises(TypeError, match=r"compile_for takes a relu_ratio.train.TrainConfig .*received dict"):
        train.compile_for(model, {"recipe": "fast"}, steps_per_epoch=4)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match=f"steps_per_epoch must be an integer >= 1 .*received {bad}"):
            train.compile_for(model, unresolved, steps_per_epoch=bad)
    # len(batches) is no example of steps per call
    with pytest.raises(ValueError, match=r"steps_per_execution must be an integer >= 1; received 0\.$"):
        train.compile_for(model, unresolved, steps_per_epoch=4, steps_per_execution=0)
    # the config's steps per call are taken (they were ignored: 1); a precision the model lacks is named
    fast = dataclasses.replace(unresolved, steps_per_execution=4, mixed_precision="mixed_bfloat16")
    named = (r"mixed_precision='mixed_bfloat16' is not applied by compile_for: the model was built in "
             r"'float32'. Build it after keras.mixed_precision.set_global_policy\('mixed_bfloat16'\)")
    with pytest.warns(UserWarning, match=named):
        assert train.compile_for(model, fast, steps_per_epoch=4).steps_per_execution == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the precision the model has, or none asked for: no warning
        for precision in ("auto", "off"):
            again = dataclasses.replace(fast, mixed_precision=precision)
            assert train.compile_for(model, again, 4, steps_per_execution=2).steps_per_execution == 2
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")  # refused at once, not once fit starts
    with pytest.raises(ValueError, match=r"steps_per_execution must be 1 on the torch backend .*received 2"):
        train.compile_for(model, unresolved, 4, steps_per_execution=2)


@pytest.mark.backend
def test_top5_ranks_tied_scores_by_class_index_as_the_zoo_does():
    """A collapsed network (saturated softmax: one class ahead, nine tied) recorded a test top-5 of 100.0:
    Keras' TopKCategoricalAccuracy, which ``compile_for`` compiled as ``top5``, counted every class tied with
    the fifth as in the top 5. ``top5`` now ranks ties by class index, as ``zoo.registry.accuracy`` does
    (50 % for one image of each class), also on mixed bfloat16's outputs."""
    from relu_ratio.zoo import registry

    images = np.zeros((10, 32, 32, 3), "uint8")
    labels = np.arange(10)
    split = data.Split(images, labels, data.DatasetInfo("ten", tuple("abcdefghij"), (0.0,) * 3, (1.0,) * 3))
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = keras.Sequential([
                keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10, "softmax", kernel_initializer="zeros",
                                   bias_initializer=keras.initializers.Constant([1.0] + [0.0] * 9)),
            ])  # fmt: skip: class 0 scored ahead, the nine others tied, whatever the image
            train.compile_for(model, train.TrainConfig(recipe="fast", epochs=1), steps_per_epoch=1)
            scores = model.evaluate(images, np.eye(10, dtype="float32")[labels], verbose=0, return_dict=True)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        assert registry.accuracy(model, split) == {"top1": 10.0, "top5": 50.0}
        assert (scores["accuracy"], scores["top5"]) == pytest.approx((0.1, 0.5)), (policy, scores)


@pytest.mark.backend
def test_compile_for_trains_a_logits_head_on_logits_and_refuses_a_head_it_cannot():
    from relu_ratio import models

    config = train.TrainConfig(recipe="fast", epochs=1)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    labels = np.eye(10, dtype="float32")[[0, 1, 2, 3]]
    logits = train.compile_for(models.build("resnet8_21", classifier_activation=None), config, 1)
    expected = keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(
        labels, logits.predict(images, verbose=0), from_logits=True)).mean()  # fmt: skip
    assert logits.evaluate(images, labels, verbose=0)[0] == pytest.approx(expected, rel=1e-3)
    heads = (({"classifier_activation": "sigmoid"}, "ends in Dense with activation 'sigmoid'"),
             ({"include_top": False, "pooling": "avg"}, "ends in GlobalAveragePooling2D"))  # fmt: skip
    for kwargs, said in heads:
        with pytest.raises(ValueError, match=f"softmax classifier .*{said}"):
            train.compile_for(models.build("resnet8_21", **kwargs), config, 1)


NO_TF = """
import importlib.abc, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):  # as on the GPU machine: TensorFlow is not installed
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in ("tensorflow", "tensorflow_datasets", "tensorboard"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTensorFlow())
from relu_ratio import zoo  # first: the zoo loads an entry without TensorFlow (was test_zoo's own process)
model = zoo.load(sys.argv[4])
print("zoo", zoo.list(), model.output_shape)
from relu_ratio import train
result = train.run(train.TrainConfig(model="resnet8_21", dataset=sys.argv[1], out=sys.argv[5], epochs=1,
                                     batch_size=4, verbose=0))
assert "tensorflow" not in sys.modules
print("trained", result["backend"], result["epochs_completed"], "replicas", result["replicas"])
# Then SCRIPT: data-parallel over the two virtual CPUs of XLA_FLAGS (second: keras' distribution stays set),
# cut off, resumed and run uncut, still without TensorFlow, as on the GPU machine.
""" + SCRIPT + """
assert "tensorflow" not in sys.modules
"""


@pytest.mark.slow
def test_jax_without_tensorflow_loads_the_zoo_trains_and_distributes_on_two_virtual_cpus(
    toy_zoo, image_folder, tmp_path
):
    """One JAX process checks three things (each process start costs 10-20 s): a zoo entry loads, and a run
    trains, without TensorFlow (as on the GPU machine); and JAX's data-parallel run over two virtual CPUs,
    cut off mid-epoch and resumed, logs what the same run uncut does (:data:`SCRIPT`). A JAX run cut off
    with TensorFlow installed (its TensorBoard callback closed at the cut) is the JAX pass's
    :func:`test_a_run_cut_off_mid_epoch_trains_only_the_rest_of_that_epoch`."""
    from relu_ratio import zoo

    write_image_folder(image_folder, split="train", per_class=8)  # 6 steps of 4 images an epoch
    two_cpus = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"  # and conftest's
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": two_cpus}
    runs = [str(tmp_path / "r"), str(tmp_path / "uncut"), REAL, str(tmp_path / "one")]
    proc = subprocess.run([sys.executable, "-c", NO_TF, str(image_folder), *runs], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    _cut_and_uncut(proc, tmp_path)
    assert f"zoo {zoo.list()} (None, {zoo.info(REAL).classes})" in proc.stdout, proc.stdout
    assert "trained jax 1 replicas 1" in proc.stdout, proc.stdout
    assert "no TensorBoard logs" in proc.stdout


def test_a_run_resumes_with_the_recipe_values_it_started_with(finished_run, tmp_path, tmp_home):
    """A recipe's defaults may change between releases; a run started earlier keeps its own values."""
    started = _copy_of(finished_run, tmp_path / "run")  # its command leaves the recipe's values unset
    out, argv = Path(started.out), _argv(started)
    assert "--weight-decay" not in argv and "--label-smoothing" not in argv
    config = json.loads((out / "config.json").read_text())
    config["weight_decay"], config["label_smoothing"] = 1e-4, 0.1  # what `fast` was when it started
    (out / "config.json").write_text(json.dumps(config))
    (out / "result.json").unlink()  # cut off before the end
    assert train.main(argv) == 0
    assert json.loads((out / "config.json").read_text())["weight_decay"] == 1e-4


def test_auto_precision_is_bfloat16_where_the_cpu_has_bfloat16_instructions(tmp_path, monkeypatch):
    from relu_ratio.train import fit

    with_bf16, without = tmp_path / "bf16", tmp_path / "plain"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_vnni\nbugs\t\t: amx_bf16\n")
    assert fit.cpu_has_bf16_instructions(str(with_bf16))
    assert not fit.cpu_has_bf16_instructions(str(without))  # the flag must be on the flags line
    assert not fit.cpu_has_bf16_instructions(str(tmp_path / "missing"))
    monkeypatch.setattr(fit, "device", lambda: "cpu: 2 cores")
    monkeypatch.setattr(fit, "cpu_has_bf16_instructions", lambda: True)
    measured = keras.backend.backend() in ("tensorflow", "torch")  # bfloat16 measured to pay (not JAX)
    assert fit.precision_policy("auto") == ("mixed_bfloat16" if measured else "float32")
    assert [fit.precision_policy("auto", b) for b in ("tensorflow", "jax", "torch")] == [
        "mixed_bfloat16", "float32", "mixed_bfloat16"
    ]
    monkeypatch.setattr(fit, "cpu_has_bf16_instructions", lambda: False)
    assert fit.precision_policy("auto") == "float32"
    assert fit.precision_policy("off") == "float32"
    assert fit.precision_policy("mixed_float16") == "mixed_float16"
    monkeypatch.setattr(fit, "device", lambda: "gpu: NVIDIA H100 80GB HBM3 x1")
    assert fit.precision_policy("auto") == "mixed_bfloat16"


def test_cpu_class_is_the_best_instruction_set_on_the_flags_line(tmp_path, monkeypatch):
    from relu_ratio.train import devices

    def cpu(flags: str, machine: str = "x86_64") -> str:
        path = tmp_path / "cpuinfo"
        path.write_text(f"model name\t: AMD EPYC avx512f\nflags\t\t: {flags}\nbugs\t\t: amx_bf16\n")
        monkeypatch.setattr(devices.platform, "machine", lambda: machine)
        return devices.cpu_class(path)

    assert cpu("fpu sse avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16") == "AMX"
    assert cpu("fpu avx2 avx512f avx512_vnni avx512_bf16") == "AVX512-BF16"
    assert cpu("fpu avx2 avx512f avx512_vnni") == "AVX-512"
    assert cpu("fpu sse avx avx2 fma") == "AVX2"  # the model name and the bugs line are not read
    assert cpu("fpu sse avx") == "other"
    assert cpu("", machine="aarch64") == "arm"
    monkeypatch.setattr(devices.platform, "machine", lambda: "arm64")  # macOS: no /proc/cpuinfo
    assert devices.cpu_class(tmp_path / "missing") == "arm"
    monkeypatch.setattr(devices.platform, "machine", lambda: "x86_64")
    assert devices.cpu_class(tmp_path / "missing") == "other"
    assert set(devices.CPU_CLASSES) == {"AMX", "AVX512-BF16", "AVX-512", "AVX2", "arm", "other"}


def test_is_gpu_reads_each_device_of_a_run_resumed_elsewhere():
    from relu_ratio.train.devices import DEVICE_SEPARATOR, is_gpu

    assert is_gpu("gpu: NVIDIA H100 80GB HBM3 x1") and not is_gpu("cpu: 2 cores") and not is_gpu("")
    assert is_gpu(DEVICE_SEPARATOR.join(["cpu: 2 cores", "gpu: NVIDIA H100 80GB HBM3 x1"]))
    assert not is_gpu("cpu: 2 cores (gpu: none)")  # a device name starts with its platform


def test_source_commit_names_this_checkout_or_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("RELU_RATIO_SOURCE_COMMIT", raising=False)
    commit = source_commit()
    if commit is not None:  # a git checkout (CI clones the repository)
        assert len(commit.removesuffix("+dirty")) == 40
    assert source_commit(tmp_path) is None
    monkeypatch.setenv("RELU_RATIO_SOURCE_COMMIT", "abc123")  # what a copy (the GPU machine's) was made from
    assert source_commit(tmp_path) == source_commit() == "abc123"


# --- hardening: one process per run folder, checked data and settings, damaged files, disk full, Ctrl-C ---


def _tiny(folder, out, **changes) -> train.TrainConfig:
    settings = {"model": "resnet8_11", "dataset": str(folder), "out": str(out), "recipe": "fast", "epochs": 1,
                "batch_size": 8, "verbose": 0, "mixed_precision": "off"}  # fmt: skip
    return train.TrainConfig(**{**settings, **changes})


def _argv(config: train.TrainConfig) -> list[str]:
    return [*shlex.split(train.command_for(config))[3:], "--verbose", "0"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> train.TrainConfig:
    """A finished 2-epoch :func:`_tiny` run, trained once for the tests that read, change or damage a
    finished run's files; each works on its own copy (:func:`_copy_of`)."""
    root = tmp_path_factory.mktemp("finished-run")
    folder = write_image_folder(root / "ds", split="train", per_class=8)
    write_image_folder(folder, split="test", per_class=4)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("RELU_RATIO_HOME", str(root / "home"))
        config = _tiny(folder, root / "run", epochs=2)
        train.run(config)
    return config


def _copy_of(run: train.TrainConfig, out: Path) -> train.TrainConfig:
    """The config of ``run`` for a copy of its folder at ``out``."""
    shutil.copytree(run.out, out)
    return dataclasses.replace(run, out=str(out))


def test_a_run_folder_in_use_by_another_process_is_refused_and_a_dead_ones_lock_taken_over(
    folder, tmp_path, capsys
):
    out = tmp_path / "run"
    out.mkdir()
    config = _tiny(folder, out)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (out / ".lock").write_text(lock_of(holder.pid))
        started = time.time()
        assert train.main(_argv(config)) == 2
        err = capsys.readouterr().err
        assert f"the run folder {out} is in use by process {holder.pid} on {socket.gethostname()}" in err
        assert "running 'python -m relu_ratio.train --out x'" in err  # the holder's command, from its .lock
        assert err.count("\n") == 1 and time.time() - started < 5  # at once: before the data is loaded
        with pytest.raises(folder_lock.FolderInUse, match=f"process {holder.pid}"):
            train.run(config)
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
        (out / ".lock").write_text(lock_of(holder.pid, host="elsewhere"))
        with pytest.raises(folder_lock.FolderInUse, match=r"on elsewhere .*If that process no longer runs on "
                                                    r"elsewhere, delete .*\.lock"):  # fmt: skip
            train.run(config)
    finally:
        holder.kill()
        holder.wait()
    (out / ".lock").write_text(lock_of(holder.pid))  # its process is gone (killed): a stale lock
    with pytest.warns(UserWarning, match=f"taking over the lock of process {holder.pid}"):
        assert train.run(config)["epochs_completed"] == 1
    assert not (out / ".lock").exists()  # released


def test_a_lock_that_cannot_be_written_leaves_no_empty_lock_file(tmp_path, monkeypatch):
    """A full disk at the lock's write left an empty ``.lock``, which every later run read as a lock of
    unknown holder ("in use") until someone deleted it."""

    def full_disk(fd, *args, **kwargs):
        os.close(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", full_disk)
    with pytest.raises(OSError, match="No space left"), folder_lock.locked_folder(tmp_path, "run folder"):
        pass
    monkeypatch.undo()
    assert not (tmp_path / ".lock").exists()
    with folder_lock.locked_folder(tmp_path, "run folder"):
        assert (tmp_path / ".lock").is_file()


@pytest.mark.slow
def test_two_training_processes_on_one_run_folder(folder, tmp_path, capsys):
    """The second (this process) is refused at once (exit 2, naming the folder and the first); the first
    finishes."""
    out = tmp_path / "run"
    args = _argv(_tiny(folder, out, epochs=3, batch_size=4))
    first = start_module("relu_ratio.train", args, env={"RELU_RATIO_HOME": str(tmp_path / "home")})
    deadline = time.time() + 300
    while not (out / ".lock").exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # holding the lock, alive, while the second starts
    try:
        status = train.main(args)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    log = capsys.readouterr().err
    assert status == 2 and f"{out} is in use by process {first.pid}" in log, log
    assert "Traceback" not in log
    log, _ = first.communicate(timeout=600)
    assert first.returncode == 0, log
    assert logged_epochs(out) == [0, 1, 2] and not (out / "failed.json").exists()
    assert not (out / ".lock").exists()


def _split_folder(root, train_classes, test_classes, size=(32, 32), test_size=None):
    write_image_folder(root, split="train", classes=train_classes, per_class=4, size=size)
    return write_image_folder(root, split="test", classes=test_classes, per_class=2, size=test_size or size)


@pytest.mark.parametrize(
    ("train_classes", "test_classes", "complaint"),
    [(("airplane", "cat"), ("cat", "plane"), r"train \['airplane', 'cat'\], test \['cat', 'plane'\]"),
     (("airplane", "cat"), ("airplane", "cat", "dog"), r"only in one: \['dog'\]")],
)  # fmt: skip
def test_splits_with_other_class_names_are_refused_before_the_run_folder_is_made(
    tmp_path, monkeypatch, train_classes, test_classes, complaint
):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    folder = _split_folder(tmp_path / "ds", train_classes, test_classes)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=f"different classes: .*{complaint}"):
        train.run(_tiny(folder, out))
    assert not out.exists()


def test_the_network_is_built_for_the_datasets_image_size(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    folder = _split_folder(tmp_path / "ds", ("cat", "dog"), ("cat", "dog"), size=(40, 24))
    out = tmp_path / "run"
    assert train.run(_tiny(folder, out))["epochs_completed"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["kwargs"]["input_shape"] == [40, 24, 3]
    odd = _split_folder(tmp_path / "odd", ("cat", "dog"), ("cat", "dog"), test_size=(28, 28))
    with pytest.raises(ValueError, match=r"different sizes: \(32, 32, 3\) and \(28, 28, 3\)"):
        train.run(_tiny(odd, tmp_path / "odd-run"))
    tiny = _split_folder(tmp_path / "tiny", ("cat", "dog"), ("cat", "dog"), size=(3, 3))
    with pytest.raises(ValueError, match=r"cannot be trained on: input_shape \(3, 3, 3\) is too small"):
        train.run(_tiny(tiny, tmp_path / "tiny-run"))
    assert not (tmp_path / "odd-run").exists() and not (tmp_path / "tiny-run").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"nesterov": "false"}, r"nesterov must be true or false \(a boolean\); received 'false'"),
     ({"distribute": "no"}, "distribute must be true or false"),
     ({"verbose": 9}, r"verbose must be one of \[0, 1, 2\]; received 9"),
     ({"verbose": True}, "verbose must be an integer; received True"),
     ({"data_dir": 7}, r"data_dir must be a string or None \(null\); received 7"),
     ({"epochs": 3.0}, r"epochs must be an integer or None \(null\); received 3.0"),
     ({"lr": "0.1"}, "lr must be a number or None"), ({"out": None}, "out must be a string"),
     ({"holdout": 100, "test_subset": 50}, "holdout .* and test_subset .* exclude each other")],
)  # fmt: skip
def test_settings_of_the_wrong_type_are_named_with_what_is_valid(changes, message):
    with pytest.raises(ValueError, match=message):
        train.TrainConfig(**{"model": "resnet8_11", **changes}).resolved()
    with pytest.raises(ValueError, match=message):  # train.run checks before it touches anything
        train.run(train.TrainConfig(**{"model": "resnet8_11", "dataset": "no-such-data", **changes}))


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [("progress.json", "[1, 2]", "progress.json: holds a JSON list, not an object"),
     ("progress.json", '{"wall_time_s": ', r"progress.json: is not valid JSON \(Expecting value"),
     ("progress.json", "[" * 100_000, "progress.json: is nested deeper than JSON's reader goes"),
     ("backup/training_metadata.json", "{}", "training_metadata.json: lacks 'epoch', 'batch'.*backup"),
     ("metrics.csv", "epoch,val_accuracy\n0,0.5\n1,oops\n", "metrics.csv: line 3: val_accuracy 'oops'"),
     ("metrics.csv", "epoch,accuracy\n0,0.5\n", "metrics.csv: has no column 'val_accuracy' .it has epoch")],
)  # fmt: skip
def test_a_damaged_run_file_is_named_with_what_is_wrong(
    finished_run, tmp_path, tmp_home, capsys, name, text, complaint
):
    config = _copy_of(finished_run, tmp_path / "run")
    out = Path(config.out)
    (out / "result.json").unlink()  # as if cut off
    (out / name).write_text(text)
    assert train.main(_argv(config)) == 2
    err = capsys.readouterr().err
    assert re.search(complaint, err) and "Traceback" not in err and err.count("\n") == 1, err
    assert not (out / ".lock").exists()


def test_a_finished_run_whose_result_lacks_keys_is_named(finished_run, tmp_path, tmp_home, capsys):
    config = _copy_of(finished_run, tmp_path / "run")
    out = Path(config.out)
    (out / "result.json").write_text('{"model": "resnet8_11"}')
    assert train.main(_argv(config)) == 2
    assert "result.json: lacks 'epochs_completed', 'test_top1'" in capsys.readouterr().err


def test_a_file_is_not_read_as_a_waiting_run_nor_a_misspelt_column_as_an_empty_one(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    record = train.RunRecord.read(tmp_path / "notes.txt")  # damaged: a report names it and goes on
    assert record.damage == ("notes.txt: is a file, not a run folder (the folder a training run fills)",)
    assert train.RunRecord.read(tmp_path / "not-started").state == "waiting"
    (tmp_path / "metrics.csv").write_text("epoch,accuracy,val_accuracy\n0,0.4,0.5\n")
    assert metric_column(tmp_path, "val_accuracy") == [0.5]
    with pytest.raises(RunFileError, match=r"no column 'val_acuracy' \(it has epoch, accuracy, val_acc"):
        metric_column(tmp_path, "val_acuracy")


def test_the_clock_counts_each_devices_epochs_from_where_the_backup_resumes(tmp_path):
    record = {"wall_time_s": 1000.0, "cpu_time_s": 1500.0, "epochs_trained": 12.5, "devices": {
        "cpu: 2 cores": {"wall_time_s": 400.0, "cpu_time_s": 800.0, "epochs_trained": 2.5},
        "gpu: lent x1": {"wall_time_s": 600.0, "cpu_time_s": 700.0, "epochs_trained": 10}}}  # fmt: skip
    (tmp_path / "progress.json").write_text(json.dumps(record))
    clock = train.callbacks.WallClock(tmp_path / "progress.json", "cpu: 2 cores")
    clock.resumes_at(12.0)  # a fallback to the backup before the one the record counted to
    clock.write(14)
    devices = read_progress(tmp_path)["devices"]
    assert list(devices) == ["gpu: lent x1", "cpu: 2 cores"]  # the device that trained it last comes last
    assert [spent["epochs_trained"] for spent in devices.values()] == [10, 4.5]


def test_the_clock_records_each_devices_keras_backends(tmp_path):
    """A run started on a GPU under JAX that finishes on a CPU under TensorFlow says so per device (its
    result named only the last backend); a device recorded before backends were kept stays unknown."""
    path = tmp_path / "progress.json"
    train.callbacks.WallClock(path, "gpu: H200 x1", backend="jax").write(15)
    train.callbacks.WallClock(path, "cpu: 2 cores", backend="tensorflow").write(16)
    train.callbacks.WallClock(path, "cpu: 2 cores", backend="torch").write(17)
    devices = read_progress(tmp_path)["devices"]
    assert {name: spent["backends"] for name, spent in devices.items()} == {
        "gpu: H200 x1": ["jax"], "cpu: 2 cores": ["tensorflow", "torch"]}  # fmt: skip
    old = {"devices": {"gpu: lent x1": {"wall_time_s": 60.0, "cpu_time_s": 90.0, "epochs_trained": 1}}}
    path.write_text(json.dumps(old))
    train.callbacks.WallClock(path, "gpu: lent x1", backend="jax").write(2)
    assert "backends" not in read_progress(tmp_path)["devices"]["gpu: lent x1"]  # its first epoch: unknown
    damaged = {"cpu: 2 cores": {**old["devices"]["gpu: lent x1"], "backends": "jax"}}  # a string, not a list
    path.write_text(json.dumps({"devices": damaged}))
    with pytest.raises(RunFileError, match=r"backends, a list of Keras backends"):
        read_progress(tmp_path)


def test_a_devices_record_with_epochs_that_are_not_a_number_is_named(tmp_path):
    spent = {"wall_time_s": 60.0, "cpu_time_s": 90.0}
    (tmp_path / "progress.json").write_text(json.dumps({"devices": {"cpu: 2 cores": spent}}))
    assert read_progress(tmp_path)["devices"]["cpu: 2 cores"] == spent  # recorded before epochs per device
    damaged = {"devices": {"cpu: 2 cores": {**spent, "epochs_trained": "2"}}}
    (tmp_path / "progress.json").write_text(json.dumps(damaged))
    with pytest.raises(RunFileError, match=r"'devices' holds 'cpu: 2 cores'.*epochs_trained, a number"):
        read_progress(tmp_path)


def test_a_fallback_to_the_previous_backup_drops_the_epochs_trained_again_from_the_log(tmp_path):
    from relu_ratio import models

    model = models.build("resnet8_11", classes=3)
    train.compile_for(model, train.TrainConfig(epochs=3, batch_size=4).resolved(), steps_per_epoch=1)
    metrics = tmp_path / "metrics.csv"
    backup = train.callbacks.Backup(tmp_path / "backup", save_freq=1, metrics=metrics)
    backup.set_model(model)
    for epoch in (1, 2):  # backups after epochs 1 and 2
        backup._current_epoch = epoch
        backup._save_model()
    metrics.write_text("epoch,loss,val_accuracy\n0,1.5,0.25\n1,1.25,0.5\n")
    record = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    (tmp_path / "backup" / record["weights"]).write_bytes(b"half")  # the newest backup is damaged
    restore = train.callbacks.Backup(tmp_path / "backup", save_freq=1, metrics=metrics)
    restore.set_model(model)
    restore.on_train_begin()
    assert model._initial_epoch == 1  # epoch 2 (index 1) is trained again, so its row goes
    assert metrics.read_text().splitlines() == ["epoch,loss,val_accuracy", "0,1.5,0.25"]


SUMS = {"metrics_state": [7.5, 3.0]}  # the loss tracker's total and count, 3 images into the epoch


DAMAGED = ["x", 3.0]  # edited by hand: the total is not a number


@pytest.mark.parametrize(
    ("written", "per_epoch", "skip", "sums", "added"),
    [
        ({"batches_done": 4, **SUMS}, 6, 4, [7.5, 3.0], [7.5, 3.0]),
        ({"batches_done": 4}, 6, 4, [], []),
        ({"batches_done": 6, **SUMS}, 6, 5, [], []),
        ({"batches_done": 4, **SUMS}, None, 0, None, None),
        ({"batch": 199}, 391, 200, [], []),
        ({"batch": 0}, 391, 0, None, None),
        ({"batches_done": 4, "metrics_state": DAMAGED}, 6, 4, DAMAGED, []),
        ({"batches_done": 4, "metrics_state": [7.5]}, 6, 4, [7.5], []),
        ({"batches_done": 4, "metrics_state": [None, 3.0]}, 6, 4, [None, 3.0], []),
    ],
    ids=["mid-epoch", "before-metrics_state", "after-the-last-batch", "not-skipping", "before-batches_done",
         "epoch-end-before", "damaged", "other-metrics", "null"],
)  # fmt: skip
def test_a_backup_says_how_many_batches_of_its_epoch_to_skip_and_what_they_added_to_the_metrics(
    tmp_path, capsys, written, per_epoch, skip, sums, added
):
    """``sums``: the metrics' running sums the backup gives for the batches it skips, ``added``: what the
    resume adds at its first step (``[]``: none it can add, and the console says so; ``None``: the epoch is
    trained from its first batch)."""
    from relu_ratio import models

    model = models.build("resnet8_11", classes=3)
    train.compile_for(model, train.TrainConfig(epochs=3, batch_size=4).resolved(), steps_per_epoch=1)
    backup = train.callbacks.Backup(tmp_path / "backup", save_freq=1)
    backup.set_model(model)
    backup._current_epoch = 1
    backup._save_model(batches_done=0)
    path = tmp_path / "backup" / "training_metadata.json"
    record = json.loads(path.read_text())
    if "batch" in written:  # a record written before batches_done
        del record["batches_done"]
    path.write_text(json.dumps({**record, **written}))
    restore = train.callbacks.Backup(tmp_path / "backup", save_freq=1)
    restore.set_model(model)
    assert restore.restore(per_epoch) == (1, skip) and model._initial_epoch == 1
    assert restore.metrics_state == sums
    if sums is not None:  # at the first step (before it, this model's only metric is the loss tracker)
        restore._add_skipped_metrics()
        total_and_count = [float(keras.ops.convert_to_numpy(v)) for v in model.metrics_variables]
        assert total_and_count == (added or [0.0, 0.0]) and restore.metrics_state is None
        assert ("average only the batches trained after the resume" in capsys.readouterr().out) == (not added)


def test_every_committed_backup_has_the_metrics_rows_of_the_epochs_before_it(folder, tmp_path, monkeypatch):
    """A kill between an epoch's metrics row and its backup must never leave a committed epoch without its
    row: each backup (mid-epoch ones included) is committed only after the rows of the epochs it skips."""
    commits, commit = [], train.callbacks.Backup._commit

    def checked_commit(backup, record):
        commits.append((record["epoch"], logged_epochs(backup.dir.parent)))
        commit(backup, record)

    monkeypatch.setattr(train.callbacks.Backup, "_commit", checked_commit)
    train.run(_tiny(folder, tmp_path / "run", epochs=2, backup_every=2))
    assert {epoch for epoch, _ in commits} == {0, 1, 2}, commits  # mid-epoch backups and each epoch's end
    assert all(logged == list(range(epoch)) for epoch, logged in commits), commits


def _disk_full_at(call: int):
    """``keras.Model.save_weights`` that fills the disk part-way through its ``call``-th call."""
    save, calls = keras.Model.save_weights, []

    def save_weights(model, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == call:
            Path(path).write_bytes(b"\0" * 4096)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(model, path, *args, **kwargs)

    return save_weights


ALMOST_FULL = shutil._ntuple_diskusage(10**9, 10**9, 10**5)  # shutil.disk_usage of a disk with 100 kB free


def test_a_full_disk_during_a_backup_is_one_error_and_keeps_the_previous_backup(folder, tmp_path, monkeypatch,
                                                                                capsys):
    out = tmp_path / "run"
    config = _tiny(folder, out, epochs=2, batch_size=4, backup_every=2)  # 6 steps: backups at 2, 4, 6, end
    monkeypatch.setattr(keras.Model, "save_weights", _disk_full_at(3))
    assert train.main(_argv(config)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "Exception ignored" not in err, err
    assert re.search(r"cannot write .*backup/ckpt-000003.weights.h5: No space left on device; the previous "
                     r"backup .*ckpt-000002.weights.h5 is intact", err), err  # fmt: skip
    record = json.loads((out / "backup" / "training_metadata.json").read_text())
    assert record["weights"] == "ckpt-000002.weights.h5"
    assert files.sha256(out / "backup" / record["weights"]) == record["sha256"]
    assert sorted(p.name for p in (out / "backup").iterdir()) == [
        "ckpt-000001.weights.h5", "ckpt-000002.weights.h5", "training_metadata.json"]  # fmt: skip
    assert not (out / ".lock").exists()
    monkeypatch.undo()
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: ALMOST_FULL)
    assert train.main(_argv(config)) == 2  # checked before h5py starts
    assert re.search(r"cannot write .*ckpt-000003.weights.h5: No space left on device: .* MB needed, 0.1 MB "
                     "free", capsys.readouterr().err)  # fmt: skip


@pytest.mark.parametrize("limit", ["free space", "file-size limit"])
def test_weights_a_disk_cannot_hold_are_refused_before_h5py_writes(tmp_path, monkeypatch, limit):
    """Backups, ``best.weights.h5`` and ``model.weights.h5`` are all written by ``callbacks.save_weights``:
    too little free space or a file-size limit (``ulimit -f``) below the file's size is one ``OSError``
    naming the file, the reason and the caller's consequence, before h5py starts; nothing is left behind."""
    import resource

    from relu_ratio.train import callbacks

    if limit == "free space":
        monkeypatch.setattr(files.shutil, "disk_usage", lambda path: ALMOST_FULL)
        reason, code = r"No space left on device: .* MB needed, 0.1 MB free", errno.ENOSPC
    else:
        getrlimit = resource.getrlimit
        monkeypatch.setattr(resource, "getrlimit", lambda kind: (
            (10**5, resource.RLIM_INFINITY) if kind == resource.RLIMIT_FSIZE else getrlimit(kind)))
        reason = r"File too large: .* MB needed, the file-size limit \(ulimit -f\) is 0.1 MB"
        code = errno.EFBIG
    path = tmp_path / "model.weights.h5"
    message = f"cannot write {re.escape(str(path))}: {reason}; nothing else"
    with pytest.raises(OSError, match=message) as raised:
        callbacks.save_weights(models.build("resnet8_21"), path, consequence="nothing else was changed")
    assert raised.value.errno == code
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("written", "kept"), [("best.weights.h5", "the previous best weights are intact"),
                                              ("model.weights.h5", "nothing else was changed")])
def test_a_full_disk_when_the_best_or_final_weights_are_written_is_one_error(folder, tmp_path, monkeypatch,
                                                                            capsys, written, kept):
    out = tmp_path / "run"
    ensure_room = files.ensure_room

    def full_for_one_file(path, size):
        with monkeypatch.context() as patch:
            if Path(path).name == written:
                patch.setattr(files.shutil, "disk_usage", lambda path: ALMOST_FULL)
            ensure_room(path, size)

    monkeypatch.setattr(files, "ensure_room", full_for_one_file)
    assert train.main(_argv(_tiny(folder, out))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    reason = r"No space left on device: .* MB needed, 0.1 MB free"
    assert re.search(rf"cannot write .*{written}: {reason}; {kept}", err), err
    assert not (out / written).exists() and not (out / "result.json").exists()
    assert not (out / ".lock").exists()


def test_weights_whose_write_fails_part_way_leave_the_previous_file_and_nothing_else(tmp_path, monkeypatch):
    """What ``best.weights.h5``'s message promises: a write that fails part-way (h5py has begun) leaves the
    previous file as it was and no temporary file."""
    from relu_ratio.train import callbacks

    path, model = tmp_path / "best.weights.h5", models.build("resnet8_21")
    kept = "the previous best weights are intact"
    callbacks.save_weights(model, path, consequence=kept)
    before = path.read_bytes()
    monkeypatch.setattr(keras.Model, "save_weights", _disk_full_at(1))
    message = f"cannot write {re.escape(str(path))}: No space left on device; {kept}"
    with pytest.raises(OSError, match=message):
        callbacks.save_weights(model, path, consequence=kept)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_ctrl_c_says_how_to_resume_and_releases_the_folder(folder, tmp_path, monkeypatch, capsys):
    from relu_ratio.train import fit

    make = fit.callbacks_lib.make
    monkeypatch.setattr(fit.callbacks_lib, "make", lambda *args: [*make(*args), _CutOff()])
    out = tmp_path / "run"
    assert train.main(_argv(_tiny(folder, out, epochs=2))) == 130
    err = capsys.readouterr().err
    assert err == f"interrupted: the run in {out} resumes from its last backup with the same command.\n"
    assert not (out / ".lock").exists() and logged_epochs(out) == [0]


@pytest.mark.backend
def test_the_device_path_augments_in_the_step_and_a_run_keeps_it_when_it_resumes_on_a_cpu(
    folder, tmp_path, monkeypatch
):
    from relu_ratio.train import fit

    make = fit.callbacks_lib.make
    out = tmp_path / "r"
    there = train.TrainConfig(model="resnet8_21", dataset=str(folder), out=str(out), recipe="fast", epochs=2,
                              batch_size=8, verbose=0, backup_every=1_000_000)  # fmt: skip
    monkeypatch.setattr(fit, "device", lambda: "gpu: lent x1")  # augment_on "auto": the device path
    monkeypatch.setattr(fit.callbacks_lib, "make", lambda *args: [*make(*args), _CutOff()])
    with pytest.raises(KeyboardInterrupt):
        train.run(there)
    started = json.loads((out / "config.json").read_text())
    assert (started["augment_on"], started["augmentation"]) == ("auto", "device")
    monkeypatch.setattr(fit.callbacks_lib, "make", make)
    monkeypatch.setattr(fit, "device", lambda: "cpu: 2 cores")  # "auto" would be the host path here
    other = 1 if keras.backend.backend() == "torch" else 2  # torch runs one step per call
    result = train.run(train.TrainConfig(**{**there.__dict__, "steps_per_execution": other}))
    assert result["epochs_completed"] == 2 and result["augmentation"] == "device"
    assert logged_epochs(out) == [0, 1] and np.isfinite(result["test_top1"])
    weights = out / "model.weights.h5"  # the network alone, as the zoo loads it: no augmentation layer
    plain = models.build("resnet8_21", **started["architecture"]["kwargs"])
    plain.load_weights(weights)


def test_steps_per_execution_may_change_when_a_run_resumes_and_must_be_a_positive_integer(
    tmp_path, monkeypatch, capsys
):
    from relu_ratio.train import fit

    assert "steps_per_execution" in fit.MAY_CHANGE_ON_RESUME
    on_torch = train.TrainConfig(model="resnet8_21", steps_per_execution=4)
    monkeypatch.setattr(fit.keras.backend, "backend", lambda: "torch")  # Keras runs one step per call there
    assert fit.steps_per_execution(dataclasses.replace(on_torch, steps_per_execution=None)) == 1
    with pytest.raises(ValueError, match=r"must be 1 on the torch backend .*received 4\. Leave it out"):
        fit.steps_per_execution(on_torch)
    out = tmp_path / "never"
    assert train.main(["--model", "resnet8_21", "--steps-per-execution", "4", "--out", str(out)]) == 2
    assert "must be 1 on the torch backend" in capsys.readouterr().err and not out.exists()
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"steps_per_execution must be >= 1 \(an integer\); received 0"):
        train.TrainConfig(model="resnet8_21", recipe="fast", steps_per_execution=0).resolved()
    with pytest.raises(ValueError, match=r"augment_on must be one of \['auto', 'host', 'device'\]"):
        train.TrainConfig(model="resnet8_21", recipe="fast", augment_on="gpu").resolved()


# --- divergence; backups: refused when not finite, a damaged one falls back, a kill while one is written ---


def _finite_h5(path) -> bool:
    finite = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, v: finite.append(bool(np.isfinite(v[()]).all())) if isinstance(v, h5py.Dataset)
                     and np.issubdtype(v.dtype, np.floating) else None)  # fmt: skip
    return bool(finite) and all(finite)


def test_divergence_stops_the_run_and_keeps_the_last_good_files(image_folder, tmp_path, monkeypatch,
                                                                 capsys):
    write_image_folder(image_folder, split="train", per_class=8)  # 24 images: 6 steps of 4 per epoch

    class ExplodesAfterTheFirstEpoch(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, steps_per_epoch):
            self.steps = steps_per_epoch

        def __call__(self, step):  # PiecewiseConstantDecay would give 0 * inf = NaN from the start
            return keras.ops.where(step < self.steps, 0.01, float("inf"))

        def get_config(self):
            return {"steps_per_epoch": self.steps}

    explodes = lambda config, steps: ExplodesAfterTheFirstEpoch(steps)  # noqa: E731
    monkeypatch.setattr(train.recipes, "learning_rate", explodes)
    out = tmp_path / "run"
    code = train.main(["--model", "resnet8_11", "--dataset", str(image_folder), "--out", str(out),
                       "--epochs", "3", "--batch-size", "4", "--backup-every", "1",
                       "--verbose", "0"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "training diverged in epoch 2" in err
    assert f"They were not backed up: {out / 'backup'} keeps the last finite backup" in err
    assert logged_epochs(out) == [0] and not (out / ".lock").exists()
    assert not (out / "model.weights.h5").exists() and not (out / "result.json").exists()
    assert _finite_h5(out / "best.weights.h5")
    record = json.loads((out / "backup" / "training_metadata.json").read_text())
    assert record["epoch"] == 1 and _finite_h5(out / "backup" / record["weights"])
    assert all(_finite_h5(p) for p in (out / "backup").glob("*.h5"))


def test_divergence_in_the_first_steps_does_not_claim_files_that_do_not_exist(image_folder, tmp_path, capsys):
    write_image_folder(image_folder, split="train", per_class=8)
    out = tmp_path / "run"
    code = train.main(["--model", "resnet8_11", "--dataset", str(image_folder), "--out", str(out),
                       "--recipe", "fast", "--epochs", "2", "--batch-size", "4", "--lr", "1e30",
                       "--momentum", "0.99", "--verbose", "0"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "training diverged in epoch 1" in err
    assert "no backup or checkpoint had been written yet" in err and "keeps" not in err
    assert "--momentum, now 0.99" in err and "--lr, now 1e+30" in err
    assert not (out / ".lock").exists()


def test_divergence_names_the_files_that_exist_and_only_those(tmp_path):
    from relu_ratio.train.callbacks import Backup, DivergenceGuard, TrainingDiverged

    record, best = tmp_path / "backup" / Backup.RECORD, tmp_path / "best.weights.h5"
    guard = DivergenceGuard(tmp_path, train.TrainConfig(lr=0.5, momentum=0.9).resolved())
    for existing, said in [([record], f"({record} keeps the last finite backup)"),
                           ([record, best], f"({record} keeps the last finite backup; {best} keeps the best "
                                            "epoch's weights)")]:  # fmt: skip
        for path in existing:
            path.parent.mkdir(exist_ok=True)
            path.write_text("")
        with pytest.raises(TrainingDiverged) as diverged:
            guard.on_train_batch_end(2, {"loss": float("nan")})
        assert "the training loss is nan at step 3" in str(diverged.value) and said in str(diverged.value)


def _compiled(name="resnet8_11"):
    model = models.build(name, classes=3)
    config = train.TrainConfig(epochs=1, batch_size=4).resolved()
    return train.compile_for(model, config, steps_per_epoch=1)


def test_the_backup_refuses_non_finite_weights(tmp_path):
    model = _compiled()
    backup = train.callbacks.Backup(tmp_path / "backup", save_freq=1)
    backup.set_model(model)
    backup._save_model()
    kernel = model.get_layer("predictions").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    with pytest.raises(train.TrainingDiverged, match="not backed up"):
        backup._save_model()
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "ckpt-000001.weights.h5", "training_metadata.json"]  # fmt: skip


def test_a_damaged_backup_falls_back_to_the_previous_one(tmp_path):
    model = _compiled()
    backup = train.callbacks.Backup(tmp_path / "backup", save_freq=1)
    backup.set_model(model)
    backup._current_epoch = 1
    backup._save_model()
    good = [np.copy(w) for w in model.get_weights()]
    model.get_layer("predictions").kernel.assign(np.ones(model.get_layer("predictions").kernel.shape))
    backup._current_epoch = 2
    backup._save_model()
    record = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    latest = tmp_path / "backup" / record["weights"]
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # half written
    fresh = _compiled()
    restore = train.callbacks.Backup(tmp_path / "backup", save_freq=1)
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 1
    for a, b in zip(fresh.get_weights(), good):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "backup" / record["previous"]["weights"]).unlink()
    with pytest.raises(ValueError, match=r"no backup in .* can be restored .*missing.*delete"):
        _restore(tmp_path)


def _restore(tmp_path):
    restore = train.callbacks.Backup(tmp_path / "backup", save_freq=1)
    restore.set_model(_compiled())
    restore.on_train_begin()


def test_keras_own_backup_cannot_resume_after_a_kill_in_its_metadata_write(tmp_path):
    """Why train.callbacks.Backup does not rely on keras' BackupAndRestore(double_checkpoint=True)."""
    model = _compiled()
    keras_backup = keras.callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True)
    keras_backup.set_model(model)
    keras_backup._save_model()
    keras_backup._save_model()
    (tmp_path / "b" / "training_metadata.json").write_text("")  # killed right after open(..., "w")
    with pytest.raises(json.JSONDecodeError):
        keras_backup.on_train_begin()


KILLER = """
import os, signal, sys
from pathlib import Path
from relu_ratio import train
kill_at, where = int(sys.argv[1]), sys.argv[2]
saves = 0
write_weights, commit = train.callbacks.Backup._write_weights, train.callbacks.Backup._commit

def partial_weights(self, path):
    global saves
    saves += 1
    if saves == kill_at and where == "weights":
        write_weights(self, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # a third of the file is on disk
        os.kill(os.getpid(), signal.SIGKILL)
    write_weights(self, path)

def partial_commit(self, record):
    if saves == kill_at and where == "record":
        (self.dir / (self.RECORD + ".tmp")).write_text('{"epoch": ')
        os.kill(os.getpid(), signal.SIGKILL)
    commit(self, record)

train.callbacks.Backup._write_weights, train.callbacks.Backup._commit = partial_weights, partial_commit
sys.exit(train.main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_killed_while_writing_backups_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    folder = write_image_folder(tmp_path / "ds", split="train", per_class=16)  # 48 images: 6 steps of 8
    write_image_folder(folder, split="test", per_class=2)
    out = tmp_path / "run"
    args = ["--model", "resnet8_21", "--dataset", str(folder), "--epochs", "4", "--batch-size", "8",
            "--backup-every", "4", "--verbose", "2", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "RELU_RATIO_HOME": str(tmp_path / "home")}

    def run(*command):
        done = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True,
                              timeout=600)
        return done

    # Saves: epoch 1 step 4, epoch 1 end, epoch 2 step 4 (killed a third of the way into the weights).
    first = run("-c", KILLER, "3", "weights", *args)
    assert first.returncode == -9, first.stdout + first.stderr
    # Resumes at epoch 2; its first save (a step backup in that epoch) must record epoch 2, not 0; the
    # second (the end of epoch 2) is killed after the weights, in the middle of the record.
    second = run("-c", KILLER, "2", "record", *args)
    assert second.returncode == -9 and "Epoch 2/4" in second.stdout and "Epoch 1/4" not in second.stdout
    # The same command again, in this process (the kills above need processes of their own; this run does
    # not, and spares a third TensorFlow start). The second process died holding the folder's lock.
    monkeypatch.setenv("RELU_RATIO_HOME", env["RELU_RATIO_HOME"])
    capsys.readouterr()
    with pytest.warns(UserWarning, match="taking over the lock of process"):
        assert train.main(args) == 0
    third = capsys.readouterr()
    assert "Epoch 2/4" in third.out and "Epoch 1/4" not in third.out, third.out + third.err
    assert logged_epochs(out) == [0, 1, 2, 3]
    assert json.loads((out / "result.json").read_text())["epochs_completed"] == 4
    assert _finite_h5(out / "model.weights.h5")
    assert len(list((out / "backup").glob("ckpt-*.weights.h5"))) <= 2


# --- the same command on a finished run; a run that fails before it writes; a full data cache ---------------


def test_the_same_command_on_a_finished_run_leaves_it_untouched(finished_run, tmp_path, tmp_home, capsys,
                                                                  monkeypatch):
    config = _copy_of(finished_run, tmp_path / "run")  # the module's finished run: no run of its own trained
    argv = _argv(config)  # the command that trained it
    result = Path(config.out) / "result.json"
    before, mtime = result.read_bytes(), result.stat().st_mtime_ns
    assert train.main([*argv, "--verbose", "2"]) == 0  # the last --verbose counts
    assert f"the run in {config.out} is finished; nothing trained" in capsys.readouterr().out
    assert result.read_bytes() == before and result.stat().st_mtime_ns == mtime
    assert json.loads(before)["last_epoch_metrics"]
    moved = shutil.copytree(config.dataset, tmp_path / "moved" / "ds")  # the same data elsewhere: its result
    assert train.main(_argv(dataclasses.replace(config, dataset=str(moved)))) == 0
    other = write_image_folder(tmp_path / "other", split="train", classes=("ant", "bee"), per_class=8)
    write_image_folder(other, split="test", classes=("ant", "bee"))
    with pytest.raises(ValueError, match=r"holds a run trained on other data .*Give the data it trained on"):
        train.run(dataclasses.replace(config, dataset=str(other)))  # not its result as another's
    renamed = shutil.copytree(config.dataset, tmp_path / "renamed")
    with pytest.raises(ValueError, match=r"dataset_info.name: 'ds', 'renamed' .*an image folder's name is"):
        train.run(dataclasses.replace(config, dataset=str(renamed)))
    monkeypatch.setattr(data, "_load_tfds", lambda *args: pytest.fail("loaded tensorflow-datasets' data"))
    with pytest.raises(ValueError, match=r"dataset_info.name: 'ds', 'cifar100'"):  # by name: no download
        train.run(dataclasses.replace(config, dataset="cifar100"))
    assert result.read_bytes() == before


def test_a_run_that_fails_before_writing_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "never"
    argv = ["--model", "resnet8_11", "--dataset", str(tmp_path / "no-such-data"), "--out", str(out)]
    assert train.main(argv) == 2
    assert "no-such-data" in capsys.readouterr().err
    assert not out.exists()


def test_the_training_cli_reports_a_full_cache(image_folder, tmp_path, monkeypatch, capsys):
    write_image_folder(image_folder, split="train")
    monkeypatch.setattr(data.np, "savez", full_disk())
    code = train.main(["--model", "resnet8_11", "--dataset", str(image_folder), "--out", str(tmp_path / "r")])
    assert code == 2 and "No space left on device" in capsys.readouterr().err
