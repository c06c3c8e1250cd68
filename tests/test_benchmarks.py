"""The benchmark script runs and prints its table (figures are not checked: they depend on the machine)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import keras
import pytest
from helpers import load_module


@pytest.mark.parametrize("path", [[], ["--augment-on", "device", "--steps-per-execution", "2"],
                                  ["--warmup", "0", "--steps", "1"]],
                         ids=["host", "device", "no warm-up"])  # fmt: skip
def test_throughput_script_prints_a_row(capsys, path):
    args = ["--models", "resnet8_21", "--batch", "4", "--steps", "2", "--warmup", "2", "--no-record", *path]
    _benchmark("throughput").main(args)
    out = capsys.readouterr().out
    assert "train img/s" in out and "resnet8_21" in out and ("TFLOP/s" in out) == ("device" in path)


@pytest.mark.parametrize(
    ("script", "valid", "count"),
    [("throughput", "resnet8_21", "--batch"), ("fusion", "resnet8_21", "--repeats"),
     ("precision", "resnet20_21", "--subset"), ("pipeline_cost", "resnet8_21", "--steps"),
     ("profile_step", "resnet8_21", "--steps")],
)  # fmt: skip
def test_a_misspelt_model_or_a_zero_count_stops_a_benchmark_before_it_measures(capsys, script, valid, count):
    """Before the first model is measured (or its row recorded): one line, exit 2."""
    record = ["--no-record"] if script in ("throughput", "fusion", "precision") else []
    misspelt = valid.replace("_21", "_12")  # 1:2, more ReLUs than convolutions
    for argv, said in (
        (["--models", valid, misspelt, *record], f"--models {misspelt!r}: "),
        (["--models", valid, count, "0", *record], f"argument {count}: must be >= 1; received 0"),
    ):
        with pytest.raises(SystemExit) as stop:
            _benchmark(script).main(argv)
        out, err = capsys.readouterr()
        assert stop.value.code == 2 and said in err and "Traceback" not in err, err
        assert err.count("error:") == 1 and valid not in out, (out, err)  # one error; no row of the valid one
    if script != "profile_step":  # a flags.Parser: its pointer to --help is a command one can run as it is
        assert err.endswith(f"\nrun 'python benchmarks/{script}.py --help' for the usage\n"), err


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["--torch-compile"], "--torch-compile needs --torch"),
     (["--steps-per-execution", "4"], "--steps-per-execution needs --augment-on device"),
     (["--no-record", "--note", "quiet"], "--note is recorded with the rows"),
     (["--augment-on", "device", "--torch"], "--torch measures PyTorch on the host path only"),
     (["--models", "resnet8_21", "dfnmr14_type1", "--torch", "--no-record"], "networks in float32 or "
                                                                            "mixed_bfloat16; it has none of "
                                                                            "dfnmr14_type1"),
     (["--torch", "--mixed-precision", "mixed_float16", "--no-record"], "it has none of mixed_float16"),
     (["--update-tables", "--batch", "4"], "--update-tables measures nothing: drop --batch, --models"),
     (["--help"], "(default: 128)")],
)  # fmt: skip
def test_a_throughput_flag_the_others_would_ignore_stops_it_before_it_measures(capsys, argv, said):
    with pytest.raises(SystemExit) as stop:
        _benchmark("throughput").main(["--models", "resnet8_21", *argv])
    out, err = capsys.readouterr()
    helping = argv == ["--help"]
    assert said in (out if helping else err) and stop.value.code == (0 if helping else 2)
    assert helping or (err.count("error:") == 1 and out == ""), (out, err)  # one line, nothing measured


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["--family", "preact", "--depth", "164", "--mask", "01"], "a preact block has 3 ReLU slots: give 3"),
     (["--family", "resnet", "--depth", "20", "--mask", "1x"], "received '1x'"),
     (["--family", "resnet", "--depth", "20", "--mask", "00"], "--mask 00 removes every ReLU"),
     (["--family", "preact", "--depth", "21", "--mask", "011"], r"9n\+2 layers deep, n >= 1 \(11, 20, 29"),
     (["--family", "resnet", "--depth", "2", "--mask", "11"], "received 2"),
     (["--family", "resnet", "--depth", "20", "--mask", "11", "--steps", "0"], "--steps: must be >= 1")],
)  # fmt: skip
def test_the_torch_reference_refuses_a_network_it_would_build_wrong(capsys, argv, said):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit) as stop:
        _benchmark("torch_reference").main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and re.search(said, err), err


def test_pipeline_cost_script_prints_a_row_per_feed(capsys):
    _benchmark("pipeline_cost").main(["--models", "resnet8_21", "--batch", "4", "--steps", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| resnet8_21 |")]
    assert [row.split(" | ")[1] for row in rows] == ["arrays", "batches", "augmented", "cli"], rows
    assert rows[0].split(" | ")[3] == "1.00"  # the bare step is the unit


def test_speed_tables_per_cpu_class_are_current():
    throughput = _benchmark("throughput")
    assert throughput.update_tables(check=True), "run: python benchmarks/throughput.py --update-tables"
    assert throughput.run_context("float32", note="quiet")["cpu_class"] in throughput.CPU_CLASSES


def test_speed_tables_are_written_per_class_from_the_rows(tmp_path):
    throughput = _benchmark("throughput")
    row = {"framework": "keras", "model": "m", "batch": 8, "precision": "float32", "backend": "tensorflow",
           "batch_norm": "fused", "device": "cpu: 2 cores", "train_images_per_s": 50.0, "date": "2026-12-02"}
    torch = {**row, "cpu_class": "AVX2", "backend": "torch", "batch_norm": "stock",
             "train_images_per_s": 150.0, "note": "shared"}  # fmt: skip
    rows = [{**row, "cpu_class": "AVX2"}, torch, row]  # the last recorded before the class was
    results, page, table = tmp_path / "results.jsonl", tmp_path / "page.md", tmp_path / "speeds.json"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page.write_text(f"intro\n{throughput.SPEEDS_START}\nold\n{throughput.SPEEDS_END}\nrest\n")
    assert not throughput.update_tables(check=True, results=results, page=page, table=table)
    assert not table.exists() and "old" in page.read_text()
    assert not throughput.update_tables(results=results, page=page, table=table)
    assert throughput.update_tables(check=True, results=results, page=page, table=table)
    text = page.read_text()
    assert text.index("#### AVX2") < text.index("#### Class not recorded") < text.index("rest")
    assert "| m | 8 | float32 | PyTorch | 150.0 | 3.00x | 1 | 2026-12-02 | shared |" in text
    assert [e["backend"] for e in json.loads(table.read_text())] == ["tensorflow", "torch"]  # classed only


def _benchmark(name: str):
    return load_module(Path(__file__).parents[1] / "benchmarks" / f"{name}.py", name)


def test_profile_groups_ops_by_what_they_do():
    profile = _benchmark("profile_step")
    tape = "StatefulPartitionedCall/gradient_tape/resnet8_21_1"
    assert profile.group_of("_MklNativeConv2DBackpropFilter", f"{tape}/stage1_block1_conv1_1/x") == (
        "conv backward (filter)"
    )
    assert profile.group_of("_MklNativeConv2D", "m/stage1_block1_conv1_1/convolution") == "conv forward"
    assert profile.group_of("SquaredDifference", "m/stage1_block1_bn1_1/moments/x") == "BatchNorm"
    assert profile.group_of("Mul", f"{tape}/final_bn_1/batchnorm/mul_1/Mul") == "BatchNorm"
    assert profile.group_of("FusedBatchNormGradV3", f"{tape}/stage2_block1_bn2_1/x") == "BatchNorm"
    assert profile.group_of("Mul", "StatefulPartitionedCall/sgd/Mul_64") == "optimizer"
    assert profile.group_of("AddN", "StatefulPartitionedCall/AddN_15") == "residual adds and gradient sums"
    assert profile.group_of("Cast", "m/Cast").startswith("casts")
    for op, group in (("aten::mkldnn_convolution", "conv forward"), ("aten::native_batch_norm", "BatchNorm"),
                      ("aten::convolution_backward", "conv backward (input and filter)"),
                      ("aten::threshold_backward", "ReLU"), ("aten::_foreach_add_", "optimizer"),
                      ("aten::copy_", "copies (layouts; PyTorch's casts)")):  # fmt: skip
        assert profile.group_of(op, op) == group, op
    result = {"model": "m", "precision": "float32", "batch_norm": "fused", "step_ms": 10.0,
              "images_per_s": 12800.0, "groups": {"BatchNorm": 2.0, "casts": 6.0}}  # fmt: skip
    table = profile.markdown([result])
    assert "| BatchNorm | 2.0 (25 %) |" in table and "| images/s | 12800 |" in table


@pytest.mark.tensorflow
@pytest.mark.slow
def test_profile_script_traces_a_training_step(capsys):
    pytest.importorskip("xprof", reason="xprof (the profile's reader) is the optional 'profile' extra, large "
                        "and not a test dependency: pip install -e '.[profile]'")
    _benchmark("profile_step").main(["--models", "resnet8_21", "--precisions", "float32", "--steps", "2",
                                     "--warmup", "1", "--batch", "8"])  # fmt: skip
    out = capsys.readouterr().out
    assert "| conv forward |" in out and "| step (wall clock) |" in out


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("backend", "said"),
    [("tensorflow", "reads the trace with xprof: pip install -e '.[profile]'"),
     ("jax", "profiles the TensorFlow and PyTorch backends, not jax")],
)  # fmt: skip
def test_profile_script_that_cannot_profile_stops_before_it_trains(capsys, monkeypatch, backend, said):
    """Without xprof it trained the first model, then stopped at xprof's import with a traceback; under JAX it
    exited 1 (a mistake in the command is 2)."""
    monkeypatch.setitem(sys.modules, "xprof", None)  # as if not installed
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    script = _benchmark("profile_step")
    monkeypatch.setattr(script, "profile", None)  # nothing trains
    with pytest.raises(SystemExit) as stop:
        script.main(["--models", "resnet8_21", "--steps", "1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and said in err, err


@pytest.mark.backend
@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch.profiler: the PyTorch pass runs it")
def test_profile_script_traces_a_training_step_under_pytorch(capsys):
    _benchmark("profile_step").main(["--models", "resnet8_21", "--precisions", "float32", "--steps", "2",
                                     "--warmup", "1", "--batch", "8"])  # fmt: skip
    out = capsys.readouterr().out
    assert "(fused BN, copy-free conv)" in out and "| conv forward |" in out and "| BatchNorm |" in out
