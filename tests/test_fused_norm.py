"""The training-time fused BatchNormalization computes what the stock layer does, with the same weights, on
each backend that has a fused kernel (TensorFlow, PyTorch; under JAX the stock layer is kept); so do whole
models on ``relu_ratio.train.kernels``' layers (under PyTorch its copy-free ``Conv2D`` too)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from relu_ratio import models
from relu_ratio.train.fused_norm import FUSED_BACKENDS
from relu_ratio.train.fused_norm import BatchNormalization as FusedBatchNormalization
from relu_ratio.train.kernels import with_fast_kernels

NORMALIZATION = ((128.0,) * 3, (64.0,) * 3)


def fused_backend(test):
    """Runs in the TensorFlow and PyTorch passes of the README's test command, the backends with a fused
    kernel; skipped under JAX, where the stock layer is kept (checked below)."""
    no_kernel = keras.backend.backend() not in FUSED_BACKENDS
    skip = pytest.mark.skipif(no_kernel, reason="no fused kernel on this backend: the stock layer is kept")
    return pytest.mark.backend(skip(test))


def _gradients(model: keras.Model, x: np.ndarray) -> tuple:
    """Training-mode outputs (float32) and the gradients of a fixed loss of them, on this backend."""
    if keras.backend.backend() == "torch":
        import torch

        y = model(x, training=True).float()
        loss = (y * torch.arange(y.shape[-1], device=y.device)).sum()
        return y.detach(), torch.autograd.grad(loss, [v.value for v in model.trainable_variables])
    import tensorflow as tf

    with tf.GradientTape() as tape:
        y = tf.cast(model(x, training=True), "float32")
        loss = tf.reduce_sum(y * tf.range(y.shape[-1], dtype="float32"))
    return y, tape.gradient(loss, model.trainable_variables)


def _step(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Training-mode outputs, gradients of a fixed loss, and the moving statistics afterwards (numpy)."""
    y, grads = _gradients(model, x)
    return _float32(y), [_float32(g) for g in grads], [_float32(w) for w in model.non_trainable_weights]


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays])


@fused_backend
def test_fused_training_step_equals_the_stock_layers(images):
    stock = models.build("resnet8_21", normalization=NORMALIZATION)
    fused = with_fast_kernels(stock)
    assert isinstance(fused.get_layer("stage2_block1_bn1"), FusedBatchNormalization)
    conv = type(fused.get_layer("stage2_block1_conv1")).__module__
    assert (conv == "relu_ratio.train.torch_conv") == (keras.backend.backend() == "torch"), conv
    assert [w.path for w in fused.weights] == [w.path for w in stock.weights]
    expected, got = _step(stock, images), _step(fused, images)
    np.testing.assert_allclose(got[0], expected[0], atol=1e-5)
    np.testing.assert_allclose(_flat(got[1]), _flat(expected[1]), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(_flat(got[2]), _flat(expected[2]), rtol=1e-5, atol=1e-6)  # moving stats
    np.testing.assert_allclose(fused.predict(images, verbose=0), stock.predict(images, verbose=0), atol=1e-5)


@fused_backend
def test_fused_bfloat16_gradients_are_as_close_to_float32_as_the_stock_ones():
    x = np.random.default_rng(0).uniform(0, 255, size=(32, 32, 32, 3)).astype("float32")
    reference_model = models.build("resnet8_21", normalization=NORMALIZATION)
    reference = _flat(_step(reference_model, x)[1])
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        stock = models.build("resnet8_21", normalization=NORMALIZATION)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    stock.set_weights(reference_model.get_weights())
    errors, predictions = {}, {}
    for label, model in (("stock", stock), ("fused", with_fast_kernels(stock))):
        grads = _flat(_step(model, x)[1])
        errors[label] = np.linalg.norm(grads - reference) / np.linalg.norm(reference)
        predictions[label] = np.asarray(model.predict(x, verbose=0), dtype="float32")
    assert errors["fused"] < 0.05, errors
    assert errors["fused"] < 2 * errors["stock"], errors
    np.testing.assert_allclose(predictions["fused"], predictions["stock"], atol=0.02)  # bf16 inference


@fused_backend
def test_weights_move_between_fused_and_stock_models(tmp_path, images):
    """Backups and ``best.weights.h5`` are written from the fused training model; both ways must load."""
    stock = models.build("preact11_32", normalization=NORMALIZATION)
    fused = with_fast_kernels(models.build("preact11_32", normalization=NORMALIZATION))
    fused.save_weights(tmp_path / "fused.weights.h5")
    stock.load_weights(tmp_path / "fused.weights.h5")
    for a, b in zip(stock.get_weights(), fused.get_weights()):
        np.testing.assert_array_equal(a, b)
    fresh = with_fast_kernels(models.build("preact11_32", normalization=NORMALIZATION))
    stock.save_weights(tmp_path / "stock.weights.h5")
    fresh.load_weights(tmp_path / "stock.weights.h5")
    # two kernels summing in different orders, as above (1.7e-6 apart on an AMX CPU)
    np.testing.assert_allclose(fresh.predict(images, verbose=0), stock.predict(images, verbose=0), atol=1e-5)


@pytest.mark.backend
def test_a_saved_model_on_fast_kernels_loads_back(tmp_path, images):
    """``model.save`` after training the fast copy (the GUIDE's example) gives a loadable ``.keras`` file."""
    fast = with_fast_kernels(models.build("resnet8_21", normalization=NORMALIZATION))
    fast.save(tmp_path / "fast.keras")
    loaded = keras.saving.load_model(tmp_path / "fast.keras")
    kinds = [type(layer) for layer in fast._flatten_layers()]
    assert [type(layer) for layer in loaded._flatten_layers()] == kinds
    np.testing.assert_allclose(loaded.predict(images, verbose=0), fast.predict(images, verbose=0), atol=1e-6)


@pytest.mark.backend
def test_models_with_nothing_to_substitute_come_back_unchanged():
    if keras.backend.backend() == "jax":  # XLA fuses and lays out the stock layers' ops itself
        model = models.build("resnet8_21")
        assert with_fast_kernels(model) is model
    dense = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    assert with_fast_kernels(dense) is dense


@fused_backend
def test_settings_the_kernel_does_not_cover_use_the_stock_computation():
    x = np.random.default_rng(1).normal(size=(4, 6, 5)).astype("float32")  # 3-D: not fusable
    stock = keras.layers.BatchNormalization()
    fused = FusedBatchNormalization()
    expected = keras.ops.convert_to_numpy(stock(x, training=True))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x, training=True)), expected, atol=1e-6)


