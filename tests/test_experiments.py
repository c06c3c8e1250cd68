"""relu_ratio.experiments: specs, planning, runs, sharding across processes, resume, reports."""

from __future__ import annotations

import csv
import json
import os
import signal
import time

import pytest
from conftest import logged_epochs, start_module

from relu_ratio import experiments, models
from relu_ratio.experiments import __main__ as cli
from relu_ratio.experiments import runner

TINY = ["--epochs", "1", "--train-subset", "12", "--test-subset", "12", "--batch-size", "4"]


def _cli(args, tmp_path, **kwargs):
    env = {"RELU_RATIO_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return start_module("relu_ratio.experiments", args, env, **kwargs)


def test_every_spec_names_valid_models_and_published_numbers_belong_to_them():
    for spec in experiments.EXPERIMENTS.values():
        names = [v.model for v in spec.variants]
        assert len(names) == len(set(names)) >= 2, spec.name
        for name in names:
            models.check_name(name)
        assert {p.model for p in spec.published} <= set(names), spec.name
        assert all(0 < p.top1 < 100 for p in spec.published)
    assert experiments.EXPERIMENTS["table2"].published_for("resnet164_21")[0].top1 == 74.12


def test_unknown_names_and_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"unknown experiment 'table4' \(did you mean 'table3'\?\)"):
        experiments.experiment("table4")
    with pytest.raises(ValueError, match=r"unknown budget 'tinny'.*'tiny'"):
        experiments.resolve_budget("tinny")
    with pytest.raises(ValueError, match="unknown budget setting"):
        experiments.resolve_budget("tiny", steps=3)
    with pytest.raises(ValueError, match="'I/N' with 0 <= I < N"):
        experiments.parse_shard("2/2")
    with pytest.raises(ValueError, match="matches none of table2's models: resnet62_11"):
        experiments.plan("table2", dataset="x", out="o", only="preact*")


def test_plan_orders_variants_then_seeds_and_applies_the_budget(tmp_path):
    budget = experiments.resolve_budget("paper", seeds=[3, 4], epochs=8)
    runs = experiments.plan("table3", budget, dataset="cifar100", out=tmp_path)
    names = ("dfnmr110_11", "dfnmr110_43", "dfnmr110_type2")
    assert [r.run_id for r in runs] == [f"{m}-seed{s}" for m in names for s in (3, 4)]
    config = runs[0].config.resolved()
    assert (config.recipe, config.epochs, config.batch_size, config.dataset) == ("paper", 8, 64, "cifar100")
    assert runs[1].out == tmp_path / "runs" / "dfnmr110_11-seed4"


