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

from relu_ratio.layers import ReLUBlock


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
    """Count convolutions and ReLUs, and measure parameters and FLOPs of a built model."""
    convs = projections = flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        in_hw = _spatial(layer.input)
        if isinstance(layer, ReLUBlock):
            for is_main, chain in layer.conv_paths():
                hw = in_hw
                for conv in chain:
                    hw, cost = _conv_cost(conv, hw)
                    flops += cost
                convs += len(chain) if is_main else 0
                projections += 0 if is_main else len(chain)
        elif isinstance(layer, layers.Conv2D):
            flops += _conv_cost(layer, in_hw)[1]
            convs += 1
        elif isinstance(layer, layers.Dense):
            flops += int(math.prod(layer.kernel.shape))
    relus = sum(
        isinstance(sub, layers.ReLU) for sub in model._flatten_layers(include_self=False)
    )
    params = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    return Description(model.name, convs, projections, relus, params, flops)


def _spatial(tensor) -> tuple[int, int]:
    if isinstance(tensor, (list, tuple)):
        tensor = tensor[0]
    shape = tensor.shape
    return (shape[1], shape[2]) if len(shape) == 4 else (1, 1)


def _conv_cost(conv: layers.Conv2D, hw: tuple[int, int]) -> tuple[tuple[int, int], int]:
    stride = conv.strides[0]
    out_hw = (-(-hw[0] // stride), -(-hw[1] // stride))
    return out_hw, out_hw[0] * out_hw[1] * int(math.prod(conv.kernel.shape))
