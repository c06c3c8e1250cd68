"""Every command-line flag of every CLI says what it does (a help line), and abbreviations are refused."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from relu_ratio import queue, train, tune
from relu_ratio.experiments import __main__ as experiments_cli
from relu_ratio.zoo import __main__ as zoo_cli

PARSERS = {
    "train": train.parser, "tune": tune.parser, "queue": queue.parser, "zoo": zoo_cli.parser,
    "experiments": experiments_cli.parser,
}  # fmt: skip
MAINS = {"train": train.main, "tune": tune.main, "queue": queue.main, "zoo": zoo_cli.main}


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {flag}", a) for flag, a in _actions(sub))
        elif not isinstance(action, argparse._HelpAction):
            yield (action.option_strings or [action.dest])[0], action


@pytest.mark.parametrize("cli", sorted(PARSERS))
def test_every_flag_has_a_help_line(cli):
    missing = [flag for flag, action in _actions(PARSERS[cli]()) if not (action.help or "").strip()]
    assert not missing, f"{cli}: no help for {missing}"


@pytest.mark.parametrize(
    ("cli", "argv"),
    [("train", ["--epoch", "3"]), ("tune", ["--epoch", "3"]),
     ("queue", ["status", "q.json", "--runs", "r", "--wri", "x"]), ("zoo", ["register", "run", "--forc"])],
)  # fmt: skip
def test_abbreviated_flags_are_refused(cli, argv, capsys):
    with pytest.raises(SystemExit):
        PARSERS[cli]().parse_args(argv)
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cli", "argv", "said"),
    [("train", ["--recipe", "fats"],
      "invalid choice: 'fats' (choose from 'fast', 'paper') (did you mean 'fast'?)"),
     ("tune", ["--tuner", "hyperbnd"], "(did you mean 'hyperband'?)"),
     ("train", ["--verbose", "5"], "invalid choice: '5' (choose from 0, 1, 2)")],
)  # fmt: skip
def test_a_flag_outside_its_choices_is_given_the_closest(cli, argv, said, capsys):
    with pytest.raises(SystemExit):
        PARSERS[cli]().parse_args(argv)
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cli", "argv", "named"),
    [("tune", ["--out", "{file}/x", "--dataset", "{folder}"], "cannot write to the tuner's project folder"),
     ("queue", ["run", "{queue}", "--runs", "{file}/x", "--dataset", "{folder}"],
      "cannot write to the queue's runs folder"),
     ("train", ["--model", "resnet8_11", "--dataset", "{folder}", "--out", "{file}"],
      "cannot write to the output directory"),
     ("train", ["--model", "resnet8_11", "--dataset", "{folder}", "--out", "{tmp}/r", "--holdout", "6",
                "--test-subset", "4"], "holdout (6) and test_subset (4) exclude each other"),
     ("train", ["--model", "resnet8_11", "--dataset", "{folder}", "--out", "{tmp}/r", "--lr", "-1"],
      "lr must be a finite number > 0; received -1"),
     ("train", ["--model", "resnet8_11", "--dataset", "{folder}", "--out", "{tmp}/r", "--ema", "1"],
      "ema must be"),
     *[("train", ["--model", "resnet8_11", "--dataset", "{folder}", "--out", "{tmp}/r", *flags], named)
       for flags, named in [(["--lr", "nan"], "lr must be a finite number > 0; received nan"),
                            (["--momentum", "nan"], "momentum must be a finite number in [0, 1)"),
                            (["--label-smoothing", "2"], "label_smoothing must be a finite number in [0, 1)"),
                            (["--warmup-epochs", "100", "--epochs", "1"], "warmup_epochs must be a finite"),
                            (["--holdout", "0"], "holdout must be >= 1 (an integer); received 0"),
                            (["--epochs", str(10**20)], f"epochs {10**20} is beyond relu_ratio.train")]],
     ("tune", ["--epochs", str(10**20), "--dataset", "{folder}", "--out", "{tmp}/r"], "MAX_EPOCHS = 100,000"),
     ("tune", ["--max-trials", str(10**20), "--dataset", "{folder}", "--out", "{tmp}/r"],
      "MAX_TRIALS = 100,000"),
     ("tune", ["--batch-size", "64", "--dataset", "{folder}", "--out", "{tmp}/r"],  # 24 - 2 held out
      "batch_size 64 is more than the 22 training images (the training split after val_subset); give at"),
     ("zoo", ["evaluate", "resnet20_21", "--data", "{broken}"], "cannot decode image")],
)  # fmt: skip
def test_a_users_mistake_is_one_line_and_exit_2_in_every_cli(cli, argv, named, folder, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    (tmp_path / "q.json").write_text('{"runs": [{"model": "resnet8_21"}]}')
    broken = tmp_path / "broken" / "test" / "cat"
    broken.mkdir(parents=True)
    (broken / "bad.png").write_bytes(b"not a png")
    places = {"file": tmp_path / "file", "folder": folder, "queue": tmp_path / "q.json", "tmp": tmp_path,
              "broken": broken.parent.parent}  # fmt: skip
    assert MAINS[cli]([arg.format(**places) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and named in err, err
    assert not (tmp_path / "r").exists()  # refused before a run folder is made


@pytest.mark.parametrize(
    ("cli", "argv"),
    [("zoo", ["table", "--check", "{}"]), ("zoo", ["table", "--update", "{}"]), ("zoo", ["register", "{}"]),
     ("zoo", ["register", "run", "--data", "{}"]), ("zoo", ["register", "run", "--store", "{}"]),
     ("zoo", ["evaluate", "resnet20_21", "--data", "{}"]), ("experiments", ["results", "--check", "{}"]),
     ("experiments", ["results", "--update", "{}"]), ("experiments", ["plan", "table2", "--out", "{}"]),
     ("experiments", ["run", "table2", "--dataset", "{}"]), ("experiments", ["collect", "{}"]),
     ("experiments", ["run", "table2", "--out", "{}"]),
     ("experiments", ["plan", "table2", "--dataset", "{}"]),
     ("queue", ["status", "{}", "--runs", "r"]), ("queue", ["run", "q.json", "--runs", "{}"]),
     ("queue", ["run", "{}", "--runs", "r"]),
     ("queue", ["run", "q.json", "--runs", "r", "--dataset", "{}"]),
     ("queue", ["status", "q.json", "--runs", "r", "--write", "{}"]),
     ("queue", ["status", "q.json", "--runs", "r", "--seeds-page", "{}"])],
)  # fmt: skip
@pytest.mark.parametrize("blank", ["", " "])
def test_a_path_that_names_nothing_is_refused_not_read_as_not_given(cli, argv, blank, capsys):
    """``--check ''`` checked nothing and passed, ``--write ''`` wrote nothing, ``--out ''`` planned into the
    current folder: every path flag of the hand-written CLIs takes :func:`relu_ratio.flags.path`."""
    with pytest.raises(SystemExit) as exited:
        PARSERS[cli]().parse_args([arg.format(blank) for arg in argv])
    assert exited.value.code == 2
    assert f"{blank!r} names no file or folder (it is empty or blank)" in capsys.readouterr().err


def _parsers(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _usage_mistakes():
    """An unknown flag to every parser and sub-parser (its required arguments missing), a bad choice and a
    flag without its value; the demo's own parser."""
    for cli, make in sorted(PARSERS.items()):
        yield from ((cli, [*name.split()[1:], "--bogus"]) for name, _ in _parsers(make(), cli))
    yield from [("train", ["--recipe", "fats"]), ("train", ["--epochs"]), ("demo", ["--bogus"]),
                ("zoo", ["info", "resnet20_21", "--jsn"])]  # fmt: skip


