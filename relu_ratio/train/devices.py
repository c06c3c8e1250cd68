"""What a run trains on: the device's name (:func:`device`), whether a recorded name is a GPU's, and the
CPU's instruction class (:func:`cpu_class`).

A run resumed on another machine records each device it trained on, joined by :data:`DEVICE_SEPARATOR`.

Example:
    >>> from relu_ratio.train.devices import DEVICE_SEPARATOR, is_gpu
    >>> is_gpu(DEVICE_SEPARATOR.join(["cpu: 2 cores", "gpu: NVIDIA H100 80GB HBM3 x1"]))
    True
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import keras

DEVICE_SEPARATOR = " + "  # joins the devices of a run resumed elsewhere, e.g. "gpu: … + cpu: 2 cores"

# x86 classes, best first, each with the /proc/cpuinfo flag that defines it; any other CPU is "arm" or "other"
CPU_CLASS_FLAGS = {"AMX": "amx_bf16", "AVX512-BF16": "avx512_bf16", "AVX-512": "avx512f", "AVX2": "avx2"}
CPU_CLASSES = (*CPU_CLASS_FLAGS, "arm", "other")
BF16_CPU_CLASSES = ("AMX", "AVX512-BF16")  # bfloat16 arithmetic in hardware


def is_gpu(device_name: str) -> bool:
    """Whether a :func:`device` name, or several joined by ``DEVICE_SEPARATOR``, includes a GPU.

    >>> is_gpu("gpu: NVIDIA H100 80GB HBM3 x1 + cpu: 2 cores"), is_gpu("cpu: 2 cores")
    (True, False)
    """
    return any(part.startswith("gpu") for part in device_name.split(DEVICE_SEPARATOR))


def device() -> str:
    """The device training runs on, e.g. ``"cpu: 2 cores"`` or ``"gpu: NVIDIA H100 x1"``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        dev = jax.devices()[0]
        return f"{dev.platform}: {getattr(dev, 'device_kind', dev)} x{jax.device_count()}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"gpu: {len(gpus)} x {gpus[0].name}" if gpus else f"cpu: {os.cpu_count()} cores"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"gpu: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
        return f"cpu: {os.cpu_count()} cores"
    return backend


def cpu_class(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's class, one of :data:`CPU_CLASSES`: the best of ``AMX`` (``amx_bf16``), ``AVX512-BF16``,
    ``AVX-512`` (``avx512f``) and ``AVX2`` whose flag is on the ``flags`` line of ``cpuinfo`` (Linux); else
    ``arm`` on an ARM machine (Apple silicon, aarch64) and ``other`` for the rest (an x86 CPU without AVX2,
    or one whose flags cannot be read: macOS on Intel, Windows).

    >>> cpu_class()  # doctest: +SKIP
    'AVX2'
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    line = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    flags = set(line.group(1).split()) if line else set()
    for name, flag in CPU_CLASS_FLAGS.items():
        if flag in flags:
            return name
    return "arm" if platform.machine().lower() in ("arm64", "aarch64") else "other"
