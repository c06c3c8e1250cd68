"""Measure a built model: convolutions, ReLUs, their ratio, parameters and FLOPs.

Everything is read off the model object itself (its layers, weights and tensor shapes), never
from the pattern that built it, so tests can check one against the other.

Example:
    >>> import relu_ratio
    >>> print(relu_ratio.describe(relu_ratio.models.build("preact164_32")))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers

from relu_ratio.blocks import is_projection


@dataclasses.dataclass(frozen=True)
class Description:
    """What :func:`describe` measured. FLOPs count multiply-adds of convolutions and dense layers."""

    name: str
    convs: int  # on the main path: stem, blocks, excluding 1x1 projection shortcuts
    projections: int
    relus: int
    params: int  # trainable
    flops: int  # multiply-adds per image

    @property
    def ratio(self) -> float:
        return self.convs / self.relus if self.relus else math.inf

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.convs} convs (+{self.projections} projections) : "
            f"{self.relus} ReLUs = {self.ratio:.2f} | {self.params:,} params | "
            f"{self.flops / 1e6:,.1f} M FLOPs (multiply-adds) per image"
        )


def describe(model: keras.Model) -> Description:
    """Count convolutions and ReLUs, and measure parameters and FLOPs of a built model.

    Reads the layers themselves (nested models included): every ``Conv2D`` / ``DepthwiseConv2D`` is a
    convolution unless :func:`relu_ratio.blocks.is_projection`; a ReLU is every layer that applies one of
    the ReLU family (:func:`applies_relu`: ``ReLU`` and ``LeakyReLU`` layers, ``Activation("relu")``, a
    layer built with ``activation="relu"`` such as a conv or the fused ``Affine``).
    """
    convs = projections = relus = flops = 0
    for layer in model._flatten_layers(include_self=False):
        relus += applies_relu(layer)
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            out_h, out_w = layer.output.shape[1:3]
            flops += out_h * out_w * int(math.prod(layer.kernel.shape))
            if is_projection(layer):
                projections += 1
            else:
                convs += 1
        elif isinstance(layer, layers.Dense):
            flops += int(math.prod(layer.kernel.shape))
    params = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    return Description(model.name, convs, projections, relus, params, flops)


RELU_FAMILY = (keras.activations.relu, keras.activations.relu6, keras.activations.leaky_relu)


def applies_relu(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` applies a rectifier of the ReLU family (ReLU, capped, leaky): a ``ReLU`` or
    ``LeakyReLU`` layer, or a layer whose ``activation`` is in :data:`RELU_FAMILY` (``Activation("relu")``,
    ``Conv2D(..., activation="relu6")``, the fused ``Affine``...).

    Example:
        >>> applies_relu(keras.layers.Activation("relu")), applies_relu(keras.layers.Dense(4))
        (True, False)
    """
    if isinstance(layer, (layers.ReLU, layers.LeakyReLU)):
        return True
    return any(getattr(layer, "activation", None) is relu for relu in RELU_FAMILY)
