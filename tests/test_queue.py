"""The training queue: data in a file, checked up front, trained in order, skipped when finished, reported."""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import os
import shutil
import socket
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURE_ZOO

from relu_ratio import files, queue, train, zoo
from relu_ratio.train import archive
from relu_ratio.train.record import drop_epochs_from

REPO_QUEUE = Path(__file__).parent.parent / "training" / "queue.json"


def write_queue(path: Path, runs, defaults=None) -> Path:
    path.write_text(json.dumps({"defaults": defaults or {}, "runs": runs}))
    return path


def test_the_repository_queue_is_valid_and_ordered():
    runs = queue.load(REPO_QUEUE)
    ids = [r.run_id for r in runs]
    assert ids[:2] == ["resnet20_11-seed0", "resnet20_21-seed0"]
    assert ids.index("preact164_32-seed0") < ids.index("preact164_11-seed0") < ids.index("resnet20_11-seed1")
    # the paper's networks at 30 epochs, then the flagship at 100, then the ResNet-20 pair at 200
    assert ids.index("preact164_type2-seed0") < ids.index("dfnmr110_type2-seed0")
    assert ids.index("dfnmr110_type2-seed0") < ids.index("preact164_32.long-seed0")
    assert ids.index("preact164_11.long-seed0") < ids.index("resnet20_21.long-seed0")
    # "auto" precision is safe to queue: a cut-off run resumes in the precision it started in (test_train)
    registered = [r.name for r in runs if r.register]
    assert len(registered) == len(set(registered))  # one zoo entry per name


@pytest.mark.parametrize(
    ("runs", "defaults", "message"),
    [
        ([{"model": "resnet20_21", "epoch": 3}], {}, r"setting\(s\) \['epoch'\] \(did you mean 'epochs'"),
        ([{"model": "resnet21_21"}], {}, r"run 1 .*depth 21 is not valid"),
        ([{"model": "resnet20_21", "seed": -1}], {}, r"run 1 .*: seed must be an integer in \[0, 2\*\*32"),
        ([{"model": "resnet20_21"}, {"model": "resnet20_21"}], {}, "queued twice"),
        ([{"model": "resnet8_11"}, {"model": "resnet8_paired"}], {},
         r"run 2 .*resnet8_paired-seed0 trains the network of resnet8_11-seed0 .* queued twice"),
        ([{"model": "resnet20_21", "tag": "Long"}], {}, "tag must be lower-case letters, digits and '_'"),
        ([{"model": "resnet20_21", "tag": ""}], {}, r"received ''"),
        ([{"model": "resnet20_21"}], {"recipe": "slow"}, "recipe must be one of"),
        ([{"model": "resnet20_21"}], {"out": "x"}, r"defaults sets \['out'\]: a queued run's folder is <--"),
        ([{"model": "resnet20_21", "dataset": "x"}], {}, r"run 1 .* sets \['dataset'\]: .*queue run's"),
        ([], {}, "non-empty list 'runs'"),
        ([{"model": "resnet20_21"}], {"nesterov": "false"}, r"nesterov must be true or false .*'false'"),
        ([{"model": "resnet20_21", "distribute": "no"}], {}, r"run 1 .*distribute must be true or false"),
        ([{"model": "resnet20_21", "register": "false"}], {}, r"run 1 .*register must be true or false"),
        ([{"model": "resnet20_21", "verbose": 9}], {}, r"verbose must be one of \[0, 1, 2\]; received 9"),
        ([{"model": "resnet20_21", "data_dir": 7}], {}, "data_dir must be a string or None"),
        ([{"model": "resnet20_21", "why": 3}], {}, "why must be a string; received 3"),
    ],
)
def test_bad_queues_are_refused_before_anything_trains(tmp_path, runs, defaults, message):
    with pytest.raises(ValueError, match=message):
        queue.load(write_queue(tmp_path / "q.json", runs, defaults))


def test_a_misspelt_key_of_the_queue_file_is_refused(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"default": {"epochs": 1}, "runs": [{"model": "resnet20_21"}]}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['default'\] \(did you mean 'def"):
        queue.load(path)


@pytest.mark.parametrize(
    ("text", "said"),
    [('{"runs": [{"model": "resnet8_21"}], "runs": [{"model": "resnet8_11"}]}', "'runs' given twice in one"),
     ('{"runs": [{"model": "resnet8_21", "epochs": 3, "epochs": 30}]}', "'epochs' given twice in one"),
     ("[" * 100_000, "maximum recursion depth")],  # was a RecursionError's traceback
)  # fmt: skip
def test_a_key_given_twice_or_json_nested_too_deep_in_the_queue_file_is_refused(tmp_path, text, said):
    path = tmp_path / "q.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"cannot read the queue .*: " + said):
        queue.load(path)


@pytest.mark.parametrize("target", ["q.json", "q.finished.json"])
def test_status_never_writes_its_record_over_the_queue_or_its_finished_runs(tmp_path, capsys, target):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}])
    (tmp_path / "q.finished.json").write_text('{"runs": {}}')
    before = (tmp_path / target).read_text()
    argv = ["status", str(path), "--runs", str(tmp_path / "runs"), "--write", str(tmp_path / target)]
    assert queue.main(argv) == 2
    assert f"--write '{tmp_path / target}' is " in capsys.readouterr().err
    assert (tmp_path / target).read_text() == before


def test_status_writes_none_of_its_files_where_one_of_their_folders_is_not_writable(
    tmp_path, capsys, monkeypatch
):
    """The progress record, the record of finished runs (beside the queue) and the seeds page: each folder is
    checked before the first is written (simulated: CI runs as root, whom permissions do not stop)."""
    (tmp_path / "q").mkdir()
    path = write_queue(tmp_path / "q" / "q.json", [{"model": "resnet8_21"}])
    record = tmp_path / "PROGRESS.md"
    access = os.access
    monkeypatch.setattr(os, "access", lambda where, mode: Path(where) != path.parent and access(where, mode))
    argv = ["status", str(path), "--runs", str(tmp_path / "runs"), "--write", str(record)]
    assert queue.main(argv) == 2
    err = capsys.readouterr().err
    assert f"folder of the record of finished runs {path.parent}: {path.parent} is not writable" in err
    assert not record.exists() and sorted(p.name for p in path.parent.iterdir()) == ["q.json"]


