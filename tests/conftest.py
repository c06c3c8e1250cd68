"""Shared fixtures. The Keras backend is chosen by KERAS_BACKEND before anything imports Keras."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys

# Before Keras loads JAX: a test compiles each of its small graphs once, so XLA's compile time is most of a
# JAX test's time; unoptimised CPU code passes the same checks (fast-math is off at every level) and the JAX
# pass takes about 40 % less. Subprocesses inherit it. TensorFlow does not use XLA on a CPU.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

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
    backend = keras.backend.backend()
    if backend != "tensorflow":
        skip = pytest.mark.skip(
            reason=f"tests TensorFlow itself (SavedModel export, tf.data), which the {backend} backend does "
            "not use; the suite's default run, on the TensorFlow backend, covers it"
        )
        for item in items:
            if "tensorflow" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler while the test runs (a test worker process may have another)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def images():
    """A small batch of random uint8-range float images."""
    return np.random.default_rng(0).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")


FIXTURE_ZOO = os.path.join(os.path.dirname(__file__), "fixtures", "zoo")  # two 3-epoch ResNet-8s (README)


@pytest.fixture
def toy_zoo(monkeypatch, tmp_path):
    """The test fixtures' registry store (``resnet8_11``, ``resnet8_21``: small real entries), read only,
    with a private cache home; returns the home."""
    monkeypatch.setenv("RELU_RATIO_ZOO", FIXTURE_ZOO)
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def shipped_zoo(monkeypatch, tmp_path):
    """The repository's zoo/ (what the package ships), read only, with a private home; returns the home."""
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tmp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path / "home"))
    return tmp_path / "home"


SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def write_image_folder(root, split="test", classes=("cat", "dog", "owl"), per_class=4, size=(32, 32)):
    """A tiny ``split/label/image.png`` dataset of random images; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in classes:
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path / "home"))
    return write_image_folder(tmp_path / "ds")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Tiny train (8 per class) and test (4 per class) splits of 3 classes, 32x32; the data cache goes to a
    temporary $RELU_RATIO_HOME."""
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path / "home"))
    write_image_folder(tmp_path / "ds", split="train", per_class=8)
    return write_image_folder(tmp_path / "ds", split="test", per_class=4)


@pytest.fixture
def shared_data():
    if not os.path.exists(os.path.join(SHARED_DATA, "cifar10-jpeg-test.tar.gz")):
        pytest.skip(
            "the CIFAR-10 JPEG archives, which the repository does not ship, are not beside this checkout "
            f"(looked for {os.path.abspath(SHARED_DATA)}/cifar10-jpeg-test.tar.gz)"
        )
    return os.path.abspath(SHARED_DATA)


@pytest.fixture(scope="session")
def decoded_data_home(tmp_path_factory) -> str:
    """One ``$RELU_RATIO_HOME`` for the tests that read ``shared_data``: each split is decoded once a session
    (the test split takes about 5 s, train 10 s) instead of once a test; the workers of one ``pytest -n``
    run share it (the data cache is written atomically). Set it in the test's body, after fixtures such as
    ``toy_zoo`` that give the test a private home."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base is a folder of the run's
        root = root.parent
    home = root / "decoded-data-home"
    home.mkdir(exist_ok=True)
    return os.fspath(home)


def start_module(module: str, args, env=None, **kwargs) -> subprocess.Popen:
    """``python -m module *args`` in a new process: this interpreter, ``env`` added to ours, text output."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def logged_epochs(run_dir) -> list[int]:
    """The epochs a training run logged in its ``metrics.csv``, in order (none before the file exists)."""
    if not (run_dir / "metrics.csv").exists():
        return []
    with open(run_dir / "metrics.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.fixture
def live_holder():
    """A lock file's content (:mod:`relu_ratio.folder_lock`) naming a live process on this host."""
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid, json.dumps({"pid": process.pid, "host": socket.gethostname(), "since": "earlier",
                                   "command": "python -m relu_ratio.queue run q.json"})  # fmt: skip
    process.kill()
    process.wait()
