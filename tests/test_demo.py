"""The README's first command: the demo classifies the shipped images with the flagship, quietly."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import start_module

from relu_ratio import data, demo, zoo
from relu_ratio.startup import cli_module, quiet_native_stderr

README = Path(__file__).resolve().parents[1] / "README.md"


def test_demo_classifies_the_shipped_images_with_the_most_accurate_entry(shipped_zoo, capsys, monkeypatch):
    loaded = {}  # the demo's model, predicted on again below (loading it twice took a second build)
    load = zoo.load
    monkeypatch.setattr(zoo, "load", lambda name, **kwargs: loaded.setdefault(name, load(name, **kwargs)))
    demo.main(("preact11_11", "preact11_32"))
    out = capsys.readouterr().out
    best = demo.demo_entry()
    assert best.top1 == max(zoo.info(name).top1 for name in zoo.registry.with_weights(zoo.list()))
    assert list(loaded) == [best.name]
    sample = data.sample()
    predicted = loaded[best.name].predict(sample.images, verbose=0).argmax(axis=1)
    correct = int(np.sum(predicted == sample.labels))
    assert f"{best.name}: {correct}/40 correct" in out
    assert len(re.findall(r"image +\d+: ", out)) == 10
    assert "preact11_11: 10 convs (+3 projections) : 10 ReLUs" in out
    assert "preact11_32: 10 convs (+3 projections) : 7 ReLUs" in out


def test_demo_takes_the_most_accurate_entry_and_the_first_name_of_equals(toy_zoo, monkeypatch):
    first, second = zoo.list_models()
    base = zoo.info(first)

    def demo_name(top1: dict[str, float]) -> str:
        monkeypatch.setattr(
            zoo, "info", lambda name: dataclasses.replace(base, name=name, metrics={"top1": top1[name]})
        )
        return demo.demo_entry().name

    assert demo_name({first: 60.0, second: 61.0}) == second
    assert demo_name({first: 61.0, second: 60.0}) == first
    assert demo_name({first: 61.0, second: 61.0}) == first


def test_demo_on_an_empty_store_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(tmp_path / "empty"))
    assert demo.command([]) == 2
    err = capsys.readouterr().err
    assert f"error: the zoo store {tmp_path / 'empty'} (chosen by $RELU_RATIO_ZOO; unset it" in err
    assert err.count("\n") == 1, err


def test_demo_skips_entries_of_other_classes_and_says_when_none_is_left(toy_zoo, monkeypatch, capsys):
    first, second = zoo.list_models()
    base = zoo.info(first)
    classes = {first: ("cat", "dog", "owl"), second: base.class_names}

    def info(name):
        top1 = 99.0 - len(classes[name])
        return dataclasses.replace(base, name=name, class_names=classes[name], metrics={"top1": top1})

    monkeypatch.setattr(zoo, "info", info)
    assert demo.demo_entry().name == second  # the 3-class entry scores higher, but cannot name these images
    classes[second] = ("a", "b")
    assert demo.command([]) == 2
    err = capsys.readouterr().err
    assert "holds no entry of CIFAR-10's classes (2 of other classes)" in err and err.count("\n") == 1, err


def test_demo_help_and_a_bogus_flag_do_not_run_the_demo(monkeypatch, capsys):
    monkeypatch.setattr(demo, "main", lambda: pytest.fail("the demo ran"))
    for argv, status in [(["--help"], 0), (["--bogus"], 2)]:
        with pytest.raises(SystemExit) as exit_info:
            demo.command(argv)
        assert exit_info.value.code == status
    out, err = capsys.readouterr()
    assert out.startswith("usage: python -m relu_ratio.demo") and "--update FILE" in out
    assert err.count("error:") == 1 and "unrecognized arguments: --bogus" in err  # usage and one error line


def test_shipped_sample_is_small_and_labelled():
    sample = data.sample()
    assert sample.images.shape == (40, 32, 32, 3) and sample.images.dtype == np.uint8
    assert np.bincount(sample.labels).tolist() == [4] * 10
    assert os.path.getsize(data.SAMPLE_FILE) < 200_000


@pytest.mark.slow
def test_shipped_sample_is_the_first_four_test_images_of_each_class(
    shared_data, decoded_data_home, monkeypatch
):
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    test = data.load(shared_data, "test")
    index = np.concatenate([np.flatnonzero(test.labels == c)[:4] for c in range(10)])
    sample = data.sample()
    np.testing.assert_array_equal(sample.images, test.images[index])
    np.testing.assert_array_equal(sample.labels, test.labels[index])
    assert sample.info.class_names == test.info.class_names


@pytest.mark.slow
def test_demo_command_prints_what_the_readme_shows_and_no_tensorflow_start_up_lines():
    process = start_module("relu_ratio.demo", [])
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    assert out.startswith("relu_ratio demo (Keras")
    for noise in ("absl::InitializeLog", "cuInit", "oneDNN custom operations", "cpu_feature_guard"):
        assert noise not in out
    shown = README.read_text().split("<!-- demo:output:start -->")[1].split("<!-- demo:output:end -->")[0]
    lines = [line for line in shown.splitlines() if line.strip() not in ("```", "...", "")]
    stale = [line for line in lines if line not in out]
    assert not stale, f"README's demo block is not what `python -m relu_ratio.demo` prints: {stale}"


def test_the_readme_demo_block_is_written_from_what_the_demo_prints(tmp_path, monkeypatch, capsys):
    printed = ["relu_ratio demo (Keras 3, backend jax)", "", "loaded ...", "classifying ..."]
    printed += [f"  image {i:2d}: cat ok" for i in range(0, 40, 4)] + ["resnet: 38/40 correct", "", "built"]
    monkeypatch.setattr(demo, "main", lambda: print("\n".join(printed)))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{demo.OUTPUT_START}\nold\n{demo.OUTPUT_END}\nrest\n")
    assert demo.command(["--update", os.fspath(readme)]) == 0
    images = [f"  image {i:2d}: cat ok" for i in (0, 4, 8, 12)] + ["  ...", "  image 36: cat ok"]
    block = ["```", "loaded ...", "classifying ...", *images, "resnet: 38/40 correct", "", "built", "```"]
    assert readme.read_text() == "\n".join(["# x", demo.OUTPUT_START, *block, demo.OUTPUT_END, "rest", ""])
    assert capsys.readouterr().out == f"{readme}: demo block written\n"
    assert demo.command(["--update", os.fspath(readme)]) == 0
    assert capsys.readouterr().out == f"{readme}: already current\n"
    monkeypatch.setattr(demo, "main", lambda: pytest.fail("the demo ran for a page it cannot write"))
    (tmp_path / "plain.md").write_text("no markers\n")
    assert demo.command(["--update", os.fspath(tmp_path / "plain.md")]) == 2
    assert "plain.md lacks the lines <!-- demo:output:start -->" in capsys.readouterr().err


def test_quiet_native_stderr_drops_only_the_start_up_lines(capfd):
    with quiet_native_stderr():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"a real error the user must see\n")
    err = capfd.readouterr().err
    assert err == "a real error the user must see\n"


@pytest.mark.parametrize(
    ("argv", "module"),
    [(["python", "-m", "relu_ratio.train", "--epochs", "1"], "relu_ratio.train"),
     (["python", "-W", "ignore", "-X", "dev", "-m", "relu_ratio.zoo", "list"], "relu_ratio.zoo"),
     (["python", "-u", "-mrelu_ratio.demo"], "relu_ratio.demo"),
     (["python", "-m", "pytest", "-m", "relu_ratio.x"], None),
     (["python", "app.py", "-m", "relu_ratio.train"], None),
     (["python", "-c", "import relu_ratio", "-m", "relu_ratio.train"], None),
     (["python", "-m", "relu_ratio_fork.train"], None),
     (["python", "-m"], None)],
)  # fmt: skip
def test_cli_module_names_only_a_relu_ratio_entry_point(argv, module):
    assert cli_module(argv) == module


def test_a_library_import_leaves_stderr_and_tensorflow_alone():
    """``import relu_ratio`` in an application does not touch file descriptor 2 (the CLIs do)."""
    code = ("import os\ndef touched(*args): raise AssertionError('fd 2 redirected on import')\n"
            "os.dup = os.dup2 = touched\nimport relu_ratio\n"
            "print(relu_ratio.startup.cli_module())")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
