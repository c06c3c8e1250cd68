"""training/gpu_pair.py: the queue's next runs, their commands; and the packing of finished and cut-off
runs it carries to and from a GPU (relu_ratio.train.archive), also in float16, to keep them in git."""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import load_module

from relu_ratio import queue, train
from relu_ratio.train import archive

SCRIPT = Path(__file__).parents[1] / "training" / "gpu_pair.py"
gpu_pair = load_module(SCRIPT, "gpu_pair")


POINTER = "run 'python training/gpu_pair.py --help' for the usage"  # after a usage mistake's line


def _queue(tmp_path: Path, finished: tuple[str, ...] = ()) -> Path:
    runs = [{"model": "resnet20_21", "seed": s, "epochs": 30} for s in range(3)] + [
        {"model": "preact164_type2", "epochs": 30, "register": True}]  # fmt: skip
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"defaults": {"recipe": "fast"}, "runs": runs}))
    rows = {run_id: {"config": {"model": "x"}, "result": {"epochs_completed": 30, "test_top1": 0.9}}
            for run_id in finished}  # fmt: skip
    (tmp_path / "q.finished.json").write_text(json.dumps({"runs": rows}))
    return path


def test_the_next_unfinished_runs_are_taken_in_the_queues_order(tmp_path):
    path = _queue(tmp_path, finished=("resnet20_21-seed0", "resnet20_21-seed2"))
    chosen = gpu_pair.chosen_runs(path, None, 2)
    assert [i.run_id for i in chosen] == ["resnet20_21-seed1", "preact164_type2-seed0"]
    assert [i.run_id for i in gpu_pair.chosen_runs(path, ["resnet20_21-seed2"], 2)] == ["resnet20_21-seed2"]
    with pytest.raises(ValueError, match=r"not in .*\['resnet56_21-seed0'\]"):
        gpu_pair.chosen_runs(path, ["resnet56_21-seed0"], 2)


def test_a_recorded_zoo_run_is_taken_only_by_name(tmp_path):
    """From the GPU's copy of the tree, a run finished on the queue's machine and waiting to be registered
    looks the same as one whose weights are lost (which the queue trains again): the latter is named."""
    path = _queue(tmp_path, finished=("resnet20_21-seed0", "preact164_type2-seed0"))  # neither registered
    taken = [i.run_id for i in gpu_pair.chosen_runs(path, None, 3)]
    assert taken == ["resnet20_21-seed1", "resnet20_21-seed2"]
    assert [i.run_id for i in gpu_pair.chosen_runs(path, ["preact164_type2-seed0"], 2)] == [
        "preact164_type2-seed0"]  # fmt: skip


def test_a_run_gets_its_queued_settings_and_leaves_the_device_path_to_auto(tmp_path):
    (item,) = gpu_pair.chosen_runs(_queue(tmp_path), ["preact164_type2-seed0"], 1)
    args = argparse.Namespace(dataset=".data", steps_per_execution=32, train_subset=None, test_subset=256,
                              augment_on=None)
    command = gpu_pair.train_command(item, Path("/tmp/runs"), args)
    assert command[1:3] == ["-m", "relu_ratio.train"]
    parsed = train.parser().parse_args(command[3:])  # the CLI reads it back
    assert parsed.model == "preact164_type2" and parsed.out == "/tmp/runs/preact164_type2-seed0"
    assert (parsed.recipe, parsed.epochs, parsed.seed) == ("fast", 30, 0)
    assert (parsed.augment_on, parsed.mixed_precision) == ("auto", "auto")  # on a GPU: the device path, bf16
    assert (parsed.steps_per_execution, parsed.test_subset, parsed.verbose) == (32, 256, 2)
    # what the queue compares when the run comes back: the queued settings, nothing else
    recorded = {**train.TrainConfig(**{**item.config("/tmp/runs", ".data").__dict__,
                                       "steps_per_execution": 32}).resolved().__dict__}  # fmt: skip
    assert queue.differences(item.config("~/relu_runs/zoo", "../shared/data"), recorded) == []


def _backup_record(epochs: int) -> dict:
    """A committed backup record as the training CLI writes it, after ``epochs`` epochs."""
    return {"epoch": epochs, "batch": 0, "number": epochs, "weights": f"ckpt-{epochs:06d}.weights.h5",
            "sha256": "0" * 64}


