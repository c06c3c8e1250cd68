"""training/gpu_pair.py: the epoch plan and the packing of finished and cut-off runs (no GPU needed)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "training" / "gpu_pair.py"
spec = importlib.util.spec_from_file_location("gpu_pair", SCRIPT)
gpu_pair = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_pair)

PROBE = {"compile_s": 58.0, "step_s": 0.05, "eval_compile_s": 14.0, "eval_s": 0.8}


def test_plan_fits_the_slowest_model_with_margins():
    slow = {**PROBE, "step_s": 0.06}
    epoch = 0.06 * 391 + 0.8  # the slower model sets the pace for both
    fixed = 2 * (58 + 14) + 40
    assert gpu_pair.plan_epochs([PROBE, slow], 391, fixed + 10 * 1.15 * epoch + 1, 200) == 10
    assert gpu_pair.plan_epochs([PROBE, slow], 391, fixed + 10 * 1.15 * epoch + 1, 7) == 7
    assert gpu_pair.plan_epochs([PROBE], 391, fixed - 1, 200) == 0


def _members(packed: Path) -> list[str]:
    with tarfile.open(packed) as tar:
        return sorted(tar.getnames())


def test_pack_keeps_a_finished_runs_record_and_a_cut_off_runs_committed_backup(tmp_path):
    done, cut = tmp_path / "runs" / "a-gpu-seed0", tmp_path / "runs" / "b-gpu-seed0"
    for run in (done, cut):
        (run / "backup").mkdir(parents=True)
        for name in ("config.json", "metrics.csv", "best.weights.h5", "backup/ckpt-000001.weights.h5",
                     "backup/ckpt-000002.weights.h5"):  # fmt: skip
            (run / name).write_text("x")
        # the record names ckpt 1: ckpt 2 is what a kill left half-written
        record = {"weights": "ckpt-000001.weights.h5"}
        (run / "backup" / "training_metadata.json").write_text(json.dumps(record))
    (done / "result.json").write_text("{}")
    (done / "model.weights.h5").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    assert _members(gpu_pair.pack(done, out)) == [
        "a-gpu-seed0/config.json", "a-gpu-seed0/metrics.csv", "a-gpu-seed0/model.weights.h5",
        "a-gpu-seed0/result.json",
    ]  # fmt: skip
    assert _members(gpu_pair.pack(cut, out)) == [
        "b-gpu-seed0/backup/ckpt-000001.weights.h5", "b-gpu-seed0/backup/training_metadata.json",
        "b-gpu-seed0/config.json", "b-gpu-seed0/metrics.csv",
    ]  # fmt: skip


def test_resume_unpacks_the_runs_and_keeps_their_epochs(tmp_path):
    packed, runs = tmp_path / "packed", tmp_path / "runs"
    for name, epochs in (("a-gpu-seed0", 13), ("b-gpu-seed0", 13), ("c-gpu-seed0", 12)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"epochs": epochs}))
        packed.mkdir(exist_ok=True)
        gpu_pair.pack(tmp_path / name, packed)
    assert gpu_pair.unpack(packed, runs, ["a-gpu-seed0", "b-gpu-seed0"]) == 13
    assert (runs / "b-gpu-seed0" / "config.json").is_file()
    with pytest.raises(SystemExit, match=r"different epochs \[12, 13\]"):
        gpu_pair.unpack(packed, runs, ["a-gpu-seed0", "c-gpu-seed0"])


def test_resumed_runs_get_the_flags_they_started_with():
    args = argparse.Namespace(dataset=".data", train_subset=None, test_subset=256)
    command = gpu_pair.train_command("preact164_32", 0, Path("/tmp/r"), 13, args)
    assert command[1:] == [
        "-m", "relu_ratio.train", "--model", "preact164_32", "--dataset", ".data", "--out", "/tmp/r",
        "--recipe", "fast", "--epochs", "13", "--seed", "0", "--mixed-precision", "mixed_bfloat16",
        "--verbose", "2", "--backup-every", "1000000", "--test-subset", "256",
    ]  # fmt: skip


def test_a_seed_per_model_names_the_runs():
    assert gpu_pair.run_names(["resnet20_21", "resnet20_11"], [2, 3]) == [
        "resnet20_21-gpu-seed2", "resnet20_11-gpu-seed3"]  # fmt: skip
    assert gpu_pair.run_names(["a", "b"], [1]) == ["a-gpu-seed1", "b-gpu-seed1"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--models", "a", "b", "c", "--seed", "1", "2"], "one seed or one per model (3); received [1, 2]"),
        (["--models", "a", "a", "--seed", "2"], "name a run twice: ['a-gpu-seed2', 'a-gpu-seed2']"),
        (["--epochs", "0"], "--epochs must be >= 1; received 0"),
        (["--epochs", "100", "--resume", "packed"], "leave out --epochs"),
    ],
)
def test_bad_flags_are_refused_before_anything_starts(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--out", str(tmp_path), "--commit", "abc", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
