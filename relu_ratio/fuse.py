"""Inference fusion: fold BatchNorm and the input ``Normalization`` into convolutions, merge conv chains.

Removing a ReLU leaves consecutive linear maps, and at inference (BatchNorm with its moving statistics)
every BatchNorm is one anyway. :func:`fuse` walks the functional graph of any Keras CNN layer by layer (a
dispatch table keyed by layer class) and writes a new functional model that computes the same function with
fewer layers: standard ``Conv2D`` / ``DepthwiseConv2D`` / ``Add`` / ``Average`` / ``ReLU`` layers plus one
small registered layer, :class:`Affine` (``x * scale + offset`` with constants, optional ReLU). Any other
layer (pooling, ``Dense``, ``ZeroPadding2D``, ``ReLU(max_value=6)``, a nested model, a ``Lambda``...) is
kept as it is: the same layer object, with its weights, called as it was (see :meth:`_Lowering.keep`). All
rules are exact:

- conv (or depthwise conv) -> BN: the BN scales the kernel's output channels and becomes the conv's bias.
- BN / Normalization -> conv: the scale goes into the kernel's input channels; the shift becomes a bias,
  or, for a k x k ``same`` conv whose zero padding breaks a per-channel bias at the border, a constant
  ``(H, W, C)`` bias map ``conv_W(shift image)`` precomputed for the static spatial size.
- conv -> conv with nothing non-linear between, where one of them is 1x1 with stride 1: composed into one
  conv, but only where that lowers multiply-adds (rare here: 1x1 4c->c then 3x3 c->c costs 36c² merged vs
  13c²). Every candidate and its cost is in the :class:`FusionReport`.
- a BN whose output feeds no convolution (e.g. a kept ReLU) becomes an :class:`Affine` (fused with the ReLU);
  so a fused model saved as ``.keras`` loads with ``keras.saving.load_model`` after ``import relu_ratio``.

Example:
    >>> from relu_ratio import models
    >>> from relu_ratio.fuse import fuse
    >>> model = models.build("resnet8_21")
    >>> fused, report = fuse(model, return_report=True)
    >>> report.layers_after < report.layers_before
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from relu_ratio.describe import describe, graph_nodes
from relu_ratio.inputs import CheckedModel
from relu_ratio.train.kernels import SUBSTITUTES
from relu_ratio.validators import check_bool

DTYPE = "float32"  # fused models compute in float32, also when the original was mixed precision
HALF = ("float16", "bfloat16")


@keras.saving.register_keras_serializable(package="relu_ratio")
class Affine(layers.Layer):
    """``activation(x * scale + offset)`` with constant weights: ``scale`` per channel (optional), ``offset``
    per channel ``(C,)`` or a position-dependent bias map ``(H, W, C)``.

    Example:
        >>> layer = Affine(offset_shape=(4, 4, 8), activation="relu")
        >>> layer(keras.ops.zeros((2, 4, 4, 8))).shape
        (2, 4, 4, 8)
    """

    def __init__(
        self, offset_shape: Sequence[int], scale: bool = False, activation: str | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.offset_shape = tuple(int(d) for d in offset_shape)
        self.has_scale = bool(scale)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        ones = dict(initializer="ones", trainable=False)
        self.scale = (
            self.add_weight(shape=(input_shape[-1],), name="scale", **ones) if self.has_scale else None
        )
        self.offset = self.add_weight(
            shape=self.offset_shape, name="offset", initializer="zeros", trainable=False
        )

    def call(self, x):
        if self.scale is not None:
            x = keras.ops.multiply(x, self.scale)
        return self.activation(keras.ops.add(x, self.offset))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "offset_shape": list(self.offset_shape),
            "scale": self.has_scale,
            "activation": keras.activations.serialize(self.activation),
        }


@dataclasses.dataclass(frozen=True)
class MergeCandidate:
    """Two convolutions with nothing non-linear between that could be composed exactly into one."""

    first: str
    second: str
    macs_separate: int  # multiply-adds per image of the two convolutions
    macs_merged: int  # ... of the composed one

    @property
    def merged(self) -> bool:
        return self.macs_merged < self.macs_separate


@dataclasses.dataclass(frozen=True)
class FusionReport:
    """What :func:`fuse` did. Layers are leaf Keras layers without the input (the original's in-block
    additions are not layers, the fused model's ``Add`` are); MACs are multiply-adds per image of
    convolutions and dense layers (:func:`relu_ratio.describe`), elementwise work is not counted."""

    name: str
    layers_before: int
    layers_after: int
    macs_before: int | None  # None: unknown (a nested model leaves a spatial size open)
    macs_after: int | None
    folded: tuple[str, ...]  # BatchNorm / Normalization layers folded into a convolution
    kept: tuple[str, ...]  # ... emitted as an Affine layer (their output also feeds something else)
    bias_maps: int  # Affine layers adding a position-dependent bias map
    candidates: tuple[MergeCandidate, ...]  # exact conv->conv merges considered; `.merged` where it paid

    @property
    def convs_merged(self) -> int:
        return sum(c.merged for c in self.candidates)

    def __str__(self) -> str:
        def millions(macs: int | None) -> str:
            return "unknown" if macs is None else f"{macs / 1e6:,.2f} M"

        return (
            f"{self.name}: layers {self.layers_before} -> {self.layers_after} | {len(self.folded)} norms "
            f"folded, {len(self.kept)} kept as Affine, {self.bias_maps} bias maps | conv merges "
            f"{self.convs_merged} of {len(self.candidates)} candidates | {millions(self.macs_before)} -> "
            f"{millions(self.macs_after)} multiply-adds per image"
        )


def fuse(model: keras.Model, return_report: bool = False) -> keras.Model | tuple[keras.Model, FusionReport]:
    """A new functional model computing ``model`` at inference with BatchNorms folded; ``model`` is untouched.

    Works on any functional ``keras.Model`` (every model of :mod:`relu_ratio.models`, the zoo's, and e.g.
    ``keras.applications.ResNet50V2`` or ``MobileNetV2``), call by call (a shared layer is lowered at each
    call): a layer it cannot fold is kept as it is, the same object with its weights, so the fused model
    shares it with ``model``. Integer inputs (``uint8`` images) are cast to float32 before the first layer
    fuse writes. Spatial sizes must be static (the bias maps depend on them).

    Example:
        >>> fused = fuse(models.build("preact164_32"))                    # doctest: +SKIP
        >>> fused, report = fuse(zoo.load("resnet20_11"), return_report=True)  # doctest: +SKIP
        >>> print(report)                                                 # doctest: +SKIP
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        hint = (" (a Sequential model with an Input: fuse(keras.Model(model.inputs, model.outputs)))"
                if isinstance(model, keras.Sequential) else "")  # fmt: skip
        raise ValueError(f"fuse needs a built functional keras.Model; received {type(model).__name__}{hint}.")
    check_bool(return_report, "return_report")  # "no" would return a (model, report) pair
    if any(None in t.shape[1:] for t in model.inputs):
        shapes = [tuple(t.shape[1:]) for t in model.inputs]
        raise ValueError(f"fuse needs static input shapes (the bias maps depend on them); received {shapes}.")
    ctx = _Lowering({operation.name for operation in model.operations})
    new_inputs = [keras.Input(t.shape[1:], dtype=t.dtype, name=_input_name(t)) for t in model.inputs]
    env = {id(t): _Linear.of(new) for t, new in zip(model.inputs, new_inputs)}
    nodes = graph_nodes(model)  # calls of layers and keras.ops operations of this model, in graph order
    consumers = _consumer_counts(nodes, model.outputs)
    for node in nodes:
        operation = node.operation
        for tensor in node.input_tensors:
            if consumers[id(tensor)] > 1:  # several consumers: a pending convolution is emitted once
                env[id(tensor)] = ctx.shared(env[id(tensor)])
        kind = type(operation)
        lower = _LOWERINGS.get(_STOCK_CLASS.get(kind, kind))
        plain_call = all(value is None for value in node.arguments.kwargs.values())  # no training=... etc.
        outputs = None
        if lower is not None and plain_call:
            inputs = keras.tree.map_structure(lambda t: env[id(t)], _call_inputs(node))
            ctx.reserved.discard(operation.name)  # its name is free for the layers replacing it
            outputs = lower(ctx, operation, inputs)
        if outputs is None:  # nothing to fold: the operation as it is, called as it was
            outputs = ctx.keep(operation, node, env)
        for tensor, value in zip(node.outputs, keras.tree.flatten(outputs)):
            env[id(tensor)] = value
    outputs = [ctx.emit(env[id(t)]) for t in model.outputs]
    fused = keras.Model(  # in the model's own structures: a dict stays one
        keras.tree.pack_sequence_as(model.input, new_inputs),
        keras.tree.pack_sequence_as(model.output, outputs),
        name=f"{model.name}_fused",
    )
    if isinstance(model, CheckedModel):  # a zoo model's fused form refuses bad images too
        fused = CheckedModel.from_model(fused)
    if not return_report:
        return fused
    before, after = describe(model), describe(fused)
    report = FusionReport(
        name=model.name,
        layers_before=count_layers(model),
        layers_after=count_layers(fused),
        macs_before=before.flops,
        macs_after=after.flops,
        folded=tuple(ctx.folded),
        kept=tuple(ctx.kept),
        bias_maps=sum(isinstance(la, Affine) and len(la.offset_shape) == 3 for la in fused.layers),
        candidates=tuple(ctx.candidates),
    )
    return fused, report


def count_layers(model: keras.Model) -> int:
    """Leaf layers of ``model`` (those without sublayers), not counting input layers."""
    return sum(
        not isinstance(layer, layers.InputLayer) and not list(layer._flatten_layers(include_self=False))
        for layer in model._flatten_layers(include_self=False)
    )


def _call_inputs(node):
    """The tensors a layer was called on, in the structure of the call (a tensor, or a list for ``Add``)."""
    args = node.arguments.args
    return args[0] if len(args) == 1 else list(args)


def _consumer_counts(nodes: Sequence, outputs: Sequence) -> dict[int, int]:
    """How many layer calls (``nodes``) and model ``outputs`` read each tensor of a graph, by ``id``."""
    counts: dict[int, int] = {}
    for tensor in [t for node in nodes for t in node.input_tensors] + list(outputs):
        counts[id(tensor)] = counts.get(id(tensor), 0) + 1
    return counts


# --- the intermediate value: a linear map of an emitted tensor, not emitted yet -------------------------


@dataclasses.dataclass(eq=False)
class _Linear:
    """``conv(source, kernel, strides, padding) + offset``, or ``source * scale + offset`` when ``kernel`` is
    None. A ``depthwise`` kernel is ``(kh, kw, C, multiplier)``.

    ``offset`` is per channel ``(C,)`` or a bias map ``(H, W, C)``; arrays are float64. ``pending`` names the
    normalisation layers folded into ``scale``/``offset`` but not yet into a convolution.
    """

    source: Any
    shape: tuple[int, ...]  # output shape without the batch: (H, W, C) for feature maps
    name: str
    offset: np.ndarray
    kernel: np.ndarray | None = None
    strides: int = 1
    padding: str = "same"
    depthwise: bool = False
    scale: np.ndarray | None = None
    pending: tuple[str, ...] = ()
    emitted: Any = None  # the tensor, once emitted

    @classmethod
    def of(cls, tensor) -> _Linear:
        # a tensor of one value per image (rank 1) or of channels unknown: no normalisation folds into it
        channels = tensor.shape[-1] if len(tensor.shape) > 1 and tensor.shape[-1] is not None else 1
        return cls(tensor, tuple(tensor.shape[1:]), "", np.zeros(channels), scale=np.ones(channels),
                   emitted=tensor)  # fmt: skip


def _in_float32(layer: layers.Layer, name: str | None = None) -> layers.Layer:
    """``layer`` rebuilt from its config to compute in float32 (named ``name``, else as it is)."""
    return type(layer).from_config({**layer.get_config(), "dtype": DTYPE, "name": name or layer.name})


class _Lowering:
    """Builds the fused graph: each method takes and returns :class:`_Linear` values."""

    def __init__(self, reserved: set[str]):
        self.used_names: set[str] = set()
        self.reserved = reserved  # names of the original's operations that may still be kept (as themselves)
        self.casts: dict[int, Any] = {}  # id of an integer tensor -> its float32 cast
        self.folded: dict[str, None] = {}  # ordered sets
        self.kept: dict[str, None] = {}
        self.candidates: list[MergeCandidate] = []

    def affine(self, v: _Linear, scale: np.ndarray, shift: np.ndarray, name: str) -> _Linear:
        """``v * scale + shift`` per channel: into the kernel if ``v`` is a conv, else pending."""
        offset = v.offset * scale + shift
        if v.kernel is not None:
            self.folded[name] = None
            per_output = scale.reshape(v.kernel.shape[2:]) if v.depthwise else scale
            return dataclasses.replace(v, kernel=v.kernel * per_output, offset=offset, emitted=None)
        return dataclasses.replace(v, scale=v.scale * scale, offset=offset, pending=(*v.pending, name),
                                   name=name, emitted=None)  # fmt: skip

    def batch_norm(self, v: _Linear, bn: layers.BatchNormalization, name: str) -> _Linear | None:
        if bn.axis not in (-1, len(v.shape)):
            return None
        mean, var = (_float64(w) for w in (bn.moving_mean, bn.moving_variance))
        gamma = _float64(bn.gamma) if bn.scale else 1.0
        beta = _float64(bn.beta) if bn.center else 0.0
        scale = gamma / np.sqrt(var + bn.epsilon)
        return self.affine(v, scale, beta - mean * scale, name)

    def normalization(self, v: _Linear, norm: layers.Normalization, name: str) -> _Linear | None:
        if tuple(norm.axis) not in ((-1,), (len(v.shape),)) or norm.invert:
            return None
        mean = _float64(norm.mean).reshape(-1)
        std = np.maximum(np.sqrt(_float64(norm.variance).reshape(-1)), keras.config.epsilon())
        return self.affine(v, 1.0 / std, -mean / std, name)

    def conv(self, v: _Linear, conv: layers.Conv2D, name: str) -> _Linear | None:
        """``conv(v)``: folds ``v``'s per-channel affine (free), merges a pending conv where it pays."""
        weights = _conv_weights(conv)
        if weights is None:
            return None
        kernel, bias, strides, padding = weights
        if v.depthwise:  # a depthwise conv followed by a conv is not one conv: emit it
            v = _Linear.of(self.emit(v))
        out_shape = (*_out_size(v.shape, kernel, strides, padding), kernel.shape[-1])
        composed = _compose(v, kernel, strides, padding) if v.kernel is None or v.emitted is None else None
        if composed is not None and v.kernel is not None:  # two convs: merge only where it pays
            separate = _macs(v.kernel, v.shape) + _macs(kernel, out_shape)
            candidate = MergeCandidate(v.name, name, separate, _macs(composed[0], out_shape))
            self.candidates.append(candidate)
            composed = composed if candidate.merged else None
            name = f"{v.name}__{name}" if candidate.merged else name
        if composed is None:  # emit v, then convolve its output
            v = _Linear.of(self.emit(v))
            composed = _compose(v, kernel, strides, padding)
        self.folded.update(dict.fromkeys(v.pending))
        offset = _conv_image(np.broadcast_to(v.offset, v.shape), kernel, strides, padding) + bias
        constant = np.all(offset == offset[:1, :1])
        kernel, strides, padding = composed
        offset = offset[0, 0] if constant else offset
        return _Linear(v.source, out_shape, name, offset, kernel, strides, padding)

    def depthwise_conv(self, v: _Linear, conv: layers.DepthwiseConv2D, name: str) -> _Linear | None:
        """A depthwise conv of the emitted ``v``, kept pending so that a following BatchNorm folds into it."""
        weights = _conv_weights(conv)
        if weights is None:
            return None
        kernel, bias, strides, padding = weights
        v = _Linear.of(self.emit(v))
        out_shape = (*_out_size(v.shape, kernel, strides, padding), kernel.shape[2] * kernel.shape[3])
        return _Linear(v.source, out_shape, name, bias, kernel, strides, padding, depthwise=True)

    def relu(self, v: _Linear, name: str) -> _Linear:
        """ReLU, fused into the layer emitting ``v`` unless ``v`` is emitted already."""
        if v.emitted is not None:
            return _Linear.of(layers.ReLU(name=self.unique(name), dtype=DTYPE)(v.emitted))
        return _Linear.of(self._emit(v, activation="relu"))

    def combine(self, merge: type[layers.Layer], values: Sequence[_Linear], name: str) -> _Linear:
        """``Add`` or ``Average`` of the emitted values."""
        return _Linear.of(merge(name=self.unique(name), dtype=DTYPE)([self.emit(v) for v in values]))

    def shared(self, v: _Linear) -> _Linear:
        """``v`` for several consumers: a pending conv is emitted once; a per-channel affine stays pending."""
        return v if v.kernel is None else _Linear.of(self.emit(v))

    def keep(self, operation, node, env: dict) -> Any:
        """``operation`` (a layer or a keras.ops operation) called on the emitted inputs with the arguments of
        the original call.

        The operation itself is reused, never serialised: a ``Lambda`` (whose code Keras will not deserialise)
        or a custom layer without a usable config is kept like any other, with its weights shared with the
        original. Only a layer computing in half precision is replaced by a float32 copy from its config
        (fused models compute in float32), and kept as it is where it cannot be rebuilt from one."""

        def value(x):
            return self.emit(env[id(x)]) if isinstance(x, keras.KerasTensor) else x

        args = keras.tree.map_structure(value, node.arguments.args)
        kwargs = keras.tree.map_structure(value, node.arguments.kwargs)
        self.reserved.discard(operation.name)
        copy = self._float32_copy(operation)
        if copy is None:
            self.used_names.add(operation.name)
            return keras.tree.map_structure(_Linear.of, operation(*args, **kwargs))
        out = copy(*args, **kwargs)
        copy.set_weights(operation.get_weights())
        return keras.tree.map_structure(_Linear.of, out)

    def _float32_copy(self, operation) -> layers.Layer | None:
        """A float32 copy of a half-precision layer, from its config (a nested model with a half-precision
        layer: each layer from its own, as a model's ``dtype`` does not reach them); ``None`` for anything
        else, for quantized weights (a float32 rebuild has no place for their scales), or if a layer cannot
        be rebuilt from a config (``get_config`` not implemented, ``from_config`` refused: a ``Lambda``)."""
        if not isinstance(operation, layers.Layer):
            return None
        inside = list(operation._flatten_layers()) if isinstance(operation, keras.Model) else [operation]
        if not any(layer.dtype_policy.compute_dtype in HALF for layer in inside) or any(
            layer.dtype_policy.quantization_mode for layer in inside
        ):
            return None
        try:
            if isinstance(operation, keras.Model):
                copy = keras.models.clone_model(operation, clone_function=_in_float32, recursive=True)
                return _in_float32(copy, self.unique(operation.name))
            return _in_float32(operation, self.unique(operation.name))
        except (NotImplementedError, TypeError, ValueError):
            return None

    def emit(self, v: _Linear):
        """The tensor of ``v``, emitting its layers once."""
        if v.emitted is None:
            v.emitted = self._emit(v)
        return v.emitted

    def _emit(self, v: _Linear, activation: str | None = None):
        per_channel = v.offset.ndim == 1
        source = self.floating(v.source)  # a folded Normalization or BatchNorm was what cast it
        if v.kernel is None:  # a pending BatchNorm (or Normalization) that feeds no convolution
            self.kept.update(dict.fromkeys(v.pending))
            return self._affine(source, v.offset, v.scale, activation, f"{v.name}_affine")
        common = dict(
            strides=v.strides, padding=v.padding, use_bias=per_channel, dtype=DTYPE, name=self.unique(v.name),
            activation=activation if per_channel else None, data_format="channels_last",  # as all that fold
        )  # fmt: skip
        if v.depthwise:
            conv = layers.DepthwiseConv2D(v.kernel.shape[:2], depth_multiplier=v.kernel.shape[3], **common)
        else:
            conv = layers.Conv2D(v.shape[-1], v.kernel.shape[:2], **common)
        out = conv(source)
        conv.set_weights(
            [v.kernel.astype(DTYPE), v.offset.astype(DTYPE)] if per_channel else [v.kernel.astype(DTYPE)]
        )
        if per_channel:
            return out
        return self._affine(out, v.offset, None, activation, f"{v.name}_bias_map")

    def _affine(self, x, offset: np.ndarray, scale: np.ndarray | None, activation: str | None, name: str):
        layer = Affine(offset.shape, scale=scale is not None, activation=activation, name=self.unique(name),
                       dtype=DTYPE)  # fmt: skip
        out = layer(x)
        layer.set_weights([w.astype(DTYPE) for w in (scale, offset) if w is not None])
        return out

    def floating(self, tensor):
        """``tensor`` cast to float32 if it is not floating point (``uint8`` images), once per tensor."""
        if keras.backend.is_float_dtype(tensor.dtype):
            return tensor
        if id(tensor) not in self.casts:  # Rescaling(1) is the stock layer that casts (and multiplies by 1)
            name = self.unique(f"{tensor.name or 'input'}_to_{DTYPE}")
            self.casts[id(tensor)] = layers.Rescaling(1.0, name=name, dtype=DTYPE)(tensor)
        return self.casts[id(tensor)]

    def unique(self, name: str) -> str:
        """``name``, else ``name_2``, ``name_3``...: one not used yet, nor an original name still reserved."""
        base, i = name, 1
        while name in self.used_names or name in self.reserved:
            i += 1
            name = f"{base}_{i}"
        self.used_names.add(name)
        return name


def _conv_weights(conv: layers.Layer) -> tuple[np.ndarray, np.ndarray, int, str] | None:
    """Kernel, bias (zeros if none), stride and padding of a conv that folds, as float64; ``None`` if it does
    not (dilation, groups, unequal strides, an activation, channels_first)."""
    foldable = (
        conv.padding in ("same", "valid")
        and conv.data_format == "channels_last"
        and tuple(conv.dilation_rate) == (1, 1)
        and getattr(conv, "groups", 1) == 1
        and conv.strides[0] == conv.strides[1]
        and conv.activation is keras.activations.linear
    )
    if not foldable:
        return None
    kernel = _float64(conv.kernel)
    depthwise = isinstance(conv, layers.DepthwiseConv2D)
    channels = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[3]
    bias = _float64(conv.bias) if conv.use_bias else np.zeros(channels)
    return kernel, bias, int(conv.strides[0]), conv.padding


def _compose(
    v: _Linear, kernel: np.ndarray, strides: int, padding: str
) -> tuple[np.ndarray, int, str] | None:
    """Kernel, stride and padding of ``conv(kernel)`` after ``v``'s linear part, where that is exact: ``v``
    per-channel, or one of the two a 1x1 stride-1 conv. ``None`` otherwise (k x k then k x k: the inner
    zero padding would not be reproduced)."""
    if v.kernel is None:
        return kernel * v.scale[:, None], strides, padding
    if v.kernel.shape[:2] == (1, 1) and v.strides == 1:
        return np.einsum("im,hwmo->hwio", v.kernel[0, 0], kernel), strides, padding
    if kernel.shape[:2] == (1, 1) and strides == 1:
        return np.einsum("hwim,mo->hwio", v.kernel, kernel[0, 0]), v.strides, v.padding
    return None


def _out_size(shape: Sequence[int], kernel: np.ndarray, strides: int, padding: str) -> tuple[int, int]:
    """Output height and width of a conv (TensorFlow/XLA convention)."""
    if padding == "same":
        return -(-shape[0] // strides), -(-shape[1] // strides)
    return (shape[0] - kernel.shape[0]) // strides + 1, (shape[1] - kernel.shape[1]) // strides + 1


def _conv_image(image: np.ndarray, kernel: np.ndarray, strides: int, padding: str) -> np.ndarray:
    """The conv of one ``(H, W, C)`` image, in numpy (``same``: TensorFlow/XLA's padding convention)."""
    (h, w, _), (kh, kw) = image.shape, kernel.shape[:2]
    oh, ow = _out_size(image.shape, kernel, strides, padding)
    ph, pw = max((oh - 1) * strides + kh - h, 0), max((ow - 1) * strides + kw - w, 0)
    padded = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((oh, ow, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += (
                padded[i : i + (oh - 1) * strides + 1 : strides, j : j + (ow - 1) * strides + 1 : strides]
                @ kernel[i, j]
            )
    return out


def _float64(weight) -> np.ndarray:
    return np.asarray(weight, dtype=np.float64)


def _macs(kernel: np.ndarray, out_shape: Sequence[int]) -> int:
    return int(out_shape[0] * out_shape[1] * np.prod(kernel.shape))


def _input_name(tensor) -> str:
    return getattr(tensor, "name", None) or "images"


# --- lowering of each layer type: a _Linear, or None to keep the layer as it is --------------------------


def _lower_relu(ctx: _Lowering, layer: layers.ReLU, v: _Linear) -> _Linear | None:
    plain = layer.max_value is None and not layer.negative_slope and not layer.threshold
    return ctx.relu(v, layer.name) if plain else None


def _lower_activation(ctx: _Lowering, layer: layers.Activation, v: _Linear) -> _Linear | None:
    return ctx.relu(v, layer.name) if layer.activation is keras.activations.relu else None


def _lower_merge(merge: type[layers.Layer]) -> Callable[..., _Linear]:
    return lambda ctx, layer, values: ctx.combine(merge, values, layer.name)


# the training-time layers of relu_ratio.train.kernels compute what their stock class computes: folded alike
_STOCK_CLASS = {substitute: stock for table in SUBSTITUTES.values() for stock, substitute in table.items()}
_LOWERINGS: dict[type, Callable[..., Any]] = {
    layers.Normalization: lambda ctx, layer, v: ctx.normalization(v, layer, layer.name),
    layers.Conv2D: lambda ctx, layer, v: ctx.conv(v, layer, layer.name),
    layers.DepthwiseConv2D: lambda ctx, layer, v: ctx.depthwise_conv(v, layer, layer.name),
    layers.BatchNormalization: lambda ctx, layer, v: ctx.batch_norm(v, layer, layer.name),
    layers.ReLU: _lower_relu,
    layers.Activation: _lower_activation,
    layers.Add: _lower_merge(layers.Add),
    layers.Average: _lower_merge(layers.Average),
}
