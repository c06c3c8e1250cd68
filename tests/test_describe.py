"""describe(): convolutions, ReLUs, parameters and FLOPs read off the layer graph, call by call."""

from __future__ import annotations

import keras
import pytest
from keras import layers

import relu_ratio


def test_every_convolution_kind_counts_with_its_multiply_adds():
    """Separable, depthwise and transposed convolutions used to be skipped (Xception: 6 convs : 35 ReLUs)."""
    inputs = keras.Input((8, 8, 4))
    x = layers.Conv2D(6, 3, padding="same")(inputs)
    x = layers.SeparableConv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same")(x)  # 8x8 -> 16x16
    x = layers.Conv1D(2, 3)(layers.Reshape((16 * 16, 4))(x))
    info = relu_ratio.describe(keras.Model(inputs, x))
    assert (info.convs, info.projections, info.relus) == (5, 0, 1)
    assert info.flops == (
        8 * 8 * 3 * 3 * 4 * 6  # Conv2D
        + 8 * 8 * (3 * 3 * 6 + 6 * 8)  # SeparableConv2D: depthwise, then pointwise
        + 8 * 8 * 3 * 3 * 8  # DepthwiseConv2D
        + 8 * 8 * 3 * 3 * 8 * 4  # Conv2DTranspose: every input position over the kernel
        + 254 * 3 * 4 * 2  # Conv1D, valid
    )


def test_a_layer_called_twice_counts_twice():
    """A shared layer (and a nested model called twice) counts per call, FLOPs too; parameters once."""
    conv, relu = layers.Conv2D(4, 3, padding="same", name="shared_conv"), layers.ReLU(name="shared_relu")
    block_in = keras.Input((8, 8, 4))
    block = keras.Model(block_in, relu(conv(block_in)), name="block")
    inputs = keras.Input((8, 8, 4))
    x = block(block(relu(conv(inputs))))
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(x))
    info = relu_ratio.describe(keras.Model(inputs, outputs))
    assert (info.convs, info.relus) == (3, 3)
    assert info.flops == 3 * 8 * 8 * 3 * 3 * 4 * 4 + 4 * 3
    assert info.params == (3 * 3 * 4 * 4 + 4) + (4 * 3 + 3)
    dense_on_positions = keras.Model(inputs, layers.Dense(5)(inputs))  # a Dense per position
    assert relu_ratio.describe(dense_on_positions).flops == 8 * 8 * 4 * 5


def test_an_einsum_dense_layer_counts_as_a_dense_one_and_attention_is_refused():
    """EinsumDense was 0 multiply-adds; MultiHeadAttention, whose projections are EinsumDense layers inside
    its call(), was counted as 0 too, where a layer hiding a Dense is refused."""
    inputs = keras.Input((8, 8, 3))
    per_position = layers.EinsumDense("abcd,de->abce", output_shape=(None, None, 5))(inputs)
    assert relu_ratio.describe(keras.Model(inputs, per_position)).flops == 8 * 8 * 3 * 5
    heads = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4))(layers.Reshape((64, 3))(inputs))
    assert relu_ratio.describe(keras.Model(inputs, heads)).flops == 64 * 3 * 2 * 4
    tokens = keras.Input((6, 4))
    attention = keras.Model(tokens, layers.MultiHeadAttention(2, 4, name="mha")(tokens, tokens))
    with pytest.raises(ValueError, match=r"layer 'mha' \(MultiHeadAttention\) calls .*inside its call\(\)"):
        relu_ratio.describe(attention)


def test_an_open_spatial_size_leaves_flops_unknown():
    """Counts and parameters are exact; FLOPs, which depend on the size, are None (this used to raise a raw
    TypeError)."""
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    info = relu_ratio.describe(keras.Model(inputs, layers.Dense(2)(layers.GlobalMaxPooling2D()(x))))
    assert (info.convs, info.relus, info.params, info.flops) == (1, 1, 3 * 3 * 3 * 4 + 4 + 4 * 2 + 2, None)
    assert "FLOPs unknown" in str(info)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = layers.Conv2D(4, 3)

    def call(self, x):
        return self.conv(x)


class Block(layers.Layer):
    """A layer with a convolution inside its call()."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(4, 3, padding="same")

    def call(self, x):
        return keras.ops.relu(self.conv(x))


def test_models_whose_calls_cannot_be_read_are_refused_naming_what_is_supported():
    """A subclassed model used to raise a raw AttributeError."""
    model = Subclassed()
    model(keras.ops.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"subclassed model \(Subclassed\).*Supported: functional models"):
        relu_ratio.describe(model)
    with pytest.raises(ValueError, match=r"unbuilt Sequential.*Supported"):
        relu_ratio.describe(keras.Sequential([layers.Conv2D(4, 3)]))
    inputs = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match=r"layer 'block' \(Block\) calls .*inside its call\(\).*Supported"):
        relu_ratio.describe(keras.Model(inputs, Block(name="block")(inputs)))
    sequential = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3), layers.ReLU()])
    assert (relu_ratio.describe(sequential).convs, relu_ratio.describe(sequential).relus) == (1, 1)


def test_relus_applied_through_keras_ops_activations_and_lambdas_are_counted():
    inputs = keras.Input((8, 8, 3))
    x = keras.ops.relu(keras.layers.Conv2D(4, 3)(inputs))  # a graph operation, not a layer
    x = keras.activations.relu(keras.layers.Conv2D(4, 3)(x))
    x = keras.layers.Lambda(keras.ops.relu)(x)
    x = keras.layers.Activation(keras.ops.relu)(x)
    x = keras.ops.add(keras.ops.leaky_relu(x), x)  # one more ReLU; the add is no ReLU
    x = keras.layers.Activation("gelu")(x)
    d = relu_ratio.describe(keras.Model(inputs, x))
    assert (d.convs, d.relus) == (2, 5)
