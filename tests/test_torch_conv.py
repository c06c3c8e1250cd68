"""The copy-free training ``Conv2D`` computes what the stock layer does under PyTorch, forward and
backward, for every setting of the layer; elsewhere the model keeps the stock layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from relu_ratio.train.kernels import with_fast_kernels
from relu_ratio.train.torch_conv import Conv2D

on_torch = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="its own path runs under PyTorch only; elsewhere it is the stock code",
)
SETTINGS = {  # (layer settings, input height and width)
    "3x3-same": ({"kernel_size": 3, "padding": "same"}, (8, 8)),
    "3x3-stride2-even": ({"kernel_size": 3, "strides": 2, "padding": "same"}, (8, 8)),  # pads (0, 1)
    "3x3-stride2-odd": ({"kernel_size": 3, "strides": 2, "padding": "same"}, (7, 9)),
    "1x1-stride2": ({"kernel_size": 1, "strides": 2, "padding": "same"}, (8, 8)),
    "3x3-valid": ({"kernel_size": 3}, (8, 6)),
    "5x3-strides21": ({"kernel_size": (5, 3), "strides": (2, 1), "padding": "same"}, (8, 8)),
    "dilated": ({"kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (9, 8)),
    "groups-bias": ({"kernel_size": 3, "groups": 2, "use_bias": True, "padding": "same"}, (6, 6)),
}


def _pair(settings: dict, dtype: str | None = None) -> tuple[keras.layers.Conv2D, Conv2D]:
    settings = {"filters": 4, "use_bias": False, **settings, **({"dtype": dtype} if dtype else {})}
    stock, fast = keras.layers.Conv2D(**settings), Conv2D(**settings)
    fast.build((None, None, None, 4))
    stock.build((None, None, None, 4))
    rng = np.random.default_rng(0)
    stock.set_weights([rng.normal(size=w.shape).astype("float32") for w in stock.weights])
    fast.set_weights(stock.get_weights())
    return stock, fast


def _outputs_and_gradients(layer, x: np.ndarray) -> list[np.ndarray]:
    """The layer's outputs (float32) and the gradients of a fixed loss of them with respect to the input
    and each weight (PyTorch)."""
    import torch

    inputs = torch.tensor(x, requires_grad=True)
    y = layer(inputs).float()
    loss = (y * torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape).cos()).sum()
    grads = torch.autograd.grad(loss, [inputs, *(w.value for w in layer.trainable_weights)])
    return [t.detach().float().numpy() for t in (y, *grads)]


@pytest.mark.backend
@on_torch
@pytest.mark.parametrize("name", SETTINGS)
def test_each_setting_computes_what_the_stock_layer_does(name):
    settings, (height, width) = SETTINGS[name]
    x = np.random.default_rng(1).normal(size=(2, height, width, 4)).astype("float32")
    stock, fast = _pair(settings)
    expected, got = _outputs_and_gradients(stock, x), _outputs_and_gradients(fast, x)
    assert got[0].shape == expected[0].shape
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.backend
@on_torch
def test_bfloat16_compute_matches_the_stock_layer():
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 4)).astype("float32")
    stock, fast = _pair({"kernel_size": 3, "strides": 2, "padding": "same"}, dtype="mixed_bfloat16")
    expected, got = _outputs_and_gradients(stock, x), _outputs_and_gradients(fast, x)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=0.02, atol=0.05)


@pytest.mark.backend
@on_torch
def test_channels_first_uses_the_stock_computation():
    x = np.random.default_rng(3).normal(size=(2, 4, 6, 6)).astype("float32")
    stock = keras.layers.Conv2D(3, 3, padding="same", data_format="channels_first")
    fast = Conv2D(3, 3, padding="same", data_format="channels_first")
    stock.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(stock.get_weights())
    got, expected = (keras.ops.convert_to_numpy(layer(x)) for layer in (fast, stock))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.backend
def test_only_pytorch_trains_the_copy_free_layer():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    kinds = {type(layer) for layer in with_fast_kernels(model).layers}
    assert (Conv2D in kinds) == (keras.backend.backend() == "torch"), kinds
