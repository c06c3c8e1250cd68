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
from collections.abc import Iterator

import keras
from keras import layers

from relu_ratio.blocks import is_projection

CONVOLUTIONS = (
    layers.Conv1D, layers.Conv2D, layers.Conv3D,
    layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose,
    layers.DepthwiseConv1D, layers.DepthwiseConv2D, layers.SeparableConv1D, layers.SeparableConv2D,
)  # fmt: skip
DENSE = (layers.Dense, layers.EinsumDense)
TRANSPOSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
SEPARABLE = (layers.SeparableConv1D, layers.SeparableConv2D)


@dataclasses.dataclass(frozen=True)
class Description:
    """What :func:`describe` measured. FLOPs count multiply-adds of convolutions and dense layers; ``None``
    where they depend on a size the model leaves open (e.g. ``input_shape=(None, None, 3)``)."""

    name: str
    convs: int  # on the main path: stem, blocks, excluding 1x1 projection shortcuts
    projections: int
    relus: int
    params: int  # trainable
    flops: int | None  # multiply-adds per image; None: unknown (a spatial size is not fixed)

    @property
    def ratio(self) -> float:
        return self.convs / self.relus if self.relus else math.inf

    def __str__(self) -> str:
        flops = (
            "FLOPs unknown (the spatial size is not fixed)"
            if self.flops is None
            else f"{self.flops / 1e6:,.1f} M FLOPs (multiply-adds) per image"
        )
        return (
            f"{self.name}: {self.convs} convs (+{self.projections} projections) : "
            f"{self.relus} ReLUs = {self.ratio:.2f} | {self.params:,} params | {flops}"
        )


def describe(model: keras.Model) -> Description:
    """Count convolutions and ReLUs, and measure parameters and FLOPs of a built model.

    Reads the layer graph of a functional or ``Sequential`` model call by call (nested functional models
    included): a layer called twice (shared) counts twice, its FLOPs too. Every convolution layer
    (:data:`CONVOLUTIONS`: ``Conv1D``-``3D``, transposed, depthwise, separable, each one convolution) counts
    unless :func:`relu_ratio.blocks.is_projection`; a ReLU is every call that applies one of the ReLU
    family (:func:`applies_relu`: ``ReLU`` and ``LeakyReLU`` layers, ``Activation("relu")``, a layer built
    with ``activation="relu"`` such as a conv or the fused ``Affine``, an ``Activation`` or ``Lambda`` of a
    function named ``relu``, ``relu6`` or ``leaky_relu``, and ``keras.ops.relu`` called on the graph's
    tensors).

    Where a spatial size is left open (``input_shape=(None, None, 3)``) the counts and parameters are
    still exact, and ``flops`` is ``None`` (unknown) rather than a guess or an error.

    Raises:
        ValueError: for a subclassed model, or a layer whose own sublayers hold convolutions, dense layers
            or ReLUs: their calls happen inside ``call()``, where they cannot be counted.
    """
    convs = projections = relus = 0
    flops: int | None = 0
    for layer, node in _calls(model):
        relus += applies_relu(layer)
        if isinstance(layer, CONVOLUTIONS) and is_projection(layer):
            projections += 1
        else:
            convs += isinstance(layer, CONVOLUTIONS)
        macs = _macs(layer, node)
        flops = None if flops is None or macs is None else flops + macs
    params = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    return Description(model.name, convs, projections, relus, params, flops)


SUPPORTED = (
    "Supported: functional models (keras.Model(inputs, outputs), relu_ratio.models, keras.applications) and "
    "Sequential models with an Input, of leaf layers and nested functional or Sequential models."
)


def graph_nodes(model: keras.Model) -> list:
    """The calls (Keras nodes) of ``model``'s own graph in execution order, inputs left out.

    Raises:
        ValueError: if ``model`` is not a functional or built ``Sequential`` model.
    """
    graph = model._functional if isinstance(model, keras.Sequential) else model
    if not hasattr(graph, "_nodes_by_depth"):
        if isinstance(model, keras.Sequential):
            what = "an unbuilt Sequential model (give it a keras.Input first)"
        elif isinstance(model, keras.Model):
            what = f"a subclassed model ({type(model).__name__}), whose layer calls happen inside call()"
        else:
            what = f"a {type(model).__name__}, not a model"
        name = getattr(model, "name", model)
        raise ValueError(f"{name!r} is {what}: its graph cannot be read. {SUPPORTED}")
    by_depth = graph._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth] if not node.is_input]