def _members(packed: Path) -> list[str]:
    with tarfile.open(packed) as tar:
        return sorted(tar.getnames())


def test_pack_keeps_a_finished_runs_record_and_a_cut_off_runs_committed_backup(tmp_path):
    done, cut = tmp_path / "runs" / "a-seed0", tmp_path / "runs" / "b-seed0"
    readable = {"config.json": "{}", "metrics.csv": "epoch,val_accuracy\n0,0.5\n"}  # a take-back reads them
    for run in (done, cut):
        (run / "backup").mkdir(parents=True)
        for name in ("config.json", "metrics.csv", "best.weights.h5", "backup/ckpt-000001.weights.h5",
                     "backup/ckpt-000002.weights.h5"):  # fmt: skip
            (run / name).write_text(readable.get(name, "x"))
        # the record names ckpt 1: ckpt 2 is what a kill left half-written
        record = _backup_record(1)
        (run / "backup" / "training_metadata.json").write_text(json.dumps(record))
    (done / "result.json").write_text("{}")
    (done / "model.weights.h5").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    assert _members(archive.pack(done, out)) == [
        "a-seed0/config.json", "a-seed0/metrics.csv", "a-seed0/model.weights.h5", "a-seed0/result.json",
    ]  # fmt: skip
    assert _members(archive.pack(cut, out)) == [
        "b-seed0/backup/ckpt-000001.weights.h5", "b-seed0/backup/training_metadata.json",
        "b-seed0/config.json", "b-seed0/metrics.csv",
    ]  # fmt: skip
    runs = tmp_path / "unpacked"
    assert archive.take_back(out / "b-seed0.tar.gz", runs) == "b-seed0"  # --resume's way, into a new place
    assert (runs / "b-seed0" / "backup" / "training_metadata.json").is_file()


def _run_folder(run: Path, epochs: int, finished: bool = False) -> Path:
    """A run folder as the training CLI leaves it after ``epochs`` epochs (cut off, or ``finished``)."""
    (run / "backup").mkdir(parents=True)
    rows = "".join(f"{e},0.5\n" for e in range(epochs))
    (run / "metrics.csv").write_text("epoch,val_accuracy\n" + rows)
    (run / "config.json").write_text(json.dumps({"epochs": 30, "where": str(run)}))
    checkpoint = f"ckpt-{epochs:06d}.weights.h5"
    (run / "backup" / checkpoint).write_text("x")
    (run / "backup" / "training_metadata.json").write_text(json.dumps(_backup_record(epochs)))
    if finished:
        (run / "result.json").write_text(json.dumps({"epochs_completed": epochs, "test_top1": 0.5}))
        (run / "model.weights.h5").write_text("x")
    return run


def test_take_back_unpacks_a_packed_run_over_an_earlier_state_of_it_only(tmp_path, monkeypatch):
    packed = tmp_path / "packed"
    packed.mkdir()
    archive.pack(_run_folder(tmp_path / "gpu" / "a-seed0", epochs=5), packed)
    runs = tmp_path / "runs"
    _run_folder(runs / "a-seed0", epochs=2)  # the CPU queue's earlier state of the same run
    moved = []
    replace = archive.os.replace
    monkeypatch.setattr(archive.os, "replace", lambda a, b: (moved.append(Path(b).name), replace(a, b)))
    assert archive.take_back(packed / "a-seed0.tar.gz", runs) == "a-seed0"
    assert moved[0] == "config.json"  # first: a take-back cut off part-way leaves a run train resumes
    assert moved[-1] == "training_metadata.json"  # last: never the new backup with the old metrics
    assert train.RunRecord.read(runs / "a-seed0").epochs_done == 5
    record = json.loads((runs / "a-seed0" / "backup" / "training_metadata.json").read_text())
    assert record["weights"] == "ckpt-000005.weights.h5" and not (runs / "a-seed0" / ".lock").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["a-seed0"]  # no scratch folder left