@fused_backend
@pytest.mark.parametrize(
    "settings",
    [{"center": False, "scale": False}, {"center": False}, {"trainable": False}, {"dtype": "bfloat16"}],
    ids=["no-affine", "no-offset", "frozen", "bfloat16-variables"],
)
def test_other_layer_settings_compute_what_the_stock_layer_does(settings):
    """Without gamma or beta, frozen (``training=True`` then normalises with the moving statistics, as
    Keras does), and with bfloat16 variables: the training and inference outputs of the stock layer."""
    x = np.random.default_rng(3).normal(1.0, 2.0, size=(4, 5, 5, 6)).astype("float32")
    stock, fused = keras.layers.BatchNormalization(**settings), FusedBatchNormalization(**settings)
    for layer in (stock, fused):
        layer.build(x.shape)
        layer.moving_mean.assign(np.full(6, 0.5))
        layer.moving_variance.assign(np.full(6, 3.0))
    tolerance = 0.05 if settings.get("dtype") == "bfloat16" else 1e-5
    for training in (True, False):
        got, expected = (_float32(layer(x, training=training)) for layer in (fused, stock))
        np.testing.assert_allclose(got, expected, atol=tolerance, err_msg=f"training={training}")
    moving, expected = ([_float32(v) for v in layer.non_trainable_weights] for layer in (fused, stock))
    np.testing.assert_allclose(np.concatenate(moving), np.concatenate(expected), rtol=max(tolerance, 1e-5))


def _float32(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


@fused_backend
def test_the_moving_variance_is_the_biased_batch_variance_as_in_the_stock_layer():
    x = np.random.default_rng(2).normal(2.0, 3.0, size=(2, 2, 2, 3)).astype("float32")  # 8 values a channel
    layer = FusedBatchNormalization(momentum=0.0)  # the moving statistics become the batch's
    layer(x, training=True)
    moving_mean, moving_variance = (keras.ops.convert_to_numpy(v) for v in layer.non_trainable_weights)
    np.testing.assert_allclose(moving_mean, x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(moving_variance, x.var(axis=(0, 1, 2)), rtol=1e-5)  # not n-1


@fused_backend
def test_batch_norm_inside_a_nested_model_is_fused_too(images):
    layers = keras.layers
    inner = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(4, 3), layers.BatchNormalization()])
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, keras.layers.BatchNormalization()(inner(inputs)))
    fused = with_fast_kernels(outer)
    kinds = {type(layer) for layer in fused._flatten_layers() if isinstance(layer, layers.BatchNormalization)}
    assert kinds == {FusedBatchNormalization}
    got, expected = (keras.ops.convert_to_numpy(m(images, training=True)) for m in (fused, outer))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_with_fast_kernels_takes_a_keras_model():
    for given, kind in (("resnet8_11", "str"), (None, "NoneType")):
        with pytest.raises(TypeError, match=rf"with_fast_kernels takes a keras.Model .*received {kind}\.$"):
            with_fast_kernels(given)  # was AttributeError: 'str' object has no attribute '_flatten_layers'