def test_status_writes_its_record_into_a_new_folder_and_removes_it_when_the_write_fails(
    tmp_path, capsys, monkeypatch
):
    """The folder passed the check (it can be made) and the write then failed with Python's message."""
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}])
    status = ["status", str(path), "--runs", str(tmp_path / "runs"), "--write"]

    def disk_full(target, content, durable=False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(target))

    with monkeypatch.context() as patched:
        patched.setattr(files, "write_atomic", disk_full)
        assert queue.main([*status, str(tmp_path / "full" / "folder" / "PROGRESS.md")]) == 2
    assert "No space left on device" in capsys.readouterr().err and not (tmp_path / "full").exists()
    record = tmp_path / "new" / "folder" / "PROGRESS.md"
    assert queue.main([*status, str(record)]) == 0
    assert record.read_text().startswith(queue.PROGRESS_TITLE)


def test_status_never_writes_its_record_over_a_file_that_is_not_one(tmp_path, capsys):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}])
    notes = tmp_path / "notes.md"
    notes.write_text("my precious notes\n")
    argv = ["status", str(path), "--runs", str(tmp_path / "runs"), "--write", str(notes)]
    assert queue.main(argv) == 2
    assert "is a file that is not a progress record (never overwritten)" in capsys.readouterr().err
    assert notes.read_text() == "my precious notes\n"
    os.mkfifo(tmp_path / "pipe")  # not read (it waited for a writer)
    pipe = ["status", str(path), "--runs", str(tmp_path / "runs"), "--write", str(tmp_path / "pipe")]
    assert queue.main(pipe) == 2 and "is a file that is not a progress record" in capsys.readouterr().err
    notes.unlink()  # a new file, then the record it wrote, are written
    assert queue.main(argv) == 0 and queue.main(argv) == 0
    assert notes.read_text().startswith(queue.PROGRESS_TITLE)
    for record in ("", notes.read_text().replace("\n", "\r\n")):  # an empty file, a record with CRLF
        notes.write_bytes(record.encode())
        assert queue.main(argv) == 0 and notes.read_text().startswith(queue.PROGRESS_TITLE)


def test_a_runs_folder_that_is_a_file_is_refused_and_a_missing_one_is_named(tmp_path, capsys):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}])
    (tmp_path / "afile").write_text("")
    for command in ("status", "run"):
        assert queue.main([command, str(path), "--runs", str(tmp_path / "afile")]) == 2
        assert "is a file, not the folder of the run folders" in capsys.readouterr().err
    assert queue.main(["status", str(path), "--runs", str(tmp_path / "typo")]) == 0
    assert "does not exist: no queued run has started there" in capsys.readouterr().err


