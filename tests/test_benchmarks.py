"""The benchmark script runs and prints its table (figures are not checked: they depend on the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import load_module


def test_throughput_script_prints_a_row(capsys):
    args = ["--models", "resnet8_21", "--batch", "4", "--steps", "1", "--warmup", "1", "--no-record"]
    _benchmark("throughput").main(args)
    out = capsys.readouterr().out
    assert "train img/s" in out and "resnet8_21" in out


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
