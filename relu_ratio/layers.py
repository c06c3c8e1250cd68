"""Keras blocks whose ReLUs stand where a ``relu_mask`` says.

Every block takes ``relu_mask``, one boolean per ReLU slot of its :class:`~relu_ratio.patterns.BlockKind`;
a slot that is ``False`` simply has no ReLU layer. That is the one mechanism behind every pattern: no
block is written twice. Blocks use ``keras.layers`` / ``keras.ops`` only, so they run on TensorFlow
and JAX, and they are registered for ``.keras`` serialisation.

Example:
    >>> import keras
    >>> from relu_ratio.layers import PreActBlock
    >>> block = PreActBlock(16, bottleneck=True, relu_mask=(False, True, True))  # Type 1
    >>> block(keras.ops.zeros((1, 8, 8, 64))).shape
    (1, 8, 8, 64)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from relu_ratio import patterns
from relu_ratio.patterns import BlockKind

BN_MOMENTUM = 0.99  # fusenet's BatchNorm settings (see shared REFERENCE.md)
BN_EPSILON = 2e-5
BOTTLENECK_EXPANSION = 4


def conv2d(filters: int, kernel: int, strides: int, name: str, weight_decay: float) -> layers.Conv2D:
    """A bias-free, He-normal initialised ``same``-padded convolution (the paper's only conv)."""
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=l2(weight_decay),
        name=name,
    )


def batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def l2(weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Coupled weight decay ``wd`` as an L2 penalty ``wd/2 * ||w||^2`` (gradient ``wd * w``)."""
    return keras.regularizers.L2(weight_decay / 2) if weight_decay else None


def build_chain(shape, *chain: layers.Layer):
    """Build ``chain`` of sublayers in order from ``shape``; return the last output shape."""
    for layer in chain:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


class ReLUBlock(layers.Layer):
    """Base of all blocks: owns the ``relu_mask`` and the ReLU layers it asks for.

    Subclasses set ``kind`` and call :meth:`act` at every ReLU slot; :meth:`conv_paths` lists the
    convolutions as chains starting at the block input, for :func:`relu_ratio.describe`.
    """

    kind: BlockKind

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        relu_mask: Sequence[bool] | None = None,
        weight_decay: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        slots = self.kind.slots
        mask = tuple(bool(v) for v in relu_mask) if relu_mask is not None else (True,) * len(slots)
        if len(mask) != len(slots):
            raise ValueError(
                f"relu_mask {relu_mask!r} has {len(mask)} entries, but a {self.kind.name} has "
                f"{len(slots)} ReLU slots ({', '.join(slots)})."
            )
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2; received {strides!r}.")
        self.filters = int(filters)
        self.strides = int(strides)
        self.weight_decay = float(weight_decay)
        self.relu_mask = mask
        self.relus = {
            slot: layers.ReLU(name=f"relu_{slot}") for slot, keep in zip(slots, mask) if keep
        }

    def act(self, slot: str, x):
        """ReLU at ``slot`` if the mask keeps it, identity otherwise."""
        relu = self.relus.get(slot)
        return relu(x) if relu is not None else x

    def conv(self, filters: int, kernel: int, strides: int, name: str) -> layers.Conv2D:
        return conv2d(filters, kernel, strides, name, self.weight_decay)

    def conv_paths(self) -> list[tuple[bool, list[layers.Conv2D]]]:
        """``(is_main_path, convs)`` chains, each starting at the block input."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "relu_mask": [int(v) for v in self.relu_mask],
            "weight_decay": self.weight_decay,
        }


@keras.saving.register_keras_serializable(package="relu_ratio")
class PlainLayer(ReLUBlock):
    """conv3x3-BN(-ReLU): the plain network's module (paper Fig. 1)."""

    kind = patterns.PLAIN

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.conv1 = self.conv(filters, 3, strides, "conv")
        self.bn1 = batch_norm("bn")

    def build(self, input_shape):
        build_chain(input_shape, self.conv1, self.bn1)
        super().build(input_shape)

    def call(self, x, training=None):
        return self.act("relu", self.bn1(self.conv1(x), training=training))

    def conv_paths(self):
        return [(True, [self.conv1])]


@keras.saving.register_keras_serializable(package="relu_ratio")
class PostActBlock(ReLUBlock):
    """Post-activation building block (paper Fig. 3): conv-BN-ReLU-conv-BN, add, ReLU.

    The shortcut is the identity, or a 1x1 conv-BN projection where the shape changes.
    """

    kind = patterns.BASIC_POSTACT

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.conv1 = self.conv(filters, 3, strides, "conv1")
        self.bn1 = batch_norm("bn1")
        self.conv2 = self.conv(filters, 3, 1, "conv2")
        self.bn2 = batch_norm("bn2")
        self.projection = None

    def build(self, input_shape):
        if self.strides != 1 or input_shape[-1] != self.filters:
            self.projection = self.conv(self.filters, 1, self.strides, "projection")
            self.projection_bn = batch_norm("projection_bn")
            build_chain(input_shape, self.projection, self.projection_bn)
        build_chain(input_shape, self.conv1, self.bn1, self.conv2, self.bn2)
        super().build(input_shape)

    def call(self, x, training=None):
        y = self.act("inner", self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(y), training=training)
        shortcut = x
        if self.projection is not None:
            shortcut = self.projection_bn(self.projection(x), training=training)
        return self.act("after_add", y + shortcut)

    def conv_paths(self):
        paths = [(True, [self.conv1, self.conv2])]
        if self.projection is not None:
            paths.append((False, [self.projection]))
        return paths