def test_ctrl_c_during_run_ends_with_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    """It printed a traceback from inside Keras; now it says how the queue goes on."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(queue, "run", interrupted)
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}])
    assert queue.main(["run", str(path), "--runs", str(tmp_path / "runs")]) == 130
    assert capsys.readouterr().err == (
        "interrupted: the same command goes on with the queue: finished runs are skipped, the cut-off run "
        f"resumes from its last backup in {tmp_path / 'runs'}.\n"
    )


@pytest.mark.parametrize(
    ("dataset", "said"),
    [("nothing", "is neither a known tensorflow-datasets name"),
     ("q.json", "cannot read archive {tmp}/q.json: ")],  # a file that is no archive: not a failure per run
)  # fmt: skip
def test_a_missing_dataset_is_refused_once_before_any_run_folder(tmp_path, capsys, dataset, said):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}, {"model": "resnet8_11"}])
    runs = tmp_path / "runs"
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(tmp_path / dataset)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and said.format(tmp=tmp_path) in err, err
    assert not runs.exists()


def test_a_data_dir_is_queued_for_a_tfds_dataset_and_refused_for_a_folder(folder, tmp_path, capsys):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}, {"model": "resnet8_paired", "seed": 1}],
                       {"data_dir": str(tmp_path / "tfds")})  # fmt: skip
    assert [run.settings["data_dir"] for run in queue.load(path)] == [str(tmp_path / "tfds")] * 2
    runs = tmp_path / "runs"
    for run in queue.load(path):  # a tensorflow-datasets name: each run's config keeps it
        assert run.config(runs, "cifar10").resolved().data_dir == str(tmp_path / "tfds")
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resnet8_21-seed0: data_dir (") and "Drop data_dir" in err
    assert not runs.exists()


def test_cli_error_is_one_line_without_traceback(tmp_path, capsys):
    assert queue.main(["status", str(tmp_path / "missing.json"), "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read the queue") and "Traceback" not in err


def test_queue_trains_in_order_skips_finished_runs_and_reports(folder, tmp_path, capsys, monkeypatch):
    path = write_queue(
        tmp_path / "q.json",
        [{"model": "resnet8_21", "register": True, "why": "first"}, {"model": "resnet8_11", "seed": 1}],
        {"recipe": "fast", "epochs": 1, "batch_size": 4, "mixed_precision": "off", "verbose": 0},
    )
    runs = tmp_path / "runs"
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(folder)]) == 0
    assert (runs / "resnet8_21-seed0" / "result.json").is_file()
    assert (runs / "resnet8_11-seed1" / "result.json").is_file()
    capsys.readouterr()
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(folder)]) == 0
    assert capsys.readouterr().out.count("finished, skipped") == 2
    record = tmp_path / "PROGRESS.md"
    assert queue.main(["status", str(path), "--runs", str(runs), "--write", str(record)]) == 0
    text = record.read_text()
    assert text.endswith(f" UTC by `python -m relu_ratio.queue status {path} --runs {runs} --write {record}` "
                         f"on {train.device()}.\n")  # the command as given (it said `--write ...` always)
    assert "| 1 | `resnet8_21-seed0` (zoo entry) | finished | 1/1 |" in text
    assert "| 2 | `resnet8_11-seed1` | finished | 1/1 |" in text
    assert "2 of 2 runs finished" in text
    assert f"Where the training queue `{path}` stands" in text
    assert "Test top-1 is on the ds test split" in text
    progress = queue.progress(queue.load(path), runs)
    assert all(p.cpu_hours > 0 and p.wall_hours > 0 for p in progress)
    # another machine, a fresh clone: no run folders, only the committed record of finished runs (and the
    # zoo entry registered from the zoo run, which else would train again: test below)
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(tmp_path / "store"))
    zoo.register(runs / "resnet8_21-seed0")
    recorded = tmp_path / "q.finished.json"
    assert set(json.loads(recorded.read_text())["runs"]) == {"resnet8_21-seed0", "resnet8_11-seed1"}
    capsys.readouterr()
    elsewhere = tmp_path / "other-machine"
    assert queue.main(["run", str(path), "--runs", str(elsewhere), "--dataset", str(folder)]) == 0
    assert capsys.readouterr().out.count(f"finished (recorded in {recorded}), skipped") == 2
    assert not elsewhere.exists() or not any(elsewhere.iterdir())  # nothing trained again
    assert queue.main(["status", str(path), "--runs", str(elsewhere), "--write", str(record)]) == 0
    said = f"2 of 2 runs finished (2 of them from the record of finished runs `{recorded}`, not from folders "
    assert record.read_text().split("Generated")[0] == text.split("Generated")[0].replace(
        "2 of 2 runs finished", f"{said}under `{elsewhere}`)")  # it did not say where they came from
    assert set(json.loads(recorded.read_text())["runs"]) == {"resnet8_21-seed0", "resnet8_11-seed1"}
    capsys.readouterr()
    assert queue.main(["status", str(path), "--runs", str(elsewhere)]) == 0
    assert f"by `python -m relu_ratio.queue status {path} --runs {elsewhere}` on " in capsys.readouterr().out


def test_a_zoo_run_recorded_as_finished_trains_again_until_an_entry_is_registered_from_it(
    folder, tmp_path, capsys, monkeypatch
):
    """Its weights were in its folder: without the folder and an entry, there is nothing to register."""
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(tmp_path / "store"))
    path = write_queue(
        tmp_path / "q.json", [{"model": "resnet8_21", "register": True}, {"model": "resnet8_11"}],
        {"recipe": "fast", "epochs": 1, "batch_size": 4, "mixed_precision": "off", "verbose": 0},
    )  # fmt: skip
    runs, elsewhere, third = tmp_path / "runs", tmp_path / "other-machine", tmp_path / "third-machine"
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(folder)]) == 0
    assert queue.main(["status", str(path), "--runs", str(runs), "--write", str(tmp_path / "P.md")]) == 0
    capsys.readouterr()
    assert queue.main(["run", str(path), "--runs", str(elsewhere), "--dataset", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (f"resnet8_21-seed0: recorded as finished in {tmp_path / 'q.finished.json'}, but its weights are "
            "neither in its folder here nor in a zoo entry registered from it: training it again") in out
    assert (elsewhere / "resnet8_21-seed0" / "result.json").is_file()
    assert "resnet8_11-seed0: finished (recorded in" in out and not (elsewhere / "resnet8_11-seed0").exists()
    queued, finished = queue.load(path), queue.read_record(tmp_path / "q.finished.json").runs
    rows = queue.progress(queued, third, finished)
    assert [row.state for row in rows] == ["waiting", "finished"] and not rows[1].lost
    top1 = 100 * json.loads((runs / "resnet8_21-seed0" / "result.json").read_text())["test_top1"]
    record = queue.markdown(rows, "q.json", "runs")
    assert ("| waiting (trained again: its recorded finished run has no weights here and no zoo entry) (1 "
            f"earlier attempt(s), in the totals: {top1:.2f} %, ") in record  # its hours were spent: counted
    assert "hours of 1 earlier attempt(s) of runs trained again" in record and "not counted" not in record
    zoo.register(runs / "resnet8_21-seed0")  # an entry registered from the run: the record counts again
    (tmp_path / "store" / "damaged").mkdir()  # an entry that cannot be read stands for no run, stops nothing
    (tmp_path / "store" / "damaged" / "metadata.json").write_text("{broken")
    assert [row.state for row in queue.progress(queued, third, finished)] == ["finished", "finished"]
    recorded = finished["resnet8_21-seed0"]  # another run trained in a folder of that name is not the entry's
    other = dataclasses.replace(recorded, result={**recorded.result, "test_top1": 0.125})
    assert queue.progress(queued, third, {**finished, "resnet8_21-seed0": other})[0].state == "waiting"
    # the shipped store's entries count with $RELU_RATIO_ZOO set to another store
    shipped = queue.read_record(queue.finished_path(REPO_QUEUE)).runs
    repo = queue.progress(queue.load(REPO_QUEUE), third, shipped)
    assert repo[0].run.run_id == "resnet20_11-seed0" and repo[0].state == "finished"


def test_only_an_entry_that_follows_the_zoo_schema_stands_for_a_registered_run(tmp_path, monkeypatch):
    """The queue reads the entries as the zoo does (schema-checked): a metadata.json that is JSON with a
    training record, but no entry (a key missing), stands for no run."""
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(tmp_path / "store"))
    entry = tmp_path / "store" / "resnet8_21"
    entry.mkdir(parents=True)
    metadata = json.loads((Path(FIXTURE_ZOO) / "resnet8_21" / "metadata.json").read_text())
    (entry / "metadata.json").write_text(json.dumps(metadata))
    run_id, result = Path(metadata["training"]["config"]["out"]).name, metadata["training"]["result"]
    assert queue.registered(run_id, result)
    del metadata["params"]
    (entry / "metadata.json").write_text(json.dumps(metadata))
    assert not queue.registered(run_id, result)


@pytest.mark.parametrize(
    ("row", "said"),
    [([1], "resnet8_21-seed0: [1] is not an object holding the run's config and result"),
     ({"config": {}, "result": {"epochs_completed": 3, "test_top1": [1]}}, "'test_top1' is [1], not int or"),
     ({"config": {}, "result": {"epochs_completed": 3, "test_top1": 0.5, "devices": {"gpu": "x"}}},
      "'devices' holds 'gpu': 'x', not wall_time_s"),
     ({"config": {}, "result": {"test_top1": 0.5}}, "resnet8_21-seed0: its result: lacks 'epochs_comp"),
     ({"config": {}, "result": {"evaluated_on": 5}}, "its result: 'evaluated_on' is 5, not str"),
     ({"config": {}, "result": {}, "earlier_attempts": {}}, "seed0: its earlier_attempts {} is not a list"),
     ({"config": {}, "result": {}, "earlier_attempts": [{"config": {}, "result": {"test_top1": 0.5}}]},
      "resnet8_21-seed0, earlier attempt 1: its result: lacks 'epochs_comp")],
)  # fmt: skip
def test_a_damaged_record_of_finished_runs_is_named(tmp_path, capsys, row, said):
    """Each run's result is checked as a run folder's result.json is (a wrong type was a traceback)."""
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}])
    (tmp_path / "q.finished.json").write_text(json.dumps({"runs": {"resnet8_21-seed0": row}}))
    assert queue.main(["status", str(path), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "cannot read the record of finished runs" in err and said in err and "Traceback" not in err, err


GPU_THEN_CPU = {"gpu: H200 x1": {"wall_time_s": 360.0, "cpu_time_s": 720.0},
                "cpu: 2 cores": {"wall_time_s": 1800.0, "cpu_time_s": 3600.0}}  # fmt: skip


def _attempt(dataset: Path, path: Path, runs: Path, **result) -> None:
    """A finished attempt of the one run queued in ``path``, in ``runs``, recorded by ``status --write``:
    80 % after 0.10 wall h / 0.20 CPU h on the CPU, unless ``result`` says otherwise."""
    (item,) = queue.load(path)
    _trained_elsewhere(runs, item, result.pop("device", "cpu: 2 cores"), dataset.name)
    done = json.loads((runs / item.run_id / "result.json").read_text())
    (runs / item.run_id / "result.json").write_text(json.dumps({**done, **result}))
    assert queue.main(["status", str(path), "--runs", str(runs), "--write", str(path.with_name("P.md"))]) == 0


def _first_attempt(dataset: Path, path: Path, runs: Path) -> None:
    """90 % after 0.60 wall h / 1.20 CPU h, 0.10 / 0.20 of them on a lent GPU."""
    _attempt(dataset, path, runs, device=" + ".join(GPU_THEN_CPU), devices=GPU_THEN_CPU, test_top1=0.9,
             wall_time_s=2160.0, cpu_time_s=4320.0)  # fmt: skip


def test_a_run_recorded_again_with_another_result_keeps_the_attempts_it_replaces(folder, tmp_path):
    """A finished run recorded again with another result (its folder lost, trained again) keeps the attempt
    it replaces in its row of the record of finished runs, each attempt once (recorded again, none added)."""
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21", "epochs": 10}], {"recipe": "fast"})
    recorded = tmp_path / "q.finished.json"
    _first_attempt(folder, path, tmp_path / "first")
    first = json.loads(recorded.read_text())["runs"]["resnet20_21-seed0"]
    assert "earlier_attempts" not in first
    _attempt(folder, path, tmp_path / "again")
    row = json.loads(recorded.read_text())["runs"]["resnet20_21-seed0"]
    assert row["result"]["test_top1"] == 0.8 and row["earlier_attempts"] == [first]
    status_again = ["status", str(path), "--runs", str(tmp_path / "again"), "--write", str(tmp_path / "P.md")]
    assert queue.main(status_again) == 0
    assert json.loads(recorded.read_text())["runs"]["resnet20_21-seed0"] == row  # the same attempt: no change
    _attempt(folder, path, tmp_path / "third", test_top1=0.85)
    third = json.loads(recorded.read_text())["runs"]["resnet20_21-seed0"]
    assert third["earlier_attempts"] == [first, {"config": row["config"], "result": row["result"]}]
    earlier = queue.read_record(recorded).earlier["resnet20_21-seed0"]
    assert [attempt.result["test_top1"] for attempt in earlier] == [0.9, 0.8]


def test_status_counts_the_hours_of_a_runs_earlier_attempts(folder, tmp_path):
    """In the first record written after a run finished again (its recorded attempt not yet moved), and
    where no run folder is, by device; each run's row names them."""
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21", "epochs": 10}], {"recipe": "fast"})
    recorded, progress = tmp_path / "q.finished.json", tmp_path / "P.md"
    _first_attempt(folder, path, tmp_path / "first")
    _attempt(folder, path, tmp_path / "again")
    text = progress.read_text()
    assert "1 of 1 runs finished; 0.60 wall-clock hours and 1.20 CPU hours spent on CPUs (CPU hours: " in text
    assert ("0.10 wall-clock hours by 1 run(s) on a lent GPU (their host CPU time: 0.20 hours); counted in "
            "these: 0.60 wall-clock and 1.20 CPU hours of 1 earlier attempt(s) of runs trained again") in text
    assert ("| finished (1 earlier attempt(s), in the totals: 90.00 %, 0.60 wall h / 1.20 CPU h) | 10/10 | "
            "80.00 | 0.10 | 0.20 |") in text  # fmt: skip
    _attempt(folder, path, tmp_path / "third", test_top1=0.85)
    bare = tmp_path / "bare"  # another machine: no run folder, the record alone
    assert queue.main(["status", str(path), "--runs", str(bare), "--write", str(progress)]) == 0
    text = progress.read_text()
    attempts = "90.00 %, 0.60 wall h / 1.20 CPU h; 80.00 %, 0.10 wall h / 0.20 CPU h"
    assert f"| finished (2 earlier attempt(s), in the totals: {attempts}) | 10/10 | 85.00 | 0.10 |" in text
    assert "0.70 wall-clock hours and 1.40 CPU hours spent on CPUs" in text
    assert "counted in these: 0.70 wall-clock and 1.40 CPU hours of 2 earlier attempt(s)" in text
    finished, earlier = queue.read_record(recorded)
    (row,) = queue.progress(queue.load(path), bare, finished, earlier)
    assert row.hours(on_gpu=True) == pytest.approx((0.1, 0.2))
    assert row.hours(on_gpu=False) == pytest.approx((0.7, 1.4))


