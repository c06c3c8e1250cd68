"""Inference fusion: fold BatchNorm and the input ``Normalization`` into convolutions, merge conv chains.

Removing a ReLU leaves consecutive linear maps, and at inference (BatchNorm with its moving statistics)
every BatchNorm is one anyway. :func:`fuse` lowers a built model block by block (a dispatch table keyed by
layer class) into a new functional model of standard ``Conv2D`` / ``Add`` / ``Average`` / ``ReLU`` / pooling
/ ``Dense`` layers plus one small registered layer, :class:`Affine` (``x * scale + offset`` with constants,
optional ReLU), that computes the same function with fewer layers. All rules are exact:

- conv -> BN: the BN scales the kernel's output channels and becomes the conv's bias.
- BN / Normalization -> conv: the scale goes into the kernel's input channels; the shift becomes a bias,
  or, for a k x k ``same`` conv whose zero padding breaks a per-channel bias at the border, a constant
  ``(H, W, C)`` bias map ``conv_W(shift image)`` precomputed for the static spatial size.
- conv -> conv with nothing non-linear between, where one of them is 1x1 with stride 1: composed into one
  conv, but only where that lowers multiply-adds (rare here: 1x1 4c->c then 3x3 c->c costs 36c² merged vs
  13c²). Every candidate and its cost is in the :class:`FusionReport`.
- a BN whose output feeds no convolution (e.g. a kept ReLU) becomes an :class:`Affine` (fused with the ReLU).

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

from relu_ratio.describe import describe
from relu_ratio.layers import MergeAndRun, PlainLayer, PostActBlock, PreActBlock

DTYPE = "float32"  # fused models compute in float32, also when the original was mixed precision


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
    macs_before: int
    macs_after: int
    folded: tuple[str, ...]  # BatchNorm / Normalization layers folded into a convolution
    kept: tuple[str, ...]  # ... emitted as an Affine layer (their output also feeds something else)
    bias_maps: int  # Affine layers adding a position-dependent bias map
    candidates: tuple[MergeCandidate, ...]  # exact conv->conv merges considered; `.merged` where it paid

    @property
    def convs_merged(self) -> int:
        return sum(c.merged for c in self.candidates)

    def __str__(self) -> str:
        return (
            f"{self.name}: layers {self.layers_before} -> {self.layers_after} | {len(self.folded)} norms "
            f"folded, {len(self.kept)} kept as Affine, {self.bias_maps} bias maps | conv merges "
            f"{self.convs_merged} of {len(self.candidates)} candidates | {self.macs_before / 1e6:,.2f} -> "
            f"{self.macs_after / 1e6:,.2f} M multiply-adds per image"
        )


def fuse(model: keras.Model, return_report: bool = False) -> keras.Model | tuple[keras.Model, FusionReport]:
    """A new functional model computing ``model`` at inference with BatchNorms folded; ``model`` is untouched.

    Supports the models of :mod:`relu_ratio.models` (every family, with or without the ``normalization``
    input layer, with or without the top) and the zoo's feature extractors; any other layer type raises a
    ``ValueError`` naming it. Spatial sizes must be static (they are in every builder's model).

    Example:
        >>> fused = fuse(models.build("preact164_32"))                    # doctest: +SKIP
        >>> fused, report = fuse(zoo.load("resnet8_21"), return_report=True)  # doctest: +SKIP
        >>> print(report)                                                 # doctest: +SKIP
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(f"fuse needs a built functional keras.Model; received {type(model).__name__}.")
    if any(None in t.shape[1:] for t in model.inputs):
        shapes = [tuple(t.shape[1:]) for t in model.inputs]
        raise ValueError(f"fuse needs static input shapes (the bias maps depend on them); received {shapes}.")
    ctx = _Lowering()
    new_inputs = [keras.Input(t.shape[1:], dtype=t.dtype, name=_input_name(t)) for t in model.inputs]
    env = {id(t): _Linear.of(new) for t, new in zip(model.inputs, new_inputs)}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        lower = _LOWERINGS.get(type(layer))
        if lower is None:
            supported = ", ".join(sorted(cls.__name__ for cls in _LOWERINGS))
            raise ValueError(
                f"fuse: layer {layer.name!r} of type {type(layer).__name__} is not supported. "
                f"Supported layer types: {supported}."
            )
        if len(layer._inbound_nodes) != 1:
            raise ValueError(f"fuse: layer {layer.name!r} is called {len(layer._inbound_nodes)} times; "
                             "shared layers are not supported.")  # fmt: skip
        inputs = keras.tree.map_structure(lambda t: env[id(t)], layer.input)
        outputs = lower(ctx, layer, inputs)
        for tensor, value in zip(keras.tree.flatten(layer.output), keras.tree.flatten(outputs)):
            env[id(tensor)] = value
    outputs = [ctx.emit(env[id(t)]) for t in model.outputs]
    fused = keras.Model(
        new_inputs[0] if len(new_inputs) == 1 else new_inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=f"{model.name}_fused",
    )
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


# --- the intermediate value: a linear map of an emitted tensor, not emitted yet -------------------------


@dataclasses.dataclass(eq=False)
class _Linear:
    """``conv(source, kernel, strides) + offset``, or ``source * scale + offset`` when ``kernel`` is None.

    ``offset`` is per channel ``(C,)`` or a bias map ``(H, W, C)``; arrays are float64. ``pending`` names the
    normalisation layers folded into ``scale``/``offset`` but not yet into a convolution.
    """

    source: Any
    shape: tuple[int, ...]  # output shape without the batch: (H, W, C) for feature maps
    name: str
    offset: np.ndarray
    kernel: np.ndarray | None = None
    strides: int = 1
    scale: np.ndarray | None = None
    pending: tuple[str, ...] = ()
    emitted: Any = None  # the tensor, once emitted

    @classmethod
    def of(cls, tensor, name: str = "") -> _Linear:
        channels = tensor.shape[-1]
        return cls(tensor, tuple(tensor.shape[1:]), name, np.zeros(channels), scale=np.ones(channels),
                   emitted=tensor)  # fmt: skip


class _Lowering:
    """Builds the fused graph: each method takes and returns :class:`_Linear` values."""

    def __init__(self):
        self.used_names: set[str] = set()
        self.folded: dict[str, None] = {}  # ordered sets
        self.kept: dict[str, None] = {}
        self.candidates: list[MergeCandidate] = []

    def affine(self, v: _Linear, scale: np.ndarray, shift: np.ndarray, name: str) -> _Linear:
        """``v * scale + shift`` per channel: into the kernel if ``v`` is a conv, else pending."""
        offset = v.offset * scale + shift
        if v.kernel is not None:
            self.folded[name] = None
            return dataclasses.replace(v, kernel=v.kernel * scale, offset=offset, emitted=None)
        return dataclasses.replace(v, scale=v.scale * scale, offset=offset, pending=(*v.pending, name),
                                   name=name, emitted=None)  # fmt: skip

    def batch_norm(self, v: _Linear, bn: layers.BatchNormalization, name: str) -> _Linear:
        _require(bn.axis in (-1, 3), bn, "axis=-1")
        mean, var = (_float64(w) for w in (bn.moving_mean, bn.moving_variance))
        gamma = _float64(bn.gamma) if bn.scale else 1.0
        beta = _float64(bn.beta) if bn.center else 0.0
        scale = gamma / np.sqrt(var + bn.epsilon)
        return self.affine(v, scale, beta - mean * scale, name)

    def normalization(self, v: _Linear, norm: layers.Normalization, name: str) -> _Linear:
        _require(tuple(norm.axis) in ((-1,), (3,)) and not norm.invert, norm, "axis=-1, invert=False")
        mean = _float64(norm.mean).reshape(-1)
        std = np.maximum(np.sqrt(_float64(norm.variance).reshape(-1)), keras.config.epsilon())
        return self.affine(v, 1.0 / std, -mean / std, name)

    def conv(self, v: _Linear, conv: layers.Conv2D, name: str) -> _Linear:
        """``conv(v)``: folds ``v``'s per-channel affine (free), merges a pending conv where it pays."""
        kernel, bias, strides = _conv_weights(conv)
        out_shape = (-(-v.shape[0] // strides), -(-v.shape[1] // strides), kernel.shape[-1])
        composed = _compose(v, kernel, strides) if v.kernel is None or v.emitted is None else None
        if composed is not None and v.kernel is not None:  # two convs: merge only where it pays
            separate = _macs(v.kernel, v.shape) + _macs(kernel, out_shape)
            candidate = MergeCandidate(v.name, name, separate, _macs(composed[0], out_shape))
            self.candidates.append(candidate)
            composed = composed if candidate.merged else None
            name = f"{v.name}__{name}" if candidate.merged else name
        if composed is None:  # emit v, then convolve its output
            v = _Linear.of(self.emit(v))
            composed = _compose(v, kernel, strides)
        self.folded.update(dict.fromkeys(v.pending))
        offset = _conv_same(np.broadcast_to(v.offset, v.shape), kernel, strides) + bias
        constant = np.all(offset == offset[:1, :1])
        kernel, strides = composed
        return _Linear(v.source, out_shape, name, offset[0, 0] if constant else offset, kernel, strides)

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

    def copy(self, layer: layers.Layer, v: _Linear) -> _Linear:
        """``layer`` as is (weights copied, float32), on the emitted ``v``."""
        clone = type(layer).from_config(
            {**layer.get_config(), "name": self.unique(layer.name), "dtype": DTYPE}
        )
        out = clone(self.emit(v))
        clone.set_weights(layer.get_weights())
        return _Linear.of(out)

    def emit(self, v: _Linear):
        """The tensor of ``v``, emitting its layers once."""
        if v.emitted is None:
            v.emitted = self._emit(v)
        return v.emitted

    def _emit(self, v: _Linear, activation: str | None = None):
        per_channel = v.offset.ndim == 1
        if v.kernel is None:  # a pending BatchNorm (or Normalization) that feeds no convolution
            self.kept.update(dict.fromkeys(v.pending))
            return self._affine(v.source, v.offset, v.scale, activation, f"{v.name}_affine")
        conv = layers.Conv2D(
            v.shape[-1], v.kernel.shape[:2], strides=v.strides, padding="same", use_bias=per_channel,
            activation=activation if per_channel else None, name=self.unique(v.name), dtype=DTYPE,
        )  # fmt: skip
        out = conv(v.source)
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

    def unique(self, name: str) -> str:
        base, i = name, 1
        while name in self.used_names:
            i += 1
            name = f"{base}_{i}"
        self.used_names.add(name)
        return name


def _conv_weights(conv: layers.Conv2D) -> tuple[np.ndarray, np.ndarray, int]:
    """Kernel, bias (zeros if none) and stride of a supported ``Conv2D``, as float64."""
    supported = (
        conv.padding == "same"
        and conv.data_format == "channels_last"
        and tuple(conv.dilation_rate) == (1, 1)
        and conv.groups == 1
        and conv.strides[0] == conv.strides[1]
        and conv.activation is keras.activations.linear
    )
    _require(
        supported, conv, "padding='same', channels_last, no dilation or groups, square strides, no activation"
    )
    kernel = _float64(conv.kernel)
    bias = _float64(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1])
    return kernel, bias, int(conv.strides[0])


def _compose(v: _Linear, kernel: np.ndarray, strides: int) -> tuple[np.ndarray, int] | None:
    """Kernel and stride of ``conv(kernel, strides)`` after ``v``'s linear part, where that is exact: ``v``
    per-channel, or one of the two a 1x1 stride-1 conv. ``None`` otherwise (k x k then k x k: the inner
    zero padding would not be reproduced)."""
    if v.kernel is None:
        return kernel * v.scale[:, None], strides
    if v.kernel.shape[:2] == (1, 1) and v.strides == 1:
        return np.einsum("im,hwmo->hwio", v.kernel[0, 0], kernel), strides
    if kernel.shape[:2] == (1, 1) and strides == 1:
        return np.einsum("hwim,mo->hwio", v.kernel, kernel[0, 0]), v.strides
    return None


def _conv_same(image: np.ndarray, kernel: np.ndarray, strides: int) -> np.ndarray:
    """``same``-padded (TensorFlow/XLA convention) convolution of one ``(H, W, C)`` image, in numpy."""
    (h, w, _), (kh, kw) = image.shape, kernel.shape[:2]
    oh, ow = -(-h // strides), -(-w // strides)
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


def _require(ok: bool, layer: layers.Layer, what: str) -> None:
    if not ok:
        raise ValueError(
            f"fuse: layer {layer.name!r} ({type(layer).__name__}) is supported only with {what}."
        )


def _input_name(tensor) -> str:
    return getattr(tensor, "name", None) or "images"


# --- lowering of each layer type ------------------------------------------------------------------------


def _sub(block: layers.Layer, layer: layers.Layer) -> str:
    return f"{block.name}_{layer.name}"


def _act(ctx: _Lowering, block, slot: str, v: _Linear) -> _Linear:
    relu = block.relus.get(slot)
    return ctx.relu(v, _sub(block, relu)) if relu is not None else v


def _conv_bn(
    ctx: _Lowering, block, v: _Linear, conv: layers.Conv2D, bn: layers.BatchNormalization
) -> _Linear:
    return ctx.batch_norm(ctx.conv(v, conv, _sub(block, conv)), bn, _sub(block, bn))


def _lower_plain(ctx: _Lowering, block: PlainLayer, x: _Linear) -> _Linear:
    return _act(ctx, block, "relu", _conv_bn(ctx, block, x, block.conv1, block.bn1))


def _lower_postact(ctx: _Lowering, block: PostActBlock, x: _Linear) -> _Linear:
    x = ctx.shared(x)
    y = _act(ctx, block, "inner", _conv_bn(ctx, block, x, block.conv1, block.bn1))
    y = _conv_bn(ctx, block, y, block.conv2, block.bn2)
    shortcut = (
        x if block.projection is None else _conv_bn(ctx, block, x, block.projection, block.projection_bn)
    )
    return _act(ctx, block, "after_add", ctx.combine(layers.Add, [y, shortcut], f"{block.name}_add"))


def _lower_preact(ctx: _Lowering, block: PreActBlock, x: _Linear) -> _Linear:
    if block.projection is None:  # x also feeds the identity shortcut
        x = ctx.shared(x)
    y = x
    for i, (slot, bn, conv) in enumerate(zip(block.kind.slots, block.bns, block.convs)):
        y = _act(ctx, block, slot, ctx.batch_norm(y, bn, _sub(block, bn)))
        if i == 0 and block.projection is not None:  # the pre-activated input also feeds the projection
            y = preactivated = ctx.shared(y)
        y = ctx.conv(y, conv, _sub(block, conv))
    shortcut = (
        x
        if block.projection is None
        else ctx.conv(preactivated, block.projection, _sub(block, block.projection))
    )
    return ctx.combine(layers.Add, [y, shortcut], f"{block.name}_add")


def _lower_merge_and_run(
    ctx: _Lowering, block: MergeAndRun, inputs: list[_Linear]
) -> list[_Linear] | _Linear:
    residuals, lines = [], []
    for b, (x, (conv1, bn1, conv2, bn2)) in enumerate(zip(inputs, block.branches), start=1):
        x = ctx.shared(x)
        y = _act(ctx, block, f"branch{b}_inner", _conv_bn(ctx, block, x, conv1, bn1))
        residuals.append(_conv_bn(ctx, block, y, conv2, bn2))
        lines.append(x if block.projections is None else _conv_bn(ctx, block, x, *block.projections[b - 1]))
    same = lines[0] is lines[1]  # the first block runs on [x, x]: 0.5 * (x + x) == x exactly
    merged = lines[0] if same else ctx.combine(layers.Average, lines, f"{block.name}_merge")
    if block.merge_output:
        return _act(
            ctx, block, "merged_out", ctx.combine(layers.Add, [merged, *residuals], f"{block.name}_add")
        )
    return [
        _act(ctx, block, f"branch{b}_out", ctx.combine(layers.Add, [merged, r], f"{block.name}_add{b}"))
        for b, r in enumerate(residuals, start=1)
    ]


def _lower_relu(ctx: _Lowering, layer: layers.ReLU, v: _Linear) -> _Linear:
    plain = layer.max_value is None and not layer.negative_slope and not layer.threshold
    _require(plain, layer, "max_value=None, negative_slope=0, threshold=0")
    return ctx.relu(v, layer.name)


_LOWERINGS: dict[type, Callable[..., Any]] = {
    layers.Normalization: lambda ctx, layer, v: ctx.normalization(v, layer, layer.name),
    layers.Conv2D: lambda ctx, layer, v: ctx.conv(v, layer, layer.name),
    layers.BatchNormalization: lambda ctx, layer, v: ctx.batch_norm(v, layer, layer.name),
    layers.ReLU: _lower_relu,
    layers.GlobalAveragePooling2D: lambda ctx, layer, v: ctx.copy(layer, v),
    layers.GlobalMaxPooling2D: lambda ctx, layer, v: ctx.copy(layer, v),
    layers.Dense: lambda ctx, layer, v: ctx.copy(layer, v),
    PlainLayer: _lower_plain,
    PostActBlock: _lower_postact,
    PreActBlock: _lower_preact,
    MergeAndRun: _lower_merge_and_run,
}
