"""relu_ratio.experiments: specs, planning, runs, sharding across processes, resume, reports."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import logged_epochs, start_module

from relu_ratio import data, experiments, models, train
from relu_ratio.experiments import __main__ as cli
from relu_ratio.experiments import runner

TINY = ["--epochs", "1", "--train-subset", "12", "--test-subset", "12", "--batch-size", "4"]
SHALLOW_DEPTHS = {38: 5, 62: 6, 84: 7}  # table1's plain networks, shallower
EPOCHS = 6  # the killed worker's: it is killed after its first, with time to spare


def _shallow(model: str) -> str:
    """``plain38_21`` -> ``plain5_21``: the network of table1 with its depth from :data:`SHALLOW_DEPTHS`."""
    family, depth, _ = models.parse_name(model)
    return f"{family}{SHALLOW_DEPTHS[depth]}_{model.rpartition('_')[2]}"


def shallow_table1() -> experiments.Experiment:
    """Table I with 5- to 7-layer plain networks (names and published numbers renamed alike): the runner and
    the reports do not depend on depth, and a 5-layer network compiles several times faster than a 38-layer
    one, so the tests that train take seconds."""
    table1 = experiments.experiment("table1")
    return dataclasses.replace(
        table1,
        name="shallow_table1",
        variants=tuple(dataclasses.replace(v, model=_shallow(v.model)) for v in table1.variants),
        published=tuple(dataclasses.replace(p, model=_shallow(p.model)) for p in table1.published),
    )


def main_with_shallow_table1(argv: list[str]) -> int:
    """The experiments CLI on ``argv`` with :func:`shallow_table1` registered: the workers' entry."""
    spec = shallow_table1()
    experiments.EXPERIMENTS[spec.name] = spec
    return cli.main(argv)


@pytest.fixture
def shallow(monkeypatch) -> experiments.Experiment:
    """:func:`shallow_table1`, registered under its name for this test."""
    spec = shallow_table1()
    monkeypatch.setitem(experiments.EXPERIMENTS, spec.name, spec)
    return spec