def test_status_of_runs_not_started_or_cut_off(tmp_path):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21", "epochs": 10}], {"recipe": "fast"})
    out = tmp_path / "runs" / "resnet20_21-seed0"
    out.mkdir(parents=True)
    (out / "metrics.csv").write_text("epoch,val_accuracy\n0,0.5\n1,0.625\n")
    (out / "progress.json").write_text(json.dumps({"wall_time_s": 720.0, "cpu_time_s": 1400.0}))
    (row,) = queue.progress(queue.load(path), tmp_path / "runs")
    assert (row.state, row.epochs_done, row.epochs, row.top1) == ("partial", 2, 10, 62.5)
    assert row.hours_left == pytest.approx(0.2 / 2 * 8)
    text = queue.markdown([row], "q.json", "runs")
    assert "| partial | 2/10 | 62.50 (so far) | 0.20 | 0.39 | 0.8 |" in text
    # its time recorded at a backup 3 tenths into epoch 3: the pace counts those batches too
    (out / "progress.json").write_text(json.dumps({"wall_time_s": 828.0, "cpu_time_s": 1610.0,
                                                   "epochs_trained": 2.3}))  # fmt: skip
    (row,) = queue.progress(queue.load(path), tmp_path / "runs")
    assert row.epochs_done == 2 and row.hours_left == pytest.approx(0.23 / 2.3 * 7.7)


