"""Shared fixtures. The Keras backend is chosen by KERAS_BACKEND before anything imports Keras."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

SMALL_NAMES = {  # one small network per family, for tests that build many models
    "plain": "plain8",
    "postresnet": "postresnet8",
    "resnet": "resnet8",
    "preact": "preact11",
    "dfnmr": "dfnmr14",
}


def pytest_collection_modifyitems(config, items):
    if keras.backend.backend() != "tensorflow":
        skip = pytest.mark.skip(reason=f"needs TensorFlow; backend is {keras.backend.backend()}")
        for item in items:
            if "tensorflow" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def images():
    """A small batch of random uint8-range float images."""
    return np.random.default_rng(0).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")


@pytest.fixture
def tmp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path / "home"))
    return tmp_path / "home"
