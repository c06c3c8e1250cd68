"""The CIFAR augmentation as a Keras layer, so that it runs inside the compiled training step.

:class:`PadCropFlip` does what :func:`relu_ratio.data.pad_crop_flip` does in numpy on the host: pad 4 pixels
with the mean colour, crop a random window of the original size from each image, flip half of the images
horizontally. Written with ``keras.ops`` and a ``SeedGenerator``, it runs on every backend and, under JAX on a
GPU, on the device: the host hands over uint8 batches and nothing else. At inference it only casts.

Keras' own ``RandomCrop`` draws one window per batch; this layer draws one per image, as the CIFAR recipe
does.

Example:
    >>> augment = PadCropFlip(fill=(125.3, 122.9, 113.9), seed=0)
    >>> inputs = keras.Input((32, 32, 3), dtype="uint8")
    >>> trainable = keras.Model(inputs, model(augment(inputs)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from relu_ratio.data import AUGMENT_PAD
from relu_ratio.validators import is_integer


@keras.saving.register_keras_serializable(package="relu_ratio")
class PadCropFlip(keras.layers.Layer):
    """Pad by ``pad`` pixels with the colour ``fill`` (rounded to integers, as the numpy version pads uint8),
    crop a random window of the input's size per image, flip each image horizontally with probability 1/2.

    Takes images as uint8 or floats on the 0-255 scale and returns float32 images on that scale (the
    models normalise them); computes in float32 whatever the global dtype policy, so the fill and the
    pixels stay exact.
    """

    def __init__(self, fill: Sequence[float], pad: int = AUGMENT_PAD, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not is_integer(pad, 0):
            raise ValueError(f"pad must be an integer >= 0; received {pad!r}.")
        self.fill = tuple(float(round(float(v))) for v in fill)
        self.pad, self.seed = pad, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        images = ops.cast(images, "float32")
        if not training or self.pad == 0:
            return images
        height, width, channels = images.shape[1:]
        if len(self.fill) != channels:
            raise ValueError(f"fill has {len(self.fill)} values for images with {channels} channels.")
        count = ops.shape(images)[0]
        fill = ops.convert_to_tensor(self.fill, "float32")
        pad = [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]]
        padded = ops.pad(images - fill, pad) + fill  # the border takes the fill colour
        offsets = keras.random.randint((count, 2), 0, 2 * self.pad + 1, seed=self.generator)
        flips = keras.random.uniform((count, 1), seed=self.generator) < 0.5
        rows = offsets[:, :1] + ops.arange(height)[None, :]
        cols = offsets[:, 1:] + ops.arange(width)[None, :]
        cols = ops.where(flips, ops.flip(cols, axis=1), cols)
        shape = (count, height, width + 2 * self.pad, channels)
        cropped = ops.take_along_axis(padded, ops.broadcast_to(rows[:, :, None, None], shape), axis=1)
        shape = (count, height, width, channels)
        return ops.take_along_axis(cropped, ops.broadcast_to(cols[:, None, :, None], shape), axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "fill": list(self.fill), "pad": self.pad, "seed": self.seed}