def test_a_run_scored_on_held_out_training_images_is_marked_holdout(tmp_path):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21", "epochs": 10, "holdout": 5000}],
                       {"recipe": "fast"})  # fmt: skip
    out = tmp_path / "runs" / "resnet20_21-seed0"
    out.mkdir(parents=True)
    (out / "metrics.csv").write_text("epoch,val_accuracy\n0,0.5\n")
    (out / "progress.json").write_text(json.dumps({"wall_time_s": 360.0, "cpu_time_s": 700.0}))
    (row,) = queue.progress(queue.load(path), tmp_path / "runs")
    assert row.split == "holdout"
    assert "| partial | 1/10 | 50.00 (so far, holdout) |" in queue.markdown([row], "q.json", "runs")


def _finished(
    model: str, seed: int, top1: float, precision: str = "mixed_bfloat16", tag: str | None = None
) -> queue.Progress:
    run = queue.QueuedRun(model, seed, {"epochs": 100}, tag=tag)
    return queue.Progress(run, "finished", 100, 100, top1, 1.0, 1.5, precision)


def test_seed_comparison_gives_mean_sd_and_the_difference_with_its_standard_error(tmp_path, capsys):
    rows = [_finished("resnet20_11", 0, 88.0, "float32"), _finished("resnet20_11", 1, 89.0),
            _finished("resnet20_11", 2, 89.5), _finished("resnet20_21", 0, 89.5),
            _finished("resnet20_21", 1, 90.5),
            _finished("resnet56_11", 0, 91.0)]  # fmt: skip
    text = queue.seed_comparison(rows)
    assert "| `resnet20_11` | float32 | 1 of 3 | 88.00 (seed 0) | 88.00 (one seed) |" in text  # not pooled
    seeds = "89.00 (seed 1), 89.50 (seed 2)"
    assert f"| `resnet20_11` | mixed_bfloat16 | 2 of 3 | {seeds} | 89.25 ± 0.35 |" in text
    seeds = "89.50 (seed 0), 90.50 (seed 1)"
    assert f"| `resnet20_21` | mixed_bfloat16 | 2 of 2 | {seeds} | 90.00 ± 0.71 |" in text
    # 90.00 - 89.25, standard error sqrt(0.71²/2 + 0.35²/2)
    assert "`resnet20_21` minus `resnet20_11` (mixed_bfloat16): +0.75 ± 0.56 points" in text
    assert "resnet56" not in text  # one seed queued: not a repeated model
    cut = [*rows[:3], _finished("resnet20_21", 0, 89.5), queue.Progress(
        queue.QueuedRun("resnet20_21", 1, {}), "partial", 5, 100, 70.0, 0.1, 0.2)]  # fmt: skip
    text = queue.seed_comparison(cut)
    assert "| `resnet20_21` | mixed_bfloat16 | 1 of 2 | 89.50 (seed 0) | 89.50 (one seed) |" in text
    assert "(mixed_bfloat16): needs 2 finished seeds each (1 and 2 now)" in text
    assert queue.seed_comparison(rows[-1:]) == "No model is queued with several seeds."  # not a bare header

    page = tmp_path / "TRAINING.md"
    page.write_text(f"# x\n{queue.SEEDS_START}\nold\n{queue.SEEDS_END}\nrest\n")
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}, {"model": "resnet8_21", "seed": 1}])
    assert queue.main(["status", str(path), "--runs", str(tmp_path / "runs"), "--seeds-page", str(page)]) == 0
    assert "| `resnet8_21` | | 0 of 2 | | |" in page.read_text() and "old" not in page.read_text()
    page.write_text("no markers\n")
    record = tmp_path / "PROGRESS.md"
    status = ["status", str(path), "--runs", str(tmp_path / "runs"), "--seeds-page", str(page)]
    assert queue.main([*status, "--write", str(record)]) == 2  # checked before the record is written
    assert "lacks the lines <!-- seeds:table:start -->" in capsys.readouterr().err and not record.exists()
    (tmp_path / "runs" / "resnet8_21-seed0").mkdir(parents=True)
    for inside in (tmp_path / "runs" / "resnet8_21-seed0" / "result.json", tmp_path / "runs"):
        assert queue.main([*status[:4], "--write", str(inside)]) == 2
        err = capsys.readouterr().err
        assert "among the runs' own files" in err or "is a folder" in err, err
    assert not (tmp_path / "runs" / "resnet8_21-seed0" / "result.json").exists()