@pytest.mark.parametrize("here", ["further", "as far", "finished", "in use"])
def test_take_back_refuses_a_run_the_queue_trains_and_leaves_one_as_far_there(tmp_path, capsys, here):
    packed = tmp_path / "packed"
    packed.mkdir()
    archive.pack(_run_folder(tmp_path / "gpu" / "a-seed0", epochs=5), packed)
    runs = tmp_path / "runs"
    epochs = {"further": 7, "as far": 5, "finished": 5, "in use": 2}[here]
    local = _run_folder(runs / "a-seed0", epochs=epochs, finished=here == "finished")
    if here == "in use":  # the queue on this machine trains it (a holder that cannot be taken over)
        holder = {"pid": 1, "host": "elsewhere", "since": "now", "token": "t"}
        (local / ".lock").write_text(json.dumps(holder))
    archive.pack(_run_folder(tmp_path / "gpu" / "b-seed0", epochs=5), packed)  # not there: taken back
    before = {p: p.read_bytes() for p in local.rglob("*") if p.is_file()}
    if here == "in use":  # refused: the command ends there
        with pytest.raises(SystemExit) as exit_info:
            gpu_pair.main(["--take-back", str(packed), "--runs", str(runs)])
        assert exit_info.value.code == 2
    else:  # left as it is, with a note; the other run is taken back (a folder of runs taken back before)
        assert gpu_pair.main(["--take-back", str(packed), "--runs", str(runs)]) == 0
    err = capsys.readouterr().err
    assert str(local) in err and "Traceback" not in err, err
    assert "is in use" in err if here == "in use" else "note: " in err and "not unpacked" in err
    assert {p: p.read_bytes() for p in local.rglob("*") if p.is_file()} == before
    assert (runs / "b-seed0").exists() == (here != "in use")


def test_pack_carries_cut_off_runs_and_says_what_a_device_call_would_carry(tmp_path, capsys, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # the checkout a device call sends
    monkeypatch.setattr(gpu_pair, "ROOT", tmp_path.resolve())
    queued, runs, carry = _queue(tmp_path), tmp_path / "runs", tmp_path / "carry"
    _run_folder(runs / "resnet20_21-seed0", epochs=3)
    _run_folder(runs / "resnet20_21-seed1", epochs=30, finished=True)
    in_use = _run_folder(runs / "resnet20_21-seed2", epochs=3)
    (in_use / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "now", "token": "t"}))
    lost = _run_folder(runs / "preact164_type2-seed0", epochs=3)
    (lost / "backup" / "ckpt-000003.weights.h5").unlink()  # the record names a checkpoint that is not there

    def pack(*run_ids: str, folder: Path = carry) -> int:
        return gpu_pair.main(["--pack", str(folder), "--runs", str(runs), "--queue", str(queued), "--run-ids",
                              *run_ids])  # fmt: skip

    assert pack("resnet20_21-seed0") == 0
    out = capsys.readouterr().out
    assert _members(carry / "resnet20_21-seed0.tar.gz") == [
        "resnet20_21-seed0/backup/ckpt-000003.weights.h5", "resnet20_21-seed0/backup/training_metadata.json",
        "resnet20_21-seed0/config.json", "resnet20_21-seed0/metrics.csv"]  # fmt: skip
    assert "a device call would carry" in out and "working tree" in out and "--resume carry" in out
    packed = (carry / "resnet20_21-seed0.tar.gz").read_bytes()
    refused = {("resnet20_21-seed1",): "finished: register it",
               ("resnet20_21-seed2",): "is in use",
               ("resnet20_21-seed0",): "already packed",
               ("resnet20_21-seed2", "resnet20_21-seed2"): "a run is named twice",
               # the first packed, the second refused: neither is left in the folder
               ("resnet20_21-seed2", "preact164_type2-seed0"): "names the checkpoint ckpt-000003.weights.h5"}
    for run_ids, said in refused.items():
        if "checkpoint" in said:
            (in_use / ".lock").unlink()
        with pytest.raises(SystemExit) as exit_info:
            pack(*run_ids)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and said in err and "Traceback" not in err, err
        assert [path.name for path in carry.iterdir()] == ["resnet20_21-seed0.tar.gz"]  # the folder as it was
        assert (carry / "resnet20_21-seed0.tar.gz").read_bytes() == packed
    record = lost / "backup" / "training_metadata.json"
    for damage, said in (("{}", "training_metadata.json: lacks 'epoch'"), (None, "no backup to resume from")):
        if damage:
            record.write_text(damage)
        else:
            record.unlink()
        with pytest.raises(SystemExit) as exit_info:
            pack("preact164_type2-seed0")
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and said in err and "preact164_type2-seed0" in err, err
        assert "Traceback" not in err and [p.name for p in carry.iterdir()] == ["resnet20_21-seed0.tar.gz"]
    monkeypatch.setattr(gpu_pair, "CARRY_LIMIT", 1)  # a call the device tool would refuse
    for folder, said in ((carry, "more than the 0 MiB one carries: not packed"),
                         (tmp_path / "new" / "deeper", "more than the 0 MiB one carries"),
                         (tmp_path.parent, "the folder must be inside the checkout"),
                         (tmp_path / ".git" / "x", "and outside its .git")):  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            pack("resnet20_21-seed2", folder=folder)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and said in err, err
    assert [path.name for path in carry.iterdir()] == ["resnet20_21-seed0.tar.gz"]
    assert not (tmp_path / "new").exists()  # made for the refused pack (with its parent), removed with it


