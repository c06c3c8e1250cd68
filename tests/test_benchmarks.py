"""The benchmark script runs and prints its table (figures are not checked: they depend on the machine)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_throughput_script_prints_a_row(capsys):
    path = Path(__file__).parents[1] / "benchmarks" / "throughput.py"
    spec = importlib.util.spec_from_file_location("throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--models", "resnet8_21", "--batch", "4", "--steps", "1", "--warmup", "1", "--no-record"])
    out = capsys.readouterr().out
    assert "train img/s" in out and "resnet8_21" in out