def _trained_elsewhere(runs: Path, item: queue.QueuedRun, device: str, dataset: str, **changed) -> None:
    """A finished run folder as another machine leaves it: its own dataset path and run folder."""
    config = dataclasses.asdict(item.config(runs, "dataset").resolved())
    config.update(dataset=".data", out="/tmp/elsewhere", backup_every=1_000_000, **changed)
    config["dataset_info"] = {"name": dataset}
    out = runs / item.run_id
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    result = {"epochs_completed": 10, "test_top1": 0.8, "wall_time_s": 360.0, "cpu_time_s": 720.0,
              "device": device, "precision": "mixed_bfloat16"}  # fmt: skip
    (out / "result.json").write_text(json.dumps(result))


def test_a_run_trained_elsewhere_counts_only_with_the_queued_settings(folder, tmp_path, capsys):
    path = write_queue(
        tmp_path / "q.json", [{"model": "resnet20_21", "seed": seed} for seed in range(4)],
        {"recipe": "fast", "epochs": 10, "weight_decay": 5e-4, "mixed_precision": "mixed_bfloat16"},
    )  # fmt: skip
    runs = tmp_path / "runs"
    gpu, cpu = "gpu: NVIDIA H100 80GB HBM3 x1", "cpu: 2 cores"
    same, other_decay, other_data, unrecorded = queue.load(path)
    _trained_elsewhere(runs, same, gpu, folder.name)  # the fixture's dataset is named after its folder
    _trained_elsewhere(runs, other_decay, cpu, folder.name, weight_decay=1e-4)
    _trained_elsewhere(runs, other_data, cpu, "cifar10")
    _trained_elsewhere(runs, unrecorded, cpu, folder.name)
    (runs / unrecorded.run_id / "config.json").unlink()
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "resnet20_21-seed0: finished, skipped" in out
    assert "resnet20_21-seed1: FAILED: " in out and "settings: weight_decay 0.0001 (queued: 0.0005)" in out
    assert f"other settings: dataset 'cifar10' (queued: '{folder.name}')" in out
    assert "resnet20_21-seed3: FAILED: " in out and "config.json missing or unreadable" in out
    text = queue.markdown(queue.progress(queue.load(path), runs), "q.json", "runs")
    assert f"| finished | 10/10 | 80.00 | 0.10 | 0.20 | 0.0 | {gpu} |" in text
    assert "| finished (other settings: weight_decay 0.0001 (queued: 0.0005)) | 10/10 |" in text
    # status reads no dataset, so only `run` (which acts on it) compares the dataset's name
    assert "2 of 4 runs finished; 0.30 wall-clock hours and 0.60 CPU hours spent on CPUs" in text
    assert "0.10 wall-clock hours by 1 run(s) on a lent GPU (their host CPU time: 0.20 hours)" in text
    # the seeds with other settings are left out of the comparison; the GPU seed is marked
    assert (
        "| `resnet20_21` | mixed_bfloat16 | 2 of 4 | 80.00 (seed 0, GPU), 80.00 (seed 2) | 80.00 ± 0.00 |"
        in text
    )


def test_a_finished_run_on_split_archives_is_matched_by_its_training_split_name(folder, tmp_path, capsys):
    archives = tmp_path / "archives"  # toy-train.tar.gz, toy-test.tar.gz: each split named by its archive
    archives.mkdir()
    for split in ("train", "test"):
        with tarfile.open(archives / f"toy-{split}.tar.gz", "w:gz") as tar:
            tar.add(folder / split, arcname=split)
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21", "epochs": 10}], {"recipe": "fast"})
    (item,) = queue.load(path)
    _trained_elsewhere(tmp_path / "runs", item, "cpu: 2 cores", "toy-train")  # as fit records it
    assert queue.main(["run", str(path), "--runs", str(tmp_path / "runs"), "--dataset", str(archives)]) == 0
    assert "resnet20_21-seed0: finished, skipped" in capsys.readouterr().out


def test_an_unfinished_run_resumed_from_a_gpu_counts_as_partly_on_the_gpu(tmp_path):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet56_21", "epochs": 100}], {"recipe": "fast"})
    out = tmp_path / "runs" / "resnet56_21-seed0"
    out.mkdir(parents=True)
    (out / "metrics.csv").write_text("epoch,val_accuracy\n0,0.5\n1,0.6\n")
    devices = {"gpu: H100 x1": {"wall_time_s": 720.0, "cpu_time_s": 800.0},
               "cpu: 2 cores": {"wall_time_s": 180.0, "cpu_time_s": 360.0}}  # fmt: skip
    clock = {"wall_time_s": 900.0, "cpu_time_s": 1160.0, "devices": devices}
    (out / "progress.json").write_text(json.dumps(clock))
    (row,) = queue.progress(queue.load(path), tmp_path / "runs")
    assert row.state == "partial" and row.on_gpu and row.device == "gpu: H100 x1 + cpu: 2 cores"
    text = queue.markdown([row], "q.json", "runs")
    assert "0.20 wall-clock hours by 1 run(s) on a lent GPU" in text


@pytest.mark.parametrize("devices, hours_left", [
    ({"gpu: H200 x1": {"wall_time_s": 600.0, "cpu_time_s": 700.0, "epochs_trained": 15}}, None),  # GPU last
    ({"gpu: H200 x1": {"wall_time_s": 600.0, "cpu_time_s": 700.0},
      "cpu: 2 cores": {"wall_time_s": 900.0, "cpu_time_s": 1700.0}}, None),  # the CPU's epochs unknown
    ({"gpu: H200 x1": {"wall_time_s": 600.0, "cpu_time_s": 700.0},
      "cpu: 2 cores": {"wall_time_s": 900.0, "cpu_time_s": 1700.0, "epochs_trained": 2}}, 450 * 83 / 3600),
    ({"gpu: H200 x1": {"wall_time_s": 600.0, "cpu_time_s": 700.0},
      "cpu: 2 cores": {"wall_time_s": 90.0, "cpu_time_s": 170.0, "epochs_trained": 0.05}}, None),  # start-up
])  # fmt: skip
def test_hours_left_are_estimated_at_the_cpus_pace_not_a_lent_gpus(tmp_path, devices, hours_left):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21", "epochs": 100}], {"recipe": "fast"})
    out = tmp_path / "runs" / "resnet20_21-seed0"
    out.mkdir(parents=True)
    (out / "metrics.csv").write_text("epoch,val_accuracy\n" + "".join(f"{e},0.5\n" for e in range(17)))
    clock = {"wall_time_s": 1500.0, "cpu_time_s": 2400.0, "devices": devices, "epochs_trained": 17}
    (out / "progress.json").write_text(json.dumps(clock))
    (row,) = queue.progress(queue.load(path), tmp_path / "runs")
    assert row.hours_left == (None if hours_left is None else pytest.approx(hours_left))
    if hours_left is None:  # at the whole run's pace it would read 1500 / 17 * 83 s: 2.0 h
        assert "| 0.42 | 0.67 |  | gpu: H200 x1" in queue.markdown([row], "q.json", "runs")