@pytest.mark.parametrize("damage", ["renamed", "not a tar.gz", "a damaged run", "more than its run"])
def test_take_back_refuses_an_archive_it_cannot_unpack_as_its_run(tmp_path, capsys, damage):
    packed = tmp_path / "packed"
    packed.mkdir()
    run = _run_folder(tmp_path / "gpu" / "a-seed0", epochs=5)
    if damage == "a damaged run":
        (run / "config.json").write_text("not json")
    packed_run = archive.pack(run, packed)
    if damage == "renamed":
        packed_run.rename(packed / "a-seed1.tar.gz")
    elif damage == "not a tar.gz":
        packed_run.write_bytes(b"not gzip")
    elif damage == "more than its run":  # the run folder and a file beside it, which a take-back would drop
        (tmp_path / "beside.txt").write_text("another's")
        with tarfile.open(packed_run, "w:gz") as tar:
            tar.add(run, arcname=run.name)
            tar.add(tmp_path / "beside.txt", arcname="beside.txt")
    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--take-back", str(packed), "--runs", str(runs)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "not unpacked" in err and "Traceback" not in err
    said = {"renamed": "not the run folder a-seed1/", "not a tar.gz": "cannot be read as a packed run",
            "a damaged run": "a-seed0.tar.gz holds a damaged run (config.json: ",
            "more than its run": "holds ['a-seed0', 'beside.txt'], more than the run folder a-seed0/"}[damage]
    assert said in err, err
    assert [p.name for p in runs.iterdir()] == []  # nothing unpacked, no lock or scratch folder left


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_a_damaged_archive_is_one_error_line_and_no_run_folder_is_made(tmp_path, capsys, damage):
    packed = tmp_path / "packed"
    packed.mkdir()
    packed_run = archive.pack(_run_folder(tmp_path / "gpu" / "a-seed0", epochs=5), packed)
    whole = packed_run.read_bytes()
    packed_run.write_bytes(bytes(range(256)) * 4 if damage == "random bytes" else whole[: len(whole) // 2])
    runs = tmp_path / "runs"  # not there yet: made only for an archive that was read
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--take-back", str(packed), "--runs", str(runs)])
    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and lines[1:] == [POINTER], lines
    assert f": error: {packed_run} cannot be read as a packed run (" in lines[0], lines
    assert lines[0].endswith("); not unpacked.")
    assert not runs.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["gpu", "packed"]


def test_take_back_on_a_python_without_tarfiles_filters_is_refused_naming_the_versions_that_have_them(
    tmp_path, monkeypatch
):
    packed = archive.pack(_run_folder(tmp_path / "a" / "b-seed0", epochs=1), tmp_path)
    monkeypatch.delattr(tarfile, "data_filter")  # Python before 3.10.12 / 3.11.4: extractall(filter=) fails
    with pytest.raises(ValueError, match=r"b-seed0.tar.gz: .*needs tarfile's extraction filters.*3\.10\.12"):
        archive.take_back(packed, tmp_path / "runs")
    assert not (tmp_path / "runs" / "b-seed0").exists()


def test_take_back_into_runs_under_a_file_is_one_error_line(tmp_path, capsys):
    packed = tmp_path / "packed"
    packed.mkdir()
    archive.pack(_run_folder(tmp_path / "gpu" / "a-seed0", epochs=5), packed)
    (tmp_path / "notes").write_text("a file where --runs would be made")
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--take-back", str(packed), "--runs", str(tmp_path / "notes" / "runs")])
    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and lines[1:] == [POINTER], lines
    notes = tmp_path / "notes"
    assert f"cannot write to the folder of runs {notes / 'runs'}: {notes} is not a folder" in lines[0], lines


def test_resume_finishes_the_runs_packed_there_and_refuses_a_missing_one_before_anything_starts(
    tmp_path, capsys, folder, monkeypatch
):
    """Without --run-ids, --resume takes the runs packed in its folder (carried back, or packed by --pack on
    the queue's machine), not the queue's next unfinished ones."""
    out, packed, queued, runs = tmp_path / "out", tmp_path / "packed", _queue(tmp_path), tmp_path / "runs"
    packed.mkdir()
    first, second = (item.run_id for item in gpu_pair.chosen_runs(queued, None, 2))  # the first is packed
    archive.pack(_run_folder(tmp_path / "gpu" / first, epochs=1), packed)

    def resume(where: Path, *flags: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            gpu_pair.main(["--queue", str(queued), "--out", str(out), "--commit", "abc", "--runs", str(runs),
                           "--dataset", str(folder), "--resume", str(where), *flags])  # fmt: skip
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "Traceback" not in err and not runs.exists(), err
        return err

    assert "no such packed run" in resume(packed, "--run-ids", first, second)
    (tmp_path / "empty").mkdir()
    assert "no <run id>.tar.gz there" in resume(tmp_path / "empty")
    assert f"no <run id>.tar.gz there (give its folder, {packed})" in resume(packed / f"{first}.tar.gz")
    taken = []

    def stop_at_take_back(archives: list[Path], _runs: Path, p) -> None:  # the archives it was given
        taken.extend(archives)
        p.error("stopped before the take-back")

    monkeypatch.setattr(gpu_pair, "take_back_all", stop_at_take_back)
    resume(packed)
    assert taken == [packed / f"{first}.tar.gz"]  # not the queue's next two, [first, second]
    archive.pack(_run_folder(tmp_path / "gpu" / "other-seed0", epochs=1), packed)  # packed, not queued
    assert f"not in {queued}: ['other-seed0']" in resume(packed)
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "0"], "--count must be >= 1; received 0"),
        (["--count", "1", "--run-ids", "resnet20_21-seed1"], "--count does not go with --run-ids, which"),
        (["--count", "2", "--resume", "{tmp}/p"], "--count does not go with --resume, which take the runs"),
        (["--run-ids", "resnet20_21-seed1", "resnet20_21-seed1"], "a run is named twice"),
        (["--run-ids", "nope-seed0"], "not in"),
        (["--deadline-s", "10"], "--deadline-s must be > 10 (seconds from the start, the last 10 of them"),
        (["--out", "{tmp}/q.json"], "cannot write to the --out folder {tmp}/q.json: {tmp}/q.json is not a"),
        (["--runs", "{tmp}/q.json"], "cannot write to the folder of runs {tmp}/q.json: {tmp}/q.json is not"),
        (["--steps-per-execution", "0"], "steps_per_execution must be >= 1"),
        (["--train-subset", "0"], "train_subset must be >= 1"),
        (["--dataset", "{tmp}/none"], "is neither a known tensorflow-datasets name"),
        (["--pack", "{tmp}/carry"], "--pack and --out and --commit and --dataset do not go together"),
        (["--take-back", "{tmp}/x"], "--take-back and --out and --commit and --dataset do not go together"),
        (["--pack", "{tmp}/c", "--resume", "{tmp}/p"], "--pack and --out and --commit and --resume and"),
        (["--take-back", "{tmp}/x", "--pack", "{tmp}/c"], "--take-back and --pack and --out and --commit"),
        (["--resume", " "], "--resume must name a folder; received an empty or blank path"),
        (["--runs", ""], "--runs must name a folder"),
        (["--queue", " "], "argument --queue: ' ' names no file or folder (it is empty or blank)"),
        (["--float16"], "--float16 goes with --pack"),
    ],
)
def test_bad_flags_are_refused_before_anything_starts(tmp_path, capsys, folder, flags, message):
    out, runs = tmp_path / "out", tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--queue", str(_queue(tmp_path)), "--out", str(out), "--commit", "abc",
                       "--runs", str(runs), "--dataset", str(folder),
                       *[flag.format(tmp=tmp_path) for flag in flags]])  # fmt: skip
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message.format(tmp=tmp_path) in err and "Traceback" not in err, err
    assert not out.exists() and not runs.exists()