@keras.saving.register_keras_serializable(package="relu_ratio")
class PreActBlock(ReLUBlock):
    """Pre-activation residual block (He et al., Identity Mappings; paper Fig. 4).

    Building block (``bottleneck=False``): BN-ReLU-conv3x3, BN-ReLU-conv3x3.
    Bottleneck (``bottleneck=True``): BN-ReLU-conv1x1(c), BN-ReLU-conv3x3(c), BN-ReLU-conv1x1(4c);
    the stride sits on the 3x3 convolution. Where the shape changes, the shortcut is a 1x1
    projection of the pre-activated input.
    """

    def __init__(self, filters: int, strides: int = 1, bottleneck: bool = False, **kwargs):
        self.bottleneck = bool(bottleneck)
        super().__init__(filters, strides, **kwargs)
        if self.bottleneck:
            spec = [(1, filters, 1), (3, filters, strides), (1, BOTTLENECK_EXPANSION * filters, 1)]
        else:
            spec = [(3, filters, strides), (3, filters, 1)]
        self.out_filters = spec[-1][1]
        self.bns = [batch_norm(f"bn{i + 1}") for i in range(len(spec))]
        self.convs = [self.conv(f, k, s, f"conv{i + 1}") for i, (k, f, s) in enumerate(spec)]
        self.projection = None

    @property
    def kind(self) -> BlockKind:
        return patterns.BOTTLENECK if self.bottleneck else patterns.BASIC_PREACT

    def build(self, input_shape):
        if self.strides != 1 or input_shape[-1] != self.out_filters:
            self.projection = self.conv(self.out_filters, 1, self.strides, "projection")
            self.projection.build(input_shape)
        build_chain(input_shape, *(layer for pair in zip(self.bns, self.convs) for layer in pair))
        super().build(input_shape)

    def call(self, x, training=None):
        y = x
        for i, (slot, bn, conv) in enumerate(zip(self.kind.slots, self.bns, self.convs)):
            y = self.act(slot, bn(y, training=training))
            if i == 0:
                preactivated = y
            y = conv(y)
        shortcut = x if self.projection is None else self.projection(preactivated)
        return y + shortcut

    def conv_paths(self):
        paths = [(True, list(self.convs))]
        if self.projection is not None:
            paths.append((False, [self.projection]))
        return paths

    def get_config(self):
        return {**super().get_config(), "bottleneck": self.bottleneck}


@keras.saving.register_keras_serializable(package="relu_ratio")
class MergeAndRun(ReLUBlock):
    """Merge-and-run block of DFN-MR (paper Fig. 5), called on ``[x1, x2]``.

    Branch i: conv-BN-ReLU-conv-BN = d_i; line i: x_i or a 1x1 conv-BN projection where the shape
    changes; m = 0.5 * (line1 + line2); outputs ``[ReLU(m + d1), ReLU(m + d2)]``. With
    ``merge_output=True`` (the network's last block) the output is the single ``ReLU(m + d1 + d2)``,
    whose ReLU is kept unless both ``branch*_out`` slots are removed.
    """

    kind = patterns.MERGE_AND_RUN

    def __init__(self, filters: int, strides: int = 1, merge_output: bool = False, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.merge_output = bool(merge_output)
        if self.merge_output:  # one output ReLU, kept unless both branch*_out slots are removed
            outs = [self.relus.pop(slot, None) for slot in ("branch1_out", "branch2_out")]
            if any(outs):
                self.relus["merged_out"] = layers.ReLU(name="relu_merged_out")
        self.branches = [
            [
                self.conv(filters, 3, strides, f"branch{b}_conv1"),
                batch_norm(f"branch{b}_bn1"),
                self.conv(filters, 3, 1, f"branch{b}_conv2"),
                batch_norm(f"branch{b}_bn2"),
            ]
            for b in (1, 2)
        ]
        self.projections = None

    def build(self, input_shape):
        if self.strides != 1 or input_shape[0][-1] != self.filters:
            self.projections = [
                [self.conv(self.filters, 1, self.strides, f"line{b}_projection"),
                 batch_norm(f"line{b}_projection_bn")]
                for b in (1, 2)
            ]
        for shape, branch, line in zip(input_shape, self.branches, self.projections or [[], []]):
            build_chain(shape, *branch)
            build_chain(shape, *line)
        super().build(input_shape)

    def call(self, inputs, training=None):
        residuals, lines = [], []
        for b, (x, (conv1, bn1, conv2, bn2)) in enumerate(zip(inputs, self.branches), start=1):
            y = self.act(f"branch{b}_inner", bn1(conv1(x), training=training))
            residuals.append(bn2(conv2(y), training=training))
            if self.projections is not None:
                conv, bn = self.projections[b - 1]
                x = bn(conv(x), training=training)
            lines.append(x)
        merged = 0.5 * (lines[0] + lines[1])
        if self.merge_output:
            return self.act("merged_out", merged + residuals[0] + residuals[1])
        return [self.act(f"branch{b}_out", merged + r) for b, r in enumerate(residuals, start=1)]

    def conv_paths(self):
        paths = [(True, [branch[0], branch[2]]) for branch in self.branches]
        for conv, _ in self.projections or []:
            paths.append((False, [conv]))
        return paths

    def get_config(self):
        return {**super().get_config(), "merge_output": self.merge_output}
