"""Numerics across backends and precisions: every zoo network gives the same probabilities under TensorFlow
and JAX, and half-precision inference stays within the stated drop."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import SHAPE

from relu_ratio import data, models, zoo

OTHER_BACKEND = """
import sys
import tarfile
import numpy as np
from relu_ratio import zoo
images = np.load(sys.argv[1])
np.savez(sys.argv[2], **{name: zoo.load(name).predict(images, verbose=0) for name in sys.argv[3:]})
"""


def one_entry_per_network() -> list[str]:
    """The zoo's entries, one per network built (its builder name): a tagged variant such as
    ``resnet20_21.long`` has its twin's layers, so backend and precision numerics are checked once per
    network, on the untagged entry (``zoo.list()`` sorts it first)."""
    first: dict[str, str] = {}
    for name in zoo.list():
        first.setdefault(zoo.info(name).builder_name, name)
    return sorted(first.values())


@pytest.mark.slow
def test_tensorflow_and_jax_give_the_same_probabilities_for_every_zoo_network(shipped_zoo, tmp_path):
    names = one_entry_per_network()
    images = np.random.default_rng(1).integers(0, 256, (64, *SHAPE), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    env = {**os.environ, "KERAS_BACKEND": other}
    command = [sys.executable, "-c", OTHER_BACKEND, str(tmp_path / "images.npy"), str(tmp_path / "other.npz"),
               *names]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = np.load(tmp_path / "other.npz")
    assert sorted(theirs.files) == names and names
    for name in names:
        ours = zoo.load(name).predict(images, verbose=0)
        assert np.abs(ours - theirs[name]).max() <= 1e-4, name


def _precision_benchmark():
    path = Path(__file__).parents[1] / "benchmarks" / "precision.py"
    spec = importlib.util.spec_from_file_location("precision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.backend
@pytest.mark.slow
def test_half_precision_inference_stays_within_the_stated_drop(
    shipped_zoo, shared_data, decoded_data_home, monkeypatch
):
    """On 1,000 test images: float32 reproduces the registered accuracy (to sampling noise), and
    mixed_float16 / mixed_bfloat16 lose at most ``precision.BOUND`` points of top-1. The smallest entry of
    each family on TensorFlow (half precision is emulated, slowly, on CPUs without AVX-512: all six entries
    took ten minutes; ``benchmarks/precision.py`` measures every entry); on JAX the smallest entry."""
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    precision = _precision_benchmark()
    subset = data.load(shared_data, "test").take(1000)
    smallest: dict[str, str] = {}
    for name in sorted(one_entry_per_network(), key=lambda name: zoo.info(name).flops):
        smallest.setdefault(models.parse_name(zoo.info(name).builder_name)[0], name)
    names = sorted(smallest.values())
    if keras.backend.backend() != "tensorflow":
        names = [min(names, key=lambda name: zoo.info(name).flops)]
    for name in names:
        rows = {row["precision"]: row for row in precision.measure(name, subset)}
        assert abs(rows["float32"]["top1"] - zoo.info(name).top1) < 5, rows  # a real model, not noise
        for policy, bound in precision.BOUND.items():
            assert rows[policy]["drop"] <= bound, (name, rows)
            assert rows[policy]["agreement"] >= 100 - 2 * bound, (name, rows)
    assert keras.mixed_precision.global_policy().name == "float32"
