"""Hardening: bad images, bad arguments, full disks, damaged files, diverging and killed training, two
processes racing for a cache, and numerics across backends and precisions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from conftest import logged_epochs, write_image_folder
from helpers import full_disk

from relu_ratio import data, models, train

# --- 1. bad images ------------------------------------------------------------------------------------


# --- 2. bad arguments ---------------------------------------------------------------------------------


# --- 3. full or unwritable caches, damaged cache files ---------------------------------------------------


def test_the_training_cli_reports_a_full_cache(image_folder, tmp_path, monkeypatch, capsys):
    write_image_folder(image_folder, split="train")
    monkeypatch.setattr(data.np, "savez", full_disk())
    code = train.main(["--model", "resnet8_11", "--dataset", str(image_folder), "--out", str(tmp_path / "r")])
    assert code == 2 and "No space left on device" in capsys.readouterr().err


# --- 4. training that diverges, training killed while it writes a backup ----------------------------------


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
    assert "training diverged in epoch 2" in capsys.readouterr().err
    assert logged_epochs(out) == [0]
    assert not (out / "model.weights.h5").exists() and not (out / "result.json").exists()
    assert _finite_h5(out / "best.weights.h5")
    record = json.loads((out / "backup" / "training_metadata.json").read_text())
    assert record["epoch"] == 1 and _finite_h5(out / "backup" / record["weights"])
    assert all(_finite_h5(p) for p in (out / "backup").glob("*.h5"))


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
def test_killed_while_writing_backups_the_same_command_resumes(tmp_path):
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
    third = run("-m", "relu_ratio.train", *args)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Epoch 2/4" in third.stdout and "Epoch 1/4" not in third.stdout, third.stdout
    assert logged_epochs(out) == [0, 1, 2, 3]
    assert json.loads((out / "result.json").read_text())["epochs_completed"] == 4
    assert _finite_h5(out / "model.weights.h5")
    assert len(list((out / "backup").glob("ckpt-*.weights.h5"))) <= 2


# --- 5. two processes, one cache ------------------------------------------------------------------------


# --- round two (what an adversarial new user still broke) ------------------------------------------------


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


def test_the_same_command_on_a_finished_run_leaves_it_untouched(image_folder, tmp_path):
    write_image_folder(image_folder, split="train", per_class=4)
    argv = ["--model", "resnet8_11", "--dataset", str(image_folder), "--out", str(tmp_path / "run"),
            "--recipe", "fast", "--epochs", "1", "--batch-size", "4", "--verbose", "0"]  # fmt: skip
    assert train.main(argv) == 0
    result = tmp_path / "run" / "result.json"
    before, mtime = result.read_bytes(), result.stat().st_mtime_ns
    assert train.main(argv) == 0
    assert result.read_bytes() == before and result.stat().st_mtime_ns == mtime
    assert json.loads(before)["last_epoch_metrics"]


def test_a_run_that_fails_before_writing_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "never"
    argv = ["--model", "resnet8_11", "--dataset", str(tmp_path / "no-such-data"), "--out", str(out)]
    assert train.main(argv) == 2
    assert "no-such-data" in capsys.readouterr().err
    assert not out.exists()