def _cli(args, tmp_path, **kwargs):
    """A worker process: the experiments CLI with :func:`shallow_table1` registered (``python -m
    test_experiments``, this file on the path)."""
    path = os.pathsep.join([str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {"RELU_RATIO_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
    return start_module("test_experiments", args, env, **kwargs)


def test_every_spec_names_valid_models_and_published_numbers_belong_to_them():
    for spec in experiments.EXPERIMENTS.values():
        names = [v.model for v in spec.variants]
        assert len(names) == len(set(names)) >= 2, spec.name
        for name in names:
            models.check_name(name)
        assert {p.model for p in spec.published} <= set(names), spec.name
        assert all(0 < p.top1 < 100 for p in spec.published)
    assert experiments.EXPERIMENTS["table2"].published_for("resnet164_21")[0].top1 == 74.12


def test_an_experiment_of_ones_own_is_checked_as_it_is_made():
    """A mistake in an experiment of one's own is named as it is made, not when a run or report meets it."""
    ok = experiments.Variant("resnet20_11", "depth 20", "paired")
    for make, said in [
        (lambda: experiments.Variant("resent20_11", "d", "x"),
         r"variant model 'resent20_11': unknown family 'resent' \(did you mean 'resnet'"),
        (lambda: experiments.Variant("resnet20_11", 20, "x"), "group must be a string; received 20"),
        (lambda: experiments.Published("resnet20_11", "CIFAR-10", "91.3", "Z"), "top1 must be a number"),
        (lambda: experiments.Published("resnet20_11", "CIFAR-10", 913, "Z"), "from 0 to 100; received 913"),
        (lambda: experiments.Experiment("a/b", "t", (ok,)), "names its folder .* received 'a/b'"),
        (lambda: experiments.Experiment("mine", "t", ()), "'mine' has no variants"),
        (lambda: experiments.Variant(3, "d", "x"), "^model must be a string; received 3"),
        (lambda: experiments.Experiment("mine", "t", [ok]),
         r"^experiment 'mine': variants must be a tuple of Variant objects; received \[Variant\("),
        (lambda: experiments.Experiment("mine", 3, (ok,)),
         "^experiment 'mine': title must be a string; received 3"),
        (lambda: experiments.Experiment(3, "t", (ok,)), "^experiment 3: name must be a string; received 3"),
        (lambda: experiments.Experiment("mine", "t", (ok,), (ok,)),
         "^experiment 'mine': published must be a tuple of Published objects; received"),
        (lambda: experiments.Experiment("mine", "t", (ok, ok)), "lists resnet20_11 twice: each variant"),
        (lambda: experiments.Experiment("mine", "t", (ok, experiments.Variant("resnet20_paired", "d", "x"))),
         r"lists resnet20_11 twice \(as resnet20_paired, another name for it\)"),  # it trained it twice
        (lambda: experiments.Experiment("mine", "t", (ok,), (experiments.Published("resnet20_21", "C", 90.0,
                                                                                   "Z"),)),
         "published numbers for resnet20_21, which none of its variants trains"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=said):
            make()


def test_unknown_names_and_bad_settings_are_named(capsys):
    with pytest.raises(ValueError, match=r"unknown experiment 'table4' \(did you mean 'table3'\?\)"):
        experiments.experiment("table4")
    own = r"EXPERIMENTS first: EXPERIMENTS\['mine2'\] = Experiment\(\.\.\.\)\.$"  # plan, run: how to add one
    with pytest.raises(ValueError, match=r"unknown experiment 'mine2'\. Valid: table1, .*" + own):
        experiments.plan("mine2")
    with pytest.raises(ValueError, match=own):
        experiments.run(experiments.plan("table1")[:1], experiment_name="mine2", budget="tiny")
    assert cli.main(["plan", "mine2"]) == 2  # the command line runs none of one's own: no such hint
    assert capsys.readouterr().err == ("error: unknown experiment 'mine2'. Valid: "
                                       f"{', '.join(experiments.EXPERIMENTS)}.\n")
    with pytest.raises(ValueError, match=r"unknown budget 'tinny'.*'tiny'"):
        experiments.resolve_budget("tinny")
    with pytest.raises(ValueError, match="unknown budget setting"):
        experiments.resolve_budget("tiny", steps=3)
    for seeds, message in (([0, 0], "seeds must be one or more different seeds"), ([], "one or more"),
                           ([1.5], r"seed 1.5 of seeds \[1.5\]: a seed must be an integer in \[0, 2\*\*32"),
                           ([-1], "received -1"), ([2**32], "a seed must be")):  # fmt: skip
        with pytest.raises(ValueError, match=message):  # each seed is one run folder: workers never share one
            experiments.resolve_budget("tiny", seeds=seeds)
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
    with pytest.raises(ValueError, match=r"nowhere' \(\$RELU_RATIO_DATA\) does not exist: pass --dataset"):
        experiments.default_dataset()
    monkeypatch.delenv("RELU_RATIO_DATA")
    monkeypatch.setattr(data, "DEFAULT_DATA", str(tmp_path / "shared"))
    with pytest.raises(ValueError, match=r"shared' \(the default: no \$RELU_RATIO_DATA\)"):
        experiments.default_dataset()


# Not marked backend: relu_ratio.experiments never touches Keras (its runner calls train.run and reads the
# files a run writes); train.run under JAX is run by test_train's backend-marked tests (21 s of the JAX pass).
def test_run_collect_writes_csv_markdown_and_figure(folder, tmp_path, capsys, shallow):
    out = tmp_path / "exp"
    args = ["run", shallow.name, "--only", "plain5_2*", "--dataset", str(folder), "--out", str(out), *TINY]
    assert cli.main(args) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # --only trains a subset; the report still lists the whole table, the rest as pending
    assert [(r["model"], r["status"], r["epochs_done"]) for r in rows[:3]] == [
        ("plain5_11", "pending", "0"), ("plain5_21", "done", "1"), ("plain6_11", "pending", "0")
    ]  # fmt: skip
    assert 0 <= float(rows[1]["test_top1"]) <= 100 and rows[1]["test_images"] == "12"
    assert {r["dataset"] for r in rows} == {rows[1]["dataset"]}  # pending ones: a name, not a path
    table = (out / "results.md").read_text()
    assert "64.04 (CIFAR-100, Zhao et al. 2017 Table I)" in table and "ds" in table
    assert "1 of 6 runs finished" in table and "1 epoch on 12 training images in batches of 4" in table
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote:" in capsys.readouterr().out
    # run again: everything is done, nothing retrains; another budget in the same folder is refused
    assert cli.main(args) == 0
    assert "done, skipped" in capsys.readouterr().out
    folder.rename(tmp_path / "away")  # with every run done, run reads no data
    assert cli.main(args) == 0 and "done, skipped" in capsys.readouterr().out
    (tmp_path / "away").rename(folder)
    assert cli.main([*args, "--epochs", "2"]) == 2
    assert "another experiment: budget.epochs: 1, 2 (recorded, given). Resume" in capsys.readouterr().err
    again = [a if a != str(folder) else f"{folder}/" for a in args]  # the same folder, spelled otherwise
    assert cli.main(again) == 0 and "done, skipped" in capsys.readouterr().out
    record = (out / "experiment.json").read_text()
    for damaged, why in [('{"experiment": "table2"}', "it holds ['experiment'], not the keys 'experiment'"),
                         (record.replace('"seeds"', '"seed"'), "'budget' must hold the keys"),
                         ("[]", "it holds list, not the keys")]:  # fmt: skip
        (out / "experiment.json").write_text(damaged)
        for command in (args, ["collect", str(out)]):
            assert cli.main(command) == 2
            err = capsys.readouterr().err
            assert f"experiment.json is damaged: {why}" in err and err.count("\n") == 1, err
    older = json.loads(record)
    del older["budget"]["batch_size"]  # a record from before a budget setting existed: its default
    (out / "experiment.json").write_text(json.dumps(older))
    assert experiments.runner.read_record(out)["budget"]["batch_size"] is None
    (out / "experiment.json").write_text(record)
    (result,) = out.glob("*/plain5_21-seed*/result.json")
    result.write_text(result.read_text()[:20])  # cut off: was "done, skipped", as the queue refuses it
    assert cli.main(args) == 1
    assert f"{result.parent} is damaged: result.json" in capsys.readouterr().out
    assert len(result.read_text()) == 20  # left for the user to repair or move


def test_a_budget_the_data_cannot_give_stops_the_experiment_before_any_run(folder, tmp_path, capsys, shallow):
    out = tmp_path / "exp"
    args = ["run", shallow.name, "--dataset", str(folder), "--out", str(out), *TINY[:-4], "--test-subset",
            "100", "--batch-size", "4"]  # fmt: skip
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: test_subset 100 is more than the 12 images of the test split")
    assert not out.exists()


def test_run_takes_the_experiment_and_budget_the_runs_were_planned_with(tmp_path, shallow, monkeypatch):
    """The folder's record and report were written from run()'s arguments: a report said 256 images where 32
    trained, and later runs at the budget it named skipped those done at another."""
    small = experiments.resolve_budget("tiny", train_subset=32, test_subset=32, batch_size=16)
    runs = experiments.plan(shallow, small, dataset="x", out=tmp_path / "e", only="plain5_*")
    given = {"experiment_name": shallow.name, "budget": small, "log": lambda *_: None}
    cases = [
        ({"budget": "tiny"}, ValueError, r"^run plain5_11-seed0 was not planned at budget 'tiny': "
                                         r"batch_size: 16, 64; test_subset: 32, 256; train_subset: 32, 256"),
        ({"experiment_name": "erase_relu"}, ValueError, r"^run plain5_11-seed0 was planned for experiment "
                                                        r"'shallow_table1', not 'erase_relu': give run"),
        ({"shard": (0, 0)}, ValueError, r"^shard must be \(I, N\) with 0 <= I < N, .*received \(0, 0\)"),
        ({"budget": {"epochs": 1}}, TypeError, r"^budget must be a budget's name or a Budget"),
    ]  # fmt: skip
    for changed, error, said in cases:
        with pytest.raises(error, match=said):
            experiments.run(runs, **{**given, **changed})
    assert not (tmp_path / "e").exists()  # refused before any record or run folder
    for setting, said in (({"dataset": ""}, "dataset '' names no file"), ({"out": " "}, "out ' ' names no"),
                          ({"only": ["plain5_*"]}, r"only must be one pattern .*received \['plain5_\*'\]")):
        with pytest.raises(ValueError, match=said):  # '' took the default data, ' ' planned into a folder ' '
            experiments.plan(shallow, small, **{"dataset": "x", "out": tmp_path / "e", **setting})
    with pytest.raises(ValueError, match=r"seeds must be a list of seeds, e.g. \[0, 1, 2\]; received 5\."):
        experiments.resolve_budget("tiny", seeds=5)  # was "'int' object is not iterable"
    own = r"experiment 'mine' is not in relu_ratio.experiments.EXPERIMENTS, .* EXPERIMENTS\['mine'\] = "
    with pytest.raises(ValueError, match=own):  # it trained, then collect could not read its record back
        experiments.plan(dataclasses.replace(shallow, name="mine"), small, dataset="x", out=tmp_path / "m")
    runner._record_experiment(tmp_path / "r", shallow.name, small, "x")
    monkeypatch.delitem(experiments.EXPERIMENTS, shallow.name)  # another process, where it is not added
    with pytest.raises(ValueError, match=r"records experiment 'shallow_table1', which is not in relu_ratio"):
        experiments.collect(tmp_path / "r")  # was "is damaged: unknown experiment ... Delete it and run"


def test_ctrl_c_during_run_ends_with_one_line_and_exit_130(folder, tmp_path, monkeypatch, capsys, shallow):
    """It printed a traceback from inside Keras; now it says what is kept and how to go on, as train does."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    out = tmp_path / "exp"
    args = ["run", shallow.name, "--only", "plain5_21", "--dataset", str(folder), "--out", str(out), *TINY]
    assert cli.main(args) == 130
    err = capsys.readouterr().err
    assert err == (f"interrupted: the runs finished in {out} are kept; the same command trains the others, a "
                   "cut-off run from its last backup.\n")  # fmt: skip


def test_a_failed_run_is_recorded_and_the_others_still_run(folder, tmp_path, monkeypatch, shallow):
    real = experiments.runner.train.run

    def flaky(config):
        if config.model == "plain5_11":
            raise FloatingPointError("loss became NaN")
        return real(config)

    monkeypatch.setattr(runner.train, "run", flaky)
    budget = experiments.resolve_budget("tiny", epochs=1, train_subset=12, test_subset=12, batch_size=4)
    runs = experiments.plan(shallow, budget, dataset=str(folder), out=tmp_path / "exp", only="plain5_*")
    failures = experiments.run(runs, experiment_name=shallow.name, budget=budget, log=lambda *_: None)
    assert [(r.run_id, m) for r, m in failures] == [
        ("plain5_11-seed0", "FloatingPointError: loss became NaN")
    ]
    assert "NaN" in json.loads((runs[0].out / "failed.json").read_text())["error"]
    report = experiments.collect(tmp_path / "exp", figure=False)
    assert [r["status"] for r in report.rows[:3]] == ["failed", "done", "pending"]
    assert "Not finished: plain5_11 seed 0 (failed)" in report.markdown


@pytest.mark.slow
def test_two_worker_processes_split_the_runs_and_the_results_merge(folder, tmp_path, shallow):
    out = tmp_path / "exp"
    args = ["run", shallow.name, "--only", "plain5_*", "--dataset", str(folder), "--out", str(out), *TINY]
    workers = [_cli([*args, "--shard", f"{i}/2"], tmp_path) for i in range(2)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    assert "plain5_11-seed0: training" in logs[0] and "plain5_21" not in logs[0].split("| group")[0]
    assert "plain5_21-seed0: training" in logs[1] and "plain5_11-seed0: training" not in logs[1]
    report = experiments.collect(out, figure=False)
    assert report.counts() == {"done": 2, "pending": 4}


@pytest.mark.slow
def test_a_killed_worker_resumes_its_run_instead_of_restarting_it(folder, tmp_path, capsys, shallow):
    out = tmp_path / "exp"
    args = ["run", shallow.name, "--only", "plain5_11", "--dataset", str(folder), "--out", str(out),
            "--epochs", str(EPOCHS), "--train-subset", "24", "--test-subset", "12",
            "--batch-size", "4"]  # fmt: skip
    worker = _cli(args, tmp_path, start_new_session=True)
    meta = out / "runs" / "plain5_11-seed0" / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while time.time() < deadline and worker.poll() is None:  # kill once the first epoch is backed up
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1:
            break
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    before = logged_epochs(out / "runs" / "plain5_11-seed0")
    assert 1 <= len(before) < EPOCHS, "the worker was not killed part-way"
    with pytest.warns(UserWarning, match=f"taking over the lock of process {worker.pid}"):
        assert cli.main(args) == 0  # the same command again, in this process
    log = capsys.readouterr().out
    assert f"Epoch {len(before) + 1}/{EPOCHS}" in log and f"Epoch 1/{EPOCHS}" not in log, log
    assert logged_epochs(out / "runs" / "plain5_11-seed0") == list(range(EPOCHS))


def test_worker_commands_drop_the_spawning_flags_and_abbreviations_are_refused(capsys):
    argv = ["run", "table2", "--workers", "2", "--gpus=0,1", "--budget", "tiny"]
    assert cli._without(argv, "--workers", "--gpus") == ["run", "table2", "--budget", "tiny"]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["run", "table2", "--worker", "2"])  # would leak into the workers' commands
    assert "unrecognized arguments: --worker" in capsys.readouterr().err


def test_empty_gpu_ids_are_refused_and_a_shard_without_runs_says_so(folder, tmp_path, capsys, shallow):
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    base = ["run", shallow.name, "--only", "plain5_11", "--dataset", str(folder), "--out", str(tmp_path),
            *TINY]
    for gpus, problem in (("", "'' is not"), ("0,,1", "'' is not"), ("a,b", "'a' is not a GPU id"),
                          ("0,00", "0 twice (two workers on one GPU)")):  # fmt: skip
        assert cli.main([*base, "--gpus", gpus]) == 2
        err = capsys.readouterr().err
        assert f"GPU ids, each once, e.g. '0,1'; received {gpus!r}: {problem}" in err
    assert cli.main([*base, "--workers", "2", "--test-subset", "100000"]) == 2  # checked before the workers
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "test_subset 100000 is more than the" in err, err
    assert cli.main([*base, "--shard", "1/3"]) == 0
    out = capsys.readouterr().out
    assert "shard 1/3: none of the 1 run(s) falls to this shard" in out and "once all are: " in out
    with pytest.MonkeyPatch.context() as patch:  # a worker `run --workers` started: its parent collects
        patch.setenv(runner.SPAWNED, "1")
        assert cli.main([*base, "--shard", "1/3"]) == 0
        assert capsys.readouterr().out.endswith("shard 1/3 done\n")
    assert cli.main([*base, "--workers", "2", "--epochs", "2"]) == 2  # another experiment, refused once
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "holds another experiment: budget.epochs: 1, 2" in err, err
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before  # hidden from the parent while it checked
    (tmp_path / "afile").write_text("")  # --out under a file: named (was "[Errno 17] File exists")
    at = base.index("--out") + 1
    assert cli.main([*base[:at], str(tmp_path / "afile" / "x"), *base[at + 1:], "--shard", "1/3"]) == 2
    assert "cannot write to the experiment's output folder (--out)" in capsys.readouterr().err


def test_plan_refuses_missing_data_and_an_out_under_a_file_as_run_does(folder, tmp_path, capsys, shallow):
    base = ["plan", shallow.name, "--only", "plain5_11", *TINY]
    assert cli.main([*base, "--dataset", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")]) == 2
    assert "nodata' is neither a known tensorflow-datasets name" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    (tmp_path / "afile").write_text("")
    assert cli.main([*base, "--dataset", str(folder), "--out", str(tmp_path / "afile")]) == 2
    assert "cannot write to the experiment's output folder (--out)" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == ""
    assert cli.main([*base, "--dataset", str(folder), "--out", str(tmp_path / "o")]) == 0
    assert "--out" in capsys.readouterr().out and not (tmp_path / "o").exists()  # plan writes nothing


def test_the_runs_plan_prints_run_anywhere_and_run_collects_them(folder, tmp_path, capsys, shallow):
    """``collect`` said the folder "holds no experiment" after the printed commands had run: plan says that
    ``run`` with the same settings takes them as finished and writes the report."""
    out = tmp_path / "exp"
    settings = [shallow.name, "--only", "plain5_2*", "--dataset", str(folder), "--out", str(out), *TINY]
    assert cli.main(["plan", *settings]) == 0
    printed, err = capsys.readouterr()
    commands = printed.splitlines()
    assert err == (f"note: once these have run (anywhere), python -m relu_ratio.experiments run "
                   f"{shlex.join(settings)} takes them as finished and writes the report into {out}\n")
    for command in commands:
        argv = shlex.split(command)
        assert argv[:3] == ["python", "-m", "relu_ratio.train"]
        assert train.main(argv[3:]) == 0
    capsys.readouterr()
    assert cli.main(["run", *settings]) == 0
    assert capsys.readouterr().out.count("done, skipped") == len(commands) == 1
    assert [row["status"] for row in experiments.collect(out, figure=False).rows].count("done") == 1


def test_plan_refuses_a_subset_the_data_cannot_give_as_run_does(folder, tmp_path, capsys, shallow,
                                                                 monkeypatch):
    """``plan --train-subset 60000`` printed the commands ``run`` then refused: one check
    (``runner.check_data``) for both, the same error; ``plan`` downloads no tensorflow-datasets name."""
    settings = ["--only", "plain5_11", "--out", str(tmp_path / "o"), "--epochs", "1", "--test-subset", "12",
                "--batch-size", "4", "--train-subset", "60000"]  # fmt: skip
    errors = []
    for command in ("plan", "run"):
        assert cli.main([command, shallow.name, "--dataset", str(folder), *settings]) == 2
        errors.append(capsys.readouterr().err)
    said = "error: train_subset 60000 is more than the 24 images of the training split; give at most 24"
    assert errors[0] == errors[1] and errors[0].startswith(said), errors
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr(data, "is_prepared", lambda source, data_dir=None: False)  # not downloaded yet
    monkeypatch.setattr(runner.fit, "load_data", lambda config: pytest.fail("plan loaded (downloaded) it"))
    assert cli.main(["plan", shallow.name, "--dataset", "cifar10", *settings]) == 0
    out, err = capsys.readouterr()
    assert "--train-subset 60000" in out and err.startswith("note: cifar10 is not downloaded yet"), err


def test_a_folder_where_the_experiment_writes_a_file_is_named_in_one_line(folder, tmp_path, capsys, shallow):
    """``collect`` with ``results.csv`` a folder said Python's "[Errno 21] Is a directory" (``results.md`` a
    folder: after ``results.csv`` was written; ``run``: after every run had trained); ``experiment.json`` a
    folder recursed until Python's limit. Each is refused first, naming the path."""
    out = tmp_path / "e"
    runner._record_experiment(out, shallow.name, experiments.resolve_budget("tiny"), str(folder))
    written = f"Move it out of {out}, where the experiment writes experiment.json, results.csv, results.md, "
    for name in ("results.csv", "results.md", "accuracy.png"):
        (out / name).mkdir()
        assert cli.main(["collect", str(out)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: cannot write the report {out / name}: it is a folder, not a file. {written}" \
                      "accuracy.png.\n", err  # fmt: skip
        assert sorted(p.name for p in out.iterdir()) == sorted(["experiment.json", name])  # none written
        (out / name).rmdir()
    other = tmp_path / "other"
    args = ["--only", "plain5_11", "--dataset", str(folder), "--out", str(other), *TINY]
    for name, what in (("results.md", "report"), ("experiment.json", "experiment's record")):
        (other / name).mkdir(parents=True)
        for command in ("plan", "run"):
            assert cli.main([command, shallow.name, *args]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: cannot write the {what} {other / name}: it is a folder") and \
                   err.count("\n") == 1, err  # fmt: skip
        assert [p.name for p in other.iterdir()] == [name]  # nothing trained, nothing recorded
        (other / name).rmdir()
    with pytest.raises(ValueError, match=r"experiment.json: it is a folder"):  # was a RecursionError
        (out / "experiment.json").unlink()
        (out / "experiment.json").mkdir()
        runner._record_experiment(out, shallow.name, experiments.resolve_budget("tiny"), str(folder))


def test_every_field_of_an_experiment_record_is_checked_against_its_type(folder, tmp_path, capsys, shallow):
    """``"epochs": "abc"`` in ``experiment.json`` was taken (``collect`` reported "abc epochs"): every field
    is checked as a ``Budget`` is made (``flags.check_values``, then the ranges a run checks), and ``run``
    and ``collect`` name the file, the field, the value and what is valid."""
    out = tmp_path / "e"
    small = experiments.resolve_budget("tiny", epochs=1, train_subset=12, test_subset=12, batch_size=4)
    runner._record_experiment(out, shallow.name, small, str(folder))
    record = json.loads((out / "experiment.json").read_text())
    args = ["run", shallow.name, "--only", "plain5_11", "--dataset", str(folder), "--out", str(out), *TINY]
    cases = [
        ({"epochs": "abc"}, "budget: epochs must be an integer or None (null); received 'abc'"),
        ({"epochs": 0}, "budget: epochs must be >= 1 (an integer); received 0"),
        ({"test_subset": 2.5}, "budget: test_subset must be an integer or None (null); received 2.5"),
        ({"batch_size": True}, "budget: batch_size must be an integer or None (null); received True"),
        ({"recipe": "fats"}, "budget: recipe must be one of ['fast', 'paper']; received 'fats' (did you mean "
                             "'fast'?)"),
        ({"name": 3}, "budget: name must be a string; received 3"),
        ({"seeds": [0, "1"]}, "budget: seed '1' of seeds [0, '1']: a seed must be an integer in "
                              "[0, 2**32 - 1]; received '1'"),
        ({"seeds": 0}, "budget: seeds must be a list of seeds, e.g. [0, 1, 2]; received 0"),
    ]  # fmt: skip
    damaged = [({**record, "budget": {**record["budget"], **change}}, said) for change, said in cases]
    damaged += [({**record, "experiment": 5}, "experiment must be a string; received 5"),
                ({**record, "dataset": None}, "dataset must be a string; received None")]  # fmt: skip
    for content, said in damaged:
        (out / "experiment.json").write_text(json.dumps(content))
        for command in (args, ["collect", str(out)]):
            assert cli.main(command) == 2
            err = capsys.readouterr().err
            path = out / "experiment.json"
            assert err == f"error: {path} is damaged: {said}. {runner.RECORD_REMEDY}\n", err
    assert not (out / "runs").exists() and not (out / "results.csv").exists()


def test_a_retried_run_reads_as_running_not_failed_and_a_new_failure_is_recorded(tmp_path, monkeypatch):
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


def test_the_report_gives_mean_sd_over_seeds_one_seed_bare_and_a_dash_for_none():
    spec = experiments.experiment("table1")
    row = {"status": "done", "dataset": "CIFAR-10 (JPEG)", "epochs_done": 1}
    rows = [{**row, "model": "plain38_11", "seed": s, "test_top1": v} for s, v in ((0, 89.0), (1, 89.5))]
    rows.append({**row, "model": "plain38_21", "seed": 0, "test_top1": 88.0})
    table = experiments.render_markdown(spec, rows, "tiny budget")
    assert "| `plain38_11` | 89.25 ± 0.35 | seeds 0, 1 |" in table
    assert "| `plain38_21` | 88.00 | seed 0 |" in table
    assert "| `plain62_11` | — | — |" in table
    # the note on the experiment is in every report; the one on the zoo's own entries is not
    assert spec.note in table and spec.zoo_note and spec.zoo_note not in table


def test_the_figure_shows_whole_epochs_and_says_where_no_epoch_finished():
    spec = experiments.experiment("table1")
    rows = [{"model": "plain38_11", "curve": [41.0]}, {"model": "plain38_21", "curve": [43.0]}]  # 1 epoch
    depth38, depth62, _ = experiments.report.figure(spec, rows).axes
    assert depth38.get_xlim() == (0.5, 1.5) and [t for t in depth38.get_xticks() if 0.5 < t < 1.5] == [1.0]
    assert [t.get_text() for t in depth62.texts] == ["no epoch finished yet"] and not depth62.lines


if __name__ == "__main__":
    sys.exit(main_with_shallow_table1(sys.argv[1:]))