def test_seeds_trained_on_a_gpu_are_pooled_and_also_left_out():
    rows = [_finished("resnet20_11", 0, 88.0), _finished("resnet20_11", 1, 89.0),
            _finished("resnet20_21", 0, 89.5), _finished("resnet20_21", 1, 90.5),
            dataclasses.replace(_finished("resnet20_21", 2, 91.5), device="gpu: H100")]  # fmt: skip
    text = queue.seed_comparison(rows)
    assert "| 3 of 3 | 89.50 (seed 0), 90.50 (seed 1), 91.50 (seed 2, GPU) | 90.50 ± 1.00 |" in text
    # 90.50 - 88.50 ± sqrt(1.00²/3 + 0.71²/2); without the GPU seed: 90.00 - 88.50 ± sqrt(0.71²/2 * 2)
    assert "`resnet20_21` minus `resnet20_11` (mixed_bfloat16): +2.00 ± 0.76 points" in text
    assert "The same, seeds trained on CPUs only: +1.50 ± 0.71 points" in text
    assert "CPUs only" not in queue.seed_comparison(rows[:4])


def test_a_run_resumed_elsewhere_splits_its_hours_by_device():
    devices = {"gpu: H100 x1": {"wall_time_s": 3600.0, "cpu_time_s": 7200.0},
               "cpu: 2 cores": {"wall_time_s": 1800.0, "cpu_time_s": 3600.0}}  # fmt: skip
    row = dataclasses.replace(_finished("resnet56_21", 0, 90.0), device=" + ".join(devices), devices=devices,
                              wall_hours=1.5, cpu_hours=3.0)  # fmt: skip
    assert row.on_gpu and row.hours(on_gpu=True) == (1.0, 2.0) and row.hours(on_gpu=False) == (0.5, 1.0)
    text = queue.markdown([row], "q.json", "runs")
    assert "| gpu: H100 x1 + cpu: 2 cores |" in text
    assert "0.50 wall-clock hours and 1.00 CPU hours spent on CPUs" in text
    assert "1.00 wall-clock hours by 1 run(s) on a lent GPU (their host CPU time: 2.00 hours)" in text


def test_a_tagged_variant_has_its_own_runs_seeds_and_twin(tmp_path):
    tagged = {"model": "resnet20_21", "tag": "long", "epochs": 200, "register": True}
    path = write_queue(tmp_path / "q.json", [{"model": "resnet20_21"}, tagged])
    plain, long = queue.load(path)
    assert (long.name, long.run_id, long.register) == ("resnet20_21.long", "resnet20_21.long-seed0", True)
    assert plain.run_id == "resnet20_21-seed0" and long.settings["epochs"] == 200
    assert long.config(tmp_path, "data").out == str(tmp_path / "resnet20_21.long-seed0")
    scores = {("resnet20_21", None): (88.0, 88.4), ("resnet20_21", "long"): (90.0, 90.4),
              ("resnet20_11", None): (87.0, 87.2), ("resnet20_11", "long"): (89.6, 89.8)}  # fmt: skip
    rows = [_finished(model, seed, top1, tag=tag) for (model, tag), both in scores.items()
            for seed, top1 in enumerate(both)]  # fmt: skip
    text = queue.seed_comparison(rows)
    assert "| `resnet20_21` | mixed_bfloat16 | 2 of 2 | 88.00 (seed 0), 88.40 (seed 1) | 88.20 ± 0.28" in text
    assert "| `resnet20_21.long` | mixed_bfloat16 | 2 of 2 | 90.00 (seed 0), 90.40 (seed 1) |" in text
    assert "`resnet20_21` minus `resnet20_11` (mixed_bfloat16): +1.10 ±" in text
    assert "`resnet20_21.long` minus `resnet20_11.long` (mixed_bfloat16): +0.50 ±" in text


# --- one queue per runs folder, runs in use elsewhere, damaged run folders --------------------------------


def test_a_second_queue_on_the_same_runs_folder_is_refused_at_once(folder, tmp_path, capsys, live_holder):
    pid, lock = live_holder
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}], {"recipe": "fast", "epochs": 1})
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / ".lock").write_text(lock)
    assert queue.main(["run", str(path), "--runs", str(runs), "--dataset", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"the queue's runs folder {runs} is in use by process {pid} on {socket.gethostname()}" in err
    assert err.count("\n") == 1 and sorted(p.name for p in runs.iterdir()) == [".lock"]


def test_a_run_folder_in_use_elsewhere_is_a_failure_and_the_queue_goes_on(folder, tmp_path, live_holder):
    pid, lock = live_holder
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}, {"model": "resnet8_11"}],
                       {"recipe": "fast", "epochs": 1, "batch_size": 8, "verbose": 0})  # fmt: skip
    runs = tmp_path / "runs"
    busy = runs / "resnet8_21-seed0"
    busy.mkdir(parents=True)
    (busy / ".lock").write_text(lock)
    logged = []
    failures = queue.run(queue.load(path), runs, str(folder), log=logged.append)
    assert [(item.run_id, f"the run folder {busy} is in use by process {pid}" in message)
            for item, message in failures] == [("resnet8_21-seed0", True)]  # fmt: skip
    assert any("resnet8_21-seed0: FAILED: the run folder" in line for line in logged)
    assert "left for 1 more at this pace" in logged[1] and logged[-1].endswith(" so far)")  # the pace
    assert sorted(p.name for p in busy.iterdir()) == [".lock"]  # no failed.json beside the other's run
    assert (runs / "resnet8_11-seed0" / "result.json").is_file()  # the next run trained
    assert not (runs / ".lock").exists() and not (runs / "resnet8_11-seed0" / ".lock").exists()


