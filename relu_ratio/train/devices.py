"""What a run trains on: the device's name (:func:`device`), and whether a recorded name is a GPU's.

A run resumed on another machine records each device it trained on, joined by :data:`DEVICE_SEPARATOR`.

Example:
    >>> from relu_ratio.train.devices import DEVICE_SEPARATOR, is_gpu
    >>> is_gpu(DEVICE_SEPARATOR.join(["cpu: 2 cores", "gpu: NVIDIA H100 80GB HBM3 x1"]))
    True
"""

from __future__ import annotations

import os

import keras

DEVICE_SEPARATOR = " + "  # joins the devices of a run resumed elsewhere, e.g. "gpu: … + cpu: 2 cores"


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
    return backend