@pytest.mark.parametrize(("cli", "argv"), list(_usage_mistakes()))
def test_a_usage_mistake_is_its_error_line_and_a_pointer_to_help_not_the_whole_usage(cli, argv, capsys):
    """``train --epochz 3`` printed train's usage, 40 lines of flags, above its one error line. A
    sub-command's mistake names the sub-command and its ``--help`` (``zoo list --bogus`` named ``zoo`` and
    its help, which does not list the flags of ``list``)."""
    from relu_ratio import demo

    with pytest.raises(SystemExit) as exited:
        demo.command(argv) if cli == "demo" else PARSERS[cli]().parse_args(argv)
    err = capsys.readouterr().err
    sub_command = argv[:1] if not argv[0].startswith("-") else []  # its first argument, a flag aside
    prog = re.escape(" ".join([f"python -m relu_ratio.{cli}", *sub_command]))
    shape = rf"{prog}: error: [^\n]+\nrun '{prog} --help' for the usage\n"
    assert exited.value.code == 2 and re.fullmatch(shape, err), err


@pytest.mark.parametrize("cli", sorted(PARSERS))
def test_every_help_shows_an_example_command(cli):
    missing = [name for name, parser in _parsers(PARSERS[cli](), cli)
               if not re.search(r"^examples?:\n  python ", parser.format_help(), re.MULTILINE)]  # fmt: skip
    assert not missing, f"--help without an example: {missing}"


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_relu_ratio_data_is_unset_not_a_bad_dataset_flag(value, monkeypatch):
    """``RELU_RATIO_DATA=`` means "not set", as in most tools (``queue run`` blamed --dataset for it)."""
    from relu_ratio import data

    monkeypatch.setenv("RELU_RATIO_DATA", value)
    assert data.default_source() == data.DEFAULT_DATA
    assert PARSERS["queue"]().parse_args(["run", "q.json", "--runs", "r"]).dataset == data.DEFAULT_DATA


def test_ctrl_c_ends_any_command_with_one_line_and_exit_130(capsys):
    """``zoo evaluate``, ``zoo register``, the demo: Ctrl-C printed a traceback; commands that keep work
    (train, tune, queue run, experiments run) say themselves how to go on."""
    from relu_ratio import flags

    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit:
        flags.exit_with(interrupted)
    assert exit.value.code == 130 and capsys.readouterr().err == "interrupted.\n"


def test_a_reader_that_stops_early_ends_a_command_quietly():
    """``python -m relu_ratio.zoo cards | head -0``: the closed pipe is no error of the user's (it printed
    "error: [Errno 32] Broken pipe" and exited 2; other commands gave a traceback). The cards are more than
    a pipe's buffer, so the pipe closes inside ``main`` (its error handler), not only at the last flush."""
    command = subprocess.Popen([sys.executable, "-m", "relu_ratio.zoo", "cards"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    command.stdout.close()  # before the command has started to write: every write meets a closed pipe
    err = command.stderr.read()
    assert command.wait(timeout=300) == 1, err
    assert "Broken pipe" not in err and "Traceback" not in err, err