def test_status_reports_each_damaged_run_and_goes_on_with_the_others(tmp_path, capsys):
    models = ["resnet20_11", "resnet20_21", "resnet32_11", "resnet32_21", "resnet44_11"]
    path = write_queue(tmp_path / "q.json", [{"model": m} for m in models], {"recipe": "fast", "epochs": 10})
    runs = tmp_path / "runs"
    damage = {"resnet20_11": ("progress.json", "[1, 2]"), "resnet20_21": ("progress.json", '{"wall_time_s"'),
              "resnet32_11": ("result.json", '{"model": "resnet32_11"}'),
              "resnet32_21": ("metrics.csv", "epoch,val_accuracy\n0,0.5\n1,x|y\n")}  # fmt: skip
    for model in models:
        out = runs / f"{model}-seed0"
        out.mkdir(parents=True)
        (out / "metrics.csv").write_text("epoch,val_accuracy\n0,0.5\n")
        name, text = damage.get(model, ("progress.json", '{"wall_time_s": 36.0, "cpu_time_s": 72.0}'))
        (out / name).write_text(text)
    record = tmp_path / "PROGRESS.md"
    assert queue.main(["status", str(path), "--runs", str(runs), "--write", str(record)]) == 0
    rows = {row.run.model: row.state for row in queue.progress(queue.load(path), runs)}
    assert rows == {
        "resnet20_11": "damaged: progress.json: holds a JSON list, not an object",
        "resnet20_21": rows["resnet20_21"], "resnet32_11": "damaged: result.json: lacks 'epochs_completed', "
        "'test_top1'", "resnet32_21": "damaged: metrics.csv: line 3: val_accuracy 'x|y' is not a number",
        "resnet44_11": "partial",
    }  # fmt: skip
    assert rows["resnet20_21"].startswith("damaged: progress.json: is not valid JSON (Expecting")
    text = record.read_text()
    assert "| damaged: metrics.csv: line 3: val_accuracy 'x\\|y' is not a number |" in text
    assert "| 5 | `resnet44_11-seed0` | partial | 1/10 | 50.00 (so far) | 0.01 |" in text


@pytest.mark.parametrize(
    ("folder", "parsed"),
    [("resnet20_21-seed0", ("resnet20_21", 0)), ("runs/resnet20_21.long-seed12", ("resnet20_21.long", 12)),
     ("resnet20_21", None), ("resnet20_21-seed", None), ("-seed1", None), ("x-seed01", None),
     ("x-seed-1", None), ("x-seed\u0661", None)],
)  # fmt: skip
def test_a_run_folder_name_is_made_and_read_in_one_place(folder, parsed):
    assert train.parse_run_folder_name(folder) == parsed
    if parsed is not None:
        assert train.run_folder_name(*parsed) == Path(folder).name


def test_a_file_where_a_run_folder_belongs_is_reported_and_the_status_goes_on(tmp_path, capsys):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}, {"model": "resnet8_11"}])
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "resnet8_21-seed0").write_text("")  # a file where the first run's folder belongs
    assert queue.main(["status", str(path), "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "| damaged: resnet8_21-seed0: is a file, not a run folder" in out, out
    assert "| `resnet8_11-seed0` | waiting |" in out, out  # the next run's row


def _cut_off_after_its_first_epoch(run: Path) -> None:
    """Make the finished 2-epoch ``run`` what a kill after its first epoch's backup leaves."""
    record_path = run / "backup" / "training_metadata.json"
    first = json.loads(record_path.read_text())["previous"]
    assert first["epoch"] == 1 and first["batches_done"] == 0
    record_path.write_text(json.dumps({**first, "previous": None}))
    for name in ("result.json", "model.weights.h5", "best.weights.h5"):
        (run / name).unlink()
    drop_epochs_from(run, 1)


def test_a_run_kept_from_another_machine_is_taken_back_and_resumed_not_trained_again(folder, tmp_path):
    path = write_queue(tmp_path / "q.json", [{"model": "resnet8_21"}],
                       {"recipe": "fast", "epochs": 2, "batch_size": 8, "verbose": 0})  # fmt: skip
    elsewhere, runs, kept = tmp_path / "elsewhere", tmp_path / "runs", queue.kept_folder(path)
    assert kept == tmp_path / "kept" and not queue.run(queue.load(path), elsewhere, str(folder))
    _cut_off_after_its_first_epoch(elsewhere / "resnet8_21-seed0")
    kept.mkdir()
    archive.pack(elsewhere / "resnet8_21-seed0", kept, float16=True)  # committed, then another machine:
    logged = []
    assert not queue.run(queue.load(path), runs, str(folder), log=logged.append, kept=kept)
    assert f"resnet8_21-seed0: taken back from {kept / 'resnet8_21-seed0.tar.gz'}" in logged[0], logged
    run = runs / "resnet8_21-seed0"
    assert json.loads((run / "result.json").read_text())["epochs_completed"] == 2
    assert [row["epoch"] for row in csv.DictReader((run / "metrics.csv").open())] == ["0", "1"]
    assert "momentum restarted" in (run / "train.log").read_text()
    logged.clear()  # finished here, beside an archive that cannot be read: skipped, not a failure
    (kept / "resnet8_21-seed0.tar.gz").write_bytes(b"packed")
    assert not queue.run(queue.load(path), runs, str(folder), log=logged.append, kept=kept)
    assert any("finished" in line and "skipped" in line for line in logged), logged
    shutil.rmtree(runs)  # an archive that cannot be taken back: a failure, not a run trained from its start
    failures = queue.run(queue.load(path), runs, str(folder), log=logged.append, kept=kept)
    assert [item.run_id for item, _ in failures] == ["resnet8_21-seed0"]
    assert f"{kept / 'resnet8_21-seed0.tar.gz'} keeps this run but cannot be taken back" in failures[0][1]
    assert not (runs / "resnet8_21-seed0").exists()