def test_default_dataset_is_named_when_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("RELU_RATIO_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="pass --dataset"):
        experiments.default_dataset()


@pytest.mark.backend
def test_run_collect_writes_csv_markdown_and_figure(folder, tmp_path, capsys):
    out = tmp_path / "exp"
    status = cli.main(
        ["run", "table1", "--only", "plain38_*", "--dataset", str(folder), "--out", str(out), *TINY]
    )
    assert status == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # --only trains a subset; the report still lists the whole table, the rest as pending
    assert [(r["model"], r["status"], r["epochs_done"]) for r in rows[:3]] == [
        ("plain38_11", "done", "1"), ("plain38_21", "done", "1"), ("plain62_11", "pending", "0")
    ]  # fmt: skip
    rows = rows[:2]
    assert all(0 <= float(r["test_top1"]) <= 100 and r["test_images"] == "12" for r in rows)
    table = (out / "results.md").read_text()
    assert "64.04 (CIFAR-100, Zhao et al. 2017 Table I)" in table and "ds" in table
    assert "2 of 6 runs finished" in table and "1 epoch on 12 training images" in table
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote:" in capsys.readouterr().out
    # run again: everything is done, nothing retrains; another budget in the same folder is refused
    assert (
        cli.main(["run", "table1", "--only", "plain38_*", "--dataset", str(folder), "--out", str(out), *TINY])
        == 0
    )
    assert "done, skipped" in capsys.readouterr().out
    assert cli.main(["run", "table1", "--dataset", str(folder), "--out", str(out), "--epochs", "2"]) == 2
    assert "resume with the same settings" in capsys.readouterr().err


def test_a_failed_run_is_recorded_and_the_others_still_run(folder, tmp_path, monkeypatch):
    real = experiments.runner.train.run

    def flaky(config):
        if config.model == "plain38_11":
            raise FloatingPointError("loss became NaN")
        return real(config)

    monkeypatch.setattr(runner.train, "run", flaky)
    budget = experiments.resolve_budget("tiny", epochs=1, train_subset=12, test_subset=12, batch_size=4)
    runs = experiments.plan("table1", budget, dataset=str(folder), out=tmp_path / "exp", only="plain38_*")
    failures = experiments.run(runs, experiment_name="table1", budget=budget, log=lambda *_: None)
    assert [(r.run_id, m) for r, m in failures] == [
        ("plain38_11-seed0", "FloatingPointError: loss became NaN")
    ]
    assert "NaN" in json.loads((runs[0].out / "failed.json").read_text())["error"]
    report = experiments.collect(tmp_path / "exp", figure=False)
    assert [r["status"] for r in report.rows[:3]] == ["failed", "done", "pending"]
    assert "Not finished: plain38_11 seed 0 (failed)" in report.markdown


@pytest.mark.slow
def test_two_worker_processes_split_the_runs_and_the_results_merge(folder, tmp_path):
    out = tmp_path / "exp"
    args = ["run", "table1", "--only", "plain38_*", "--dataset", str(folder), "--out", str(out), *TINY]
    workers = [_cli([*args, "--shard", f"{i}/2"], tmp_path) for i in range(2)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    assert "plain38_11-seed0: training" in logs[0] and "plain38_21" not in logs[0].split("| group")[0]
    assert "plain38_21-seed0: training" in logs[1] and "plain38_11-seed0: training" not in logs[1]
    report = experiments.collect(out, figure=False)
    assert report.counts() == {"done": 2, "pending": 4}


@pytest.mark.slow
def test_a_killed_worker_resumes_its_run_instead_of_restarting_it(folder, tmp_path):
    out = tmp_path / "exp"
    args = ["run", "table1", "--only", "plain38_11", "--dataset", str(folder), "--out", str(out),
            "--epochs", "3", "--train-subset", "24", "--test-subset", "12", "--batch-size", "4"]  # fmt: skip
    worker = _cli(args, tmp_path, start_new_session=True)
    meta = out / "runs" / "plain38_11-seed0" / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while time.time() < deadline and worker.poll() is None:  # kill once the first epoch is backed up
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1:
            break
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    before = logged_epochs(out / "runs" / "plain38_11-seed0")
    assert 1 <= len(before) < 3, "the worker was not killed part-way"
    log = _cli(args, tmp_path).communicate(timeout=600)[0]
    assert f"Epoch {len(before) + 1}/3" in log and "Epoch 1/3" not in log, log
    assert logged_epochs(out / "runs" / "plain38_11-seed0") == [0, 1, 2]


def test_worker_commands_drop_the_spawning_flags_and_abbreviations_are_refused(capsys):
    argv = ["run", "table2", "--workers", "2", "--gpus=0,1", "--budget", "tiny"]
    assert cli._without(argv, "--workers", "--gpus") == ["run", "table2", "--budget", "tiny"]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["run", "table2", "--worker", "2"])  # would leak into the workers' commands
    assert "unrecognized arguments: --worker" in capsys.readouterr().err


def test_a_retried_run_reads_as_running_not_failed_and_a_new_failure_is_recorded(tmp_path, monkeypatch):
    from relu_ratio import train
    from relu_ratio.train.record import RunRecord
    from relu_ratio.train.series import train_or_record_failure

    out = tmp_path / "run"
    out.mkdir()
    (out / "failed.json").write_text('{"error": "stale"}')
    (out / "metrics.csv").write_text("epoch,val_accuracy\n0,0.5\n")
    seen = []

    def resume(config):
        seen.append(RunRecord.read(config.out).state)
        raise ValueError("second failure")

    monkeypatch.setattr(train, "run", resume)
    result, message = train_or_record_failure(train.TrainConfig(model="resnet8_21", out=str(out)))
    assert seen == ["partial"] and result is None and message == "ValueError: second failure"
    assert json.loads((out / "failed.json").read_text())["error"] == message
    assert RunRecord.read(out).state == "failed"


def test_the_failure_record_moved_to_train_and_the_old_name_warns():
    from relu_ratio.train import series

    with pytest.warns(DeprecationWarning, match="relu_ratio.train.series.train_or_record_failure"):
        assert runner.train_or_record_failure is series.train_or_record_failure
    with pytest.raises(AttributeError, match="no_such_name"):
        runner.no_such_name  # noqa: B018


def test_the_report_gives_mean_sd_over_seeds_one_seed_bare_and_a_dash_for_none():
    spec = experiments.experiment("table1")
    row = {"status": "done", "dataset": "CIFAR-10 (JPEG)", "epochs_done": 1}
    rows = [{**row, "model": "plain38_11", "seed": s, "test_top1": v} for s, v in ((0, 89.0), (1, 89.5))]
    rows.append({**row, "model": "plain38_21", "seed": 0, "test_top1": 88.0})
    table = experiments.render_markdown(spec, rows, "tiny budget")
    assert "| `plain38_11` | 89.25 ± 0.35 | 0, 1 |" in table and "| `plain38_21` | 88.00 | 0 |" in table
    assert "| `plain62_11` | — | — |" in table
