"""How training images reach the step: augmented on the host in numpy, or on the device inside the step.

``augment_on="host"`` (the default) feeds :class:`relu_ratio.data.Batches`: every batch is shuffled, padded,
cropped and flipped in numpy, then handed to the backend. ``augment_on="device"`` wraps the network in a
training model whose first layer is :class:`~relu_ratio.train.augment.PadCropFlip` and feeds uint8 batches:
the host only slices the shuffled training set and copies 3 KB an image, the augmentation runs in the
compiled step (under JAX on a GPU, on the GPU). With ``steps_per_execution`` > 1 Keras runs several steps
per call before it returns to the callbacks, so the host does not wait on the device after every step.

Both train the same network on the same distribution of augmented images (the same pad, window and flip
probabilities); the random draws differ, so a run keeps the way it started when it resumes.

Example:
    >>> trainable, batches = training_input(model, split, batch_size=512, seed=0, augment_on="device")
    >>> trainable.compile(...); trainable.fit(batches, epochs=...)  # doctest: +SKIP
"""

from __future__ import annotations

import keras

from relu_ratio import data
from relu_ratio.train.augment import PadCropFlip

AUGMENT_ON = ("host", "device")


def training_input(
    model: keras.Model, split: data.Split, batch_size: int, seed: int, augment_on: str = "host"
) -> tuple[keras.Model, keras.utils.PyDataset]:
    """``(the model to fit, its training batches)`` for ``augment_on`` (``"host"`` or ``"device"``).

    With ``"device"`` the model to fit is a new functional model, uint8 images in, ``model``'s outputs
    out, sharing ``model``'s layers and weights: save ``model``, not it.
    """
    if augment_on == "host":
        return model, data.batches(split, batch_size, augment=True, seed=seed, one_hot=True)
    if augment_on != "device":
        raise ValueError(f"augment_on must be one of {list(AUGMENT_ON)}; received {augment_on!r}.")
    inputs = keras.Input(split.images.shape[1:], dtype="uint8", name="images")
    augmented = PadCropFlip(split.info.mean, seed=seed, name="pad_crop_flip")(inputs)
    trainable = keras.Model(inputs, model(augmented), name=f"{model.name}_augmented")
    return trainable, data.batches(split, batch_size, seed=seed, one_hot=True, shuffle=True)