WHEELS = 2_897_577  # keras 3.15.1, namex and optree as ../shared/tools/gpu-prep downloads them (2026-12-02)


def test_what_a_lent_gpu_window_carries_fits(shared_data, tmp_path):
    """The tracked tree stays under 45 MB, and with the data archives and the wheels under the 64 MiB a
    device call carries."""
    tracked = gpu_pair.carried_bytes(tmp_path)["working tree"]  # what --pack reports; untracked files too
    archives = sum(path.stat().st_size for path in Path(shared_data).glob("*.tar.gz"))
    assert tracked < gpu_pair.TREE_LIMIT, f"the tracked tree is {tracked / 1e6:.1f} MB"
    assert tracked + archives + WHEELS < 64 * 2**20, f"{(tracked + archives + WHEELS) / 2**20:.1f} MiB travel"


def _arrays(path: Path, group: str) -> dict[str, np.ndarray]:
    """The arrays under ``group`` of a Keras weights file, by their path in it."""
    with h5py.File(path, "r") as f:
        names = []
        f[group].visit(names.append)
        return {name: f[group][name][()] for name in names if isinstance(f[group][name], h5py.Dataset)}


def test_a_float16_pack_resumes_at_the_same_step_with_the_weights_rounded_and_the_momentum_restarted(
    folder, tmp_path
):
    """--pack --float16 (to commit a cut-off run): the checkpoint's weights in float16, its momentum zeros,
    its step count kept; taken back elsewhere, the run resumes from it (here: its last epoch was done, so
    the resume ends it with the packed weights)."""
    run = tmp_path / "runs" / "resnet8_21-seed0"
    train.run(train.TrainConfig(model="resnet8_21", dataset=str(folder), out=str(run), epochs=1, batch_size=4,
                                verbose=0))  # fmt: skip
    for name in ("result.json", "model.weights.h5"):  # cut off after the epoch's backup
        (run / name).unlink()
    full = archive.backup_checkpoint(run)
    out = tmp_path / "packed"
    out.mkdir()
    with tarfile.open(archive.pack(run, out, float16=True)) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    half = tmp_path / "unpacked" / run.name / "backup" / full.name
    assert half.stat().st_size < full.stat().st_size / 2.5
    model, packed = _arrays(full, "layers"), _arrays(half, "layers")
    assert model.keys() == packed.keys() and all(a.dtype == np.float16 for a in packed.values())
    optimizer, restarted = _arrays(full, "optimizer"), _arrays(half, "optimizer")
    assert optimizer.keys() == restarted.keys()
    moments = [name for name, array in optimizer.items() if array.ndim]
    assert moments and not any(restarted[name].any() for name in moments)
    assert [restarted[name] for name in optimizer if name not in moments] == [
        optimizer[name] for name in optimizer if name not in moments]  # the step count  # fmt: skip
    assert "momentum restarted" in (tmp_path / "unpacked" / run.name / "train.log").read_text()

    runs = tmp_path / "elsewhere"
    assert archive.take_back(out / f"{run.name}.tar.gz", runs) == run.name
    result = train.run(train.TrainConfig(model="resnet8_21", dataset=str(folder), out=str(runs / run.name),
                                         epochs=1, batch_size=4, verbose=0))  # fmt: skip
    assert result["epochs_completed"] == 1
    final = _arrays(runs / run.name / "model.weights.h5", "layers")
    assert final.keys() == model.keys()
    for name, array in model.items():
        np.testing.assert_array_equal(final[name], array.astype(np.float16).astype(array.dtype))


