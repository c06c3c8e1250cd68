"""An entry's reference outputs: what its stored weights computed on fixed images when it was registered.

``zoo register`` records them beside the accuracy it measures (``metadata.json``, ``reference_outputs``):
for each of 40 images, the predicted class and its probability. :func:`verify` loads the entry and compares,
in seconds, offline, on any backend and machine: the same weights through today's code and today's backend
give the registered outputs, so the registered accuracy holds without reading the test split again
(``zoo evaluate`` re-measures it on the whole split). The images are the package's CIFAR-10 (JPEG) sample
(:func:`relu_ratio.data.sample`) for entries that take 32x32x3 images, else 40 seeded random images of the
entry's input shape.

Example:
    >>> from relu_ratio import zoo
    >>> zoo.verify("resnet20_21")["max_difference"] <= zoo.reference.TOLERANCE     # doctest: +SKIP
    True
"""

from __future__ import annotations

import keras
import numpy as np

from relu_ratio import data as data_lib
from relu_ratio.zoo import registry
from relu_ratio.zoo.entry import IntegrityError, ZooEntry, ZooError

SAMPLE_IMAGES = "cifar10_jpeg_sample"  # relu_ratio.data.sample(): 40 CIFAR-10 (JPEG) test images
NOISE_IMAGES = "seeded_noise"  # 40 uniform random uint8 images of the entry's input shape, seed 0
COUNT = 40
# Probability of the recorded class, at most this far from the recorded value. On the six CIFAR-10 (JPEG)
# entries registered under TensorFlow, `python -m relu_ratio.zoo verify` measured at most 4.9e-8 on
# TensorFlow, 2.4e-6 on JAX and 2.5e-6 on PyTorch (an AVX2 CPU); a changed layer, weight or normalisation
# moves it by far more.
TOLERANCE = 1e-4
DECIMALS = 7


def images(input_shape: tuple[int, int, int]) -> tuple[str, np.ndarray]:
    """``(name, uint8 images)``: the reference images for a model taking ``input_shape`` images."""
    sample = data_lib.sample()
    if tuple(sample.images.shape[1:]) == tuple(input_shape):
        return SAMPLE_IMAGES, sample.images
    noise = np.random.default_rng(0).integers(0, 256, size=(COUNT, *input_shape), dtype=np.uint8)
    return NOISE_IMAGES, noise


def _probabilities(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    """One eager call on the 40 images: no compiled predict function to trace for a single batch."""
    outputs = model(keras.ops.convert_to_tensor(pixels), training=False)
    return np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)


def record(model: keras.Model) -> dict:
    """The reference outputs of a probability-outputting ``model``: the image set's name, and per image the
    predicted class and its probability."""
    name, pixels = images(tuple(model.input_shape[1:]))
    probabilities = _probabilities(model, pixels)
    classes = probabilities.argmax(axis=1)
    return {
        "images": name,
        "classes": [int(c) for c in classes],
        "probabilities": [round(float(p), DECIMALS) for p in probabilities[np.arange(len(classes)), classes]],
    }


def compare(model: keras.Model, recorded: dict) -> dict:
    """How ``model``'s outputs on the reference images differ from ``recorded``: ``max_difference`` (the
    largest change of a recorded class's probability), ``same_class`` (images whose predicted class is the
    recorded one) and ``images`` (the image set's name and count)."""
    name, pixels = images(tuple(model.input_shape[1:]))
    if name != recorded["images"]:
        raise ZooError(f"reference outputs recorded on {recorded['images']!r}; the model takes {name!r}.")
    probabilities = _probabilities(model, pixels)
    classes, outputs = np.asarray(recorded["classes"]), probabilities.shape[1]
    if classes.max() >= outputs:
        raise ZooError(f"reference outputs name class {classes.max()}; the model has {outputs} outputs.")
    now = probabilities[np.arange(len(classes)), classes]
    return {
        "images": f"{len(classes)} images ({name})",
        "max_difference": float(np.max(np.abs(now - np.asarray(recorded["probabilities"])))),
        "same_class": int(np.sum(probabilities.argmax(axis=1) == classes)),
    }


def verify(name: str) -> dict:
    """Load zoo entry ``name`` (its weights' sha256 checked) in float32, whatever the global dtype policy, and
    compare its outputs on the reference images with those recorded at registration (:func:`compare`'s dict,
    with ``name``, ``backend`` and ``tolerance``).

    Raises:
        ZooError: the entry was registered before reference outputs were recorded.
        IntegrityError: an output differs by more than :data:`TOLERANCE`.
    """
    entry: ZooEntry = registry.info(name)
    if entry.reference_outputs is None:
        raise ZooError(
            f"zoo entry {name!r} records no reference outputs (registered before they were); record them by "
            f"registering it again from its stored weights: python -m relu_ratio.zoo register "
            f"{registry.entry_dir(name)} --force"
        )
    report = {"name": name, "backend": keras.backend.backend(), "tolerance": TOLERANCE}
    policy = keras.config.dtype_policy()  # a caller's global mixed_bfloat16 would round the outputs
    keras.config.set_dtype_policy("float32")  # as they were recorded
    try:
        model = registry.load(name)
    finally:
        keras.config.set_dtype_policy(policy)
    report.update(compare(model, entry.reference_outputs))
    if report["max_difference"] > TOLERANCE:
        raise IntegrityError(
            f"zoo entry {name!r} on {report['backend']}: a recorded class's probability changed by "
            f"{report['max_difference']:.2e} (allowed {TOLERANCE:.0e}) on {report['images']}; "
            f"{report['same_class']} of them keep their class: this code computes another function."
        )
    return report
