"""Constants and plain functions that several test files share (fixtures are in conftest.py)."""

from __future__ import annotations

import errno
import gc
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import FIXTURE_ZOO

from relu_ratio import models, zoo

REAL = "resnet8_21"  # a real registered entry of the test fixtures' store (toy_zoo): loads in a second
SHAPE = (32, 32, 3)
RNG = np.random.default_rng(0)
RAW = RNG.integers(0, 256, (4, *SHAPE), dtype=np.uint8)


def cheapest_entry(names: list[str]) -> str:
    """Of the zoo entries ``names`` whose weights the store holds, the one with the fewest multiply-adds
    (ties: the first by name)."""
    return min(zoo.registry.with_weights(names), key=lambda name: (zoo.info(name).flops, name))


def cheapest_per_family(names: list[str]) -> list[str]:
    """Of the zoo entries ``names`` whose weights the store holds, the :func:`cheapest_entry` of each family
    (its builder's ``parse_name`` first part), sorted by name."""
    cheapest: dict[str, str] = {}
    for name in sorted(zoo.registry.with_weights(names), key=lambda name: (zoo.info(name).flops, name)):
        cheapest.setdefault(models.parse_name(zoo.info(name).builder_name)[0], name)
    return sorted(cheapest.values())


def real_entries_for_this_backend() -> list[str]:
    """The repository's zoo entries (not the fixtures') that a per-entry check runs on: every one under
    TensorFlow, the full pass that holds each entry's weights and metadata; under another backend
    :func:`cheapest_per_family`, since there every entry of a family runs the same layers and only the
    backend differs. Keeps the other backends' passes from growing with every entry registered."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RELU_RATIO_ZOO", raising=False)
        names = zoo.registry.with_weights(zoo.list())
        return names if keras.backend.backend() == "tensorflow" else cheapest_per_family(names)


def load_module(path, name):
    """The Python file ``path`` (a script of the repository, not importable by name) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def full_disk(code=errno.ENOSPC):
    def write(file, *args, **kwargs):  # writes part of the file, then the disk is full
        file.write(b"\0" * 4096)
        raise OSError(code, os.strerror(code))

    return write


# --- two processes, one cache -----------------------------------------------------------------------------

BARRIER = """
import os, sys, time
from pathlib import Path
barrier = Path(sys.argv[1])

def wait_for_the_other():
    (barrier / str(os.getpid())).touch()
    deadline = time.time() + 120
    while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.01)
"""


def two_processes(script, argument, tmp_path, backend):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "RELU_RATIO_HOME": str(tmp_path / "home"), "KERAS_BACKEND": backend,
           "RELU_RATIO_ZOO": FIXTURE_ZOO}  # fmt: skip
    command = [sys.executable, "-c", script, str(barrier), str(argument)]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    assert len(list(barrier.iterdir())) == 2  # both really got to the write
    return [out for out, _ in outputs]


def lock_of(pid: int, host: str | None = None) -> str:
    """The text of a folder lock (``.lock``, :mod:`relu_ratio.folder_lock`) held by process ``pid``."""
    return json.dumps({"pid": pid, "host": host or socket.gethostname(), "since": "earlier",
                       "command": "python -m relu_ratio.train --out x"})  # fmt: skip


# --- Ctrl-C where Python loses it ------------------------------------------------------------------------


class Steps(keras.callbacks.Callback):
    """Counts the training steps of a fit (of a run: every fit it makes)."""

    count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1


def lose_ctrl_c() -> None:
    """Deliver Ctrl-C inside a garbage-collection callback, where Python drops the ``KeyboardInterrupt`` (as
    it did in JAX's, with the TensorFlow backend: helper-54's probe)."""

    def interrupt(phase, info):
        gc.callbacks.remove(interrupt)
        signal.raise_signal(signal.SIGINT)

    gc.callbacks.append(interrupt)
    gc.collect()


class CtrlCLostAfterTheFirstBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            lose_ctrl_c()