def test_a_run_with_a_weight_average_is_not_packed_in_float16(tmp_path):
    run = _run_folder(tmp_path / "runs" / "a-seed0", epochs=2)
    (run / "config.json").write_text(json.dumps({"epochs": 30, "ema": 0.999}))
    with pytest.raises(ValueError, match="trained with --ema"):
        archive.pack(run, tmp_path, float16=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no archive


@pytest.mark.parametrize("mode", ["--take-back", "--pack"])
def test_a_training_setting_beside_take_back_or_pack_is_refused_not_ignored(tmp_path, capsys, mode):
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main([mode, str(tmp_path / "x"), "--runs", str(tmp_path / "runs"), "--deadline-s", "30"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{mode} and --deadline-s do not go together" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_queue_beside_take_back_is_refused_not_ignored(tmp_path, capsys):
    """A take-back unpacks what its folder holds; a --queue (even one that is not there) was taken, unread."""
    packed = tmp_path / "packed"
    packed.mkdir()
    archive.pack(_run_folder(tmp_path / "gpu" / "a-seed0", epochs=5), packed)
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--take-back", str(packed), "--runs", str(tmp_path / "runs"),
                       "--queue", str(tmp_path / "none.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--queue does not go with --take-back" in err, err
    assert not (tmp_path / "runs").exists()


def test_take_back_of_chosen_runs_leaves_the_others_packed_there(tmp_path, capsys):
    packed, runs = tmp_path / "packed", tmp_path / "runs"
    packed.mkdir()
    for run_id in ("a-seed0", "b-seed0"):
        archive.pack(_run_folder(tmp_path / "gpu" / run_id, epochs=5), packed)
    assert gpu_pair.main(["--take-back", str(packed), "--run-ids", "b-seed0", "--runs", str(runs)]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["b-seed0"]
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(["--take-back", str(packed), "--run-ids", "c-seed0", "--runs", str(runs)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"no such packed run: {packed / 'c-seed0.tar.gz'}" in err
    elsewhere = tmp_path / "elsewhere"  # a run id naming an archive of another folder
    elsewhere.mkdir()
    archive.pack(_run_folder(tmp_path / "gpu2" / "d-seed0", epochs=5), elsewhere)
    for refused, said in ((["--run-ids", "../elsewhere/d-seed0"], "'../elsewhere/d-seed0' is no run id"),
                          ([], f"no <run id>.tar.gz there (give its folder, {packed})")):  # fmt: skip
        where = str(packed) if refused else str(packed / "a-seed0.tar.gz")  # the archive, not its folder
        with pytest.raises(SystemExit) as exit_info:
            gpu_pair.main(["--take-back", where, *refused, "--runs", str(runs)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and said in err and "Traceback" not in err, err
    assert sorted(p.name for p in runs.iterdir()) == ["b-seed0"]


def test_a_float16_pack_says_what_the_tracked_tree_would_hold_and_refuses_past_its_limit(
    tmp_path, capsys, monkeypatch
):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setattr(gpu_pair, "ROOT", tmp_path.resolve())
    queued, runs, kept = _queue(tmp_path), tmp_path / "runs", tmp_path / "kept"
    run = _run_folder(runs / "resnet20_21-seed0", epochs=3)
    with h5py.File(run / "backup" / "ckpt-000003.weights.h5", "w") as f:  # a Keras weights file, in small
        f["layers/dense/vars/0"] = np.ones((4, 4), np.float32)
        f["optimizer/vars/0"] = np.int64(12)  # the step count
        f["optimizer/vars/1"] = np.ones((4, 4), np.float32)  # momentum
    command = ["--pack", str(kept), "--float16", "--runs", str(runs), "--queue", str(queued), "--run-ids",
               "resnet20_21-seed0"]  # fmt: skip
    monkeypatch.setattr(gpu_pair, "TREE_LIMIT", 1000)
    with pytest.raises(SystemExit) as exit_info:
        gpu_pair.main(command)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "more than the 0 MB it keeps under: not packed" in err, err
    assert not kept.exists()
    monkeypatch.setattr(gpu_pair, "TREE_LIMIT", 45e6)
    assert gpu_pair.main(command) == 0
    out = capsys.readouterr().out
    assert "commit it: git add kept/resnet20_21-seed0.tar.gz" in out and "device call" not in out, out


def test_a_float16_pack_of_a_finished_run_holds_its_weights_as_the_zoo_stores_them(tmp_path):
    run = _run_folder(tmp_path / "runs" / "a-seed0", epochs=5, finished=True)
    with h5py.File(run / "model.weights.h5", "w") as f:
        f["layers/dense/vars/0"] = np.full((4, 4), 0.1, np.float32)
    with tarfile.open(archive.pack(run, tmp_path, float16=True)) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = tmp_path / "unpacked" / "a-seed0"
    weights = _arrays(unpacked / "model.weights.h5", "layers")
    assert list(weights) == ["dense/vars/0"] and weights["dense/vars/0"].dtype == np.float16
    np.testing.assert_array_equal(weights["dense/vars/0"], np.full((4, 4), 0.1, np.float16))
    assert "final weights in float16" in (unpacked / "train.log").read_text()
    assert not (unpacked / "backup").exists() and (unpacked / "result.json").is_file()