def _is_graph(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Sequential) or hasattr(layer, "_nodes_by_depth")


def _calls(model: keras.Model) -> Iterator[tuple[keras.layers.Layer, object]]:
    """Every (leaf layer, node) call of ``model``, through nested functional and Sequential models."""
    for node in graph_nodes(model):
        operation = node.operation
        if _is_graph(operation):
            yield from _calls(operation)
        elif isinstance(operation, layers.Layer):
            hidden = [
                sub.name for sub in operation._flatten_layers(include_self=False)
                if isinstance(sub, (*CONVOLUTIONS, *DENSE)) or applies_relu(sub)
            ]  # fmt: skip
            if hidden:
                raise ValueError(
                    f"layer {operation.name!r} ({type(operation).__name__}) calls {', '.join(hidden)} inside "
                    f"its call(), where they cannot be counted call by call. {SUPPORTED}"
                )
            yield operation, node
        else:  # a keras.ops call on the graph's tensors (keras.ops.relu, keras.ops.add...): no weights
            yield operation, node


def _macs(layer: keras.layers.Layer, node) -> int | None:
    """Multiply-adds of one call of a convolution or dense layer (0 for other layers); ``None`` if a size
    it depends on is unknown."""
    if isinstance(layer, CONVOLUTIONS):
        # a transposed conv scatters each input position over its kernel; the others gather per output
        shape = (node.input_tensors[0] if isinstance(layer, TRANSPOSED) else node.outputs[0]).shape
        positions = shape[2:] if layer.data_format == "channels_first" else shape[1:-1]
        separable = isinstance(layer, SEPARABLE)
        weights = (layer.depthwise_kernel, layer.pointwise_kernel) if separable else (layer.kernel,)
    elif isinstance(layer, layers.Dense):
        positions, weights = node.outputs[0].shape[1:-1], (layer.kernel,)
    elif isinstance(layer, layers.EinsumDense):  # each input value meets each output the kernel makes
        input_spec, kernel_spec = layer.equation.split("->")[0].split(",")
        made = math.prod(n for letter, n in zip(kernel_spec, layer.kernel.shape) if letter not in input_spec)
        per_image = node.input_tensors[0].shape[1:]
        return None if None in per_image else math.prod(per_image) * made
    else:
        return 0
    if None in positions:
        return None
    return math.prod(positions) * sum(int(math.prod(w.shape)) for w in weights)


RELU_FAMILY = (keras.activations.relu, keras.activations.relu6, keras.activations.leaky_relu)
RELU_NAMES = ("relu", "relu6", "leaky_relu")  # the functions' names, the same in keras.ops, tf.nn and torch
RELU_OPERATIONS = ("Relu", "Relu6", "LeakyRelu", "ReLU")  # what keras.ops / keras.activations put in a graph


def applies_relu(layer: keras.layers.Layer | keras.Operation) -> bool:
    """Whether ``layer`` (or a graph's operation) applies a rectifier of the ReLU family (ReLU, capped,
    leaky): a ``ReLU`` or ``LeakyReLU`` layer, a layer whose ``activation`` (or a ``Lambda`` whose function)
    is one (``Activation("relu")``, ``Activation(tf.nn.relu)``, ``Conv2D(..., activation="relu6")``, the
    fused ``Affine``...), or ``keras.ops.relu`` / ``keras.activations.relu`` called on a graph's tensor.

    Example:
        >>> applies_relu(keras.layers.Activation("relu")), applies_relu(keras.layers.Dense(4))
        (True, False)
        >>> applies_relu(keras.layers.Lambda(keras.ops.relu)), applies_relu(keras.layers.Activation("gelu"))
        (True, False)
    """
    if isinstance(layer, (layers.ReLU, layers.LeakyReLU)):
        return True
    if not isinstance(layer, layers.Layer):
        return type(layer).__name__ in RELU_OPERATIONS and type(layer).__module__.startswith("keras")
    function = getattr(layer, "activation", None) or getattr(layer, "function", None)
    return function in RELU_FAMILY or getattr(function, "__name__", None) in RELU_NAMES
