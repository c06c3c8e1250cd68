"""Numerics across precisions: half-precision inference of zoo models against float32.

Backends are held to the outputs each entry recorded at registration (``zoo verify``) in test_zoo.py.
"""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from helpers import cheapest_entry, cheapest_per_family, load_module

from relu_ratio import data, zoo

CHANGED_AT_MOST = 2  # of the 40 shipped images (benchmarks/precision.py: 0.01-0.36 % of the test split)


@pytest.mark.backend
def test_half_precision_inference_gives_the_float32_classes(shipped_zoo):
    """mixed_float16 and mixed_bfloat16 inference change the float32 class of at most ``CHANGED_AT_MOST`` of
    the 40 test images shipped with the package: the smallest entry of each family on TensorFlow (half
    precision is emulated, slowly, on CPUs without AVX-512), the smallest entry on other backends. The drop
    in top-1 on the whole test split is the benchmark's (``benchmarks/precision.py``, ``BOUND``)."""
    precision = load_module(Path(__file__).parents[1] / "benchmarks" / "precision.py", "precision")
    names = cheapest_per_family(zoo.list())
    if keras.backend.backend() != "tensorflow":
        names = [cheapest_entry(names)]
    sample = data.sample()
    for name in names:
        rows = {row["precision"]: row for row in precision.measure(name, sample)}
        for policy in precision.BOUND:
            assert rows[policy]["agreement"] >= 100 * (1 - CHANGED_AT_MOST / len(sample)), (name, rows)
    assert keras.mixed_precision.global_policy().name == "float32"
