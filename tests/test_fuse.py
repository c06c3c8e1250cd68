"""Inference fusion (relu_ratio.fuse): same outputs, fewer layers, original untouched, SavedModel export."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import RAW, REAL, cheapest_entry, real_entries_for_this_backend
from keras import layers

from relu_ratio import models, zoo
from relu_ratio.fuse import Affine, fuse
from relu_ratio.inputs import ImageInputError

TOLERANCE = 1e-4
NORMALIZATION = ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7))
FUSED_TYPES = (
    layers.InputLayer, layers.Conv2D, Affine, layers.ReLU, layers.Add, layers.Average,
    layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.Dense,
)  # fmt: skip
# Every family, paired and a ratio; Type 1 where the family has one (postresnet8_21 and resnet8_21 are
# Type 1 "01", preact11_32 is "011", dfnmr14_43 is "1011"); merges in preact11_type2 / preact11_31.
CASES = [
    "plain8_paired", "plain8_21",
    "postresnet8_paired", "postresnet8_21",
    "resnet8_paired", "resnet8_21", "resnet8_erase_last",
    "preact11_paired", "preact11_32", "preact11_type2", "preact11_31",
    "dfnmr14_paired", "dfnmr14_43", "dfnmr14_type2",
]  # fmt: skip
# Under another backend than TensorFlow's (whose pass runs every case): a ratio network of each family and
# the two that merge convolutions. Folding is the same Python there; only the backend's arithmetic differs.
CASES_HERE = CASES if keras.backend.backend() == "tensorflow" else [
    "plain8_21", "postresnet8_21", "resnet8_21", "preact11_type2", "preact11_31", "dfnmr14_43",
]  # fmt: skip


def randomize_batch_norms(model: keras.Model, seed: int = 0) -> None:
    """Random, non-trivial BatchNorm statistics and affine parameters, so folding is really exercised."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c))
            layer.beta.assign(rng.normal(0.0, 0.3, c))
            layer.moving_mean.assign(rng.normal(0.0, 0.3, c))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))


def build(name: str, normalization=NORMALIZATION, **kwargs) -> keras.Model:
    model = models.build(name, normalization=normalization, **kwargs)
    randomize_batch_norms(model)
    return model


def inputs_for(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Raw 0-255 images for models with the Normalization layer, standardised ones otherwise."""
    normalized = any(layer.name == "normalize" for layer in model.layers)
    return images if normalized else (images - 128.0) / 64.0


def max_diff(model: keras.Model, fused: keras.Model, x: np.ndarray) -> float:
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(fused(x))
    assert expected.shape == got.shape
    return float(np.max(np.abs(expected - got)))


def batch_norm_names(model: keras.Model) -> set[str]:
    names = set()
    for layer in model.layers:
        subs = list(layer._flatten_layers(include_self=False))
        names |= {f"{layer.name}_{s.name}" for s in subs if isinstance(s, layers.BatchNormalization)}
        if isinstance(layer, (layers.BatchNormalization, layers.Normalization)):
            names.add(layer.name)
    return names


@pytest.mark.backend
@pytest.mark.parametrize("normalization", [NORMALIZATION, None], ids=["normalize", "raw"])
@pytest.mark.parametrize("name", CASES_HERE)
def test_fused_logits_match_with_fewer_layers(name, normalization, images):
    model = build(name, normalization, classifier_activation=None)
    fused, report = fuse(model, return_report=True)
    x = inputs_for(model, images)
    assert max_diff(model, fused, x) <= TOLERANCE
    assert np.max(np.abs(keras.ops.convert_to_numpy(fused(x)))) > 1.0  # logits, not near-zero outputs
    assert report.layers_after < report.layers_before
    assert report.macs_after <= report.macs_before
    assert set(report.folded) | set(report.kept) == batch_norm_names(model)
    assert all(isinstance(layer, FUSED_TYPES) for layer in fused.layers)
    assert all(layer.dtype_policy.name == "float32" for layer in fused.layers)


@pytest.mark.backend
def test_a_model_on_the_training_kernels_folds_like_its_stock_form(images):
    """``train.with_fast_kernels`` (TensorFlow and PyTorch) puts relu_ratio's own BatchNormalization (and,
    on PyTorch, Conv2D) in place of Keras': they compute the same, so they fold the same."""
    from relu_ratio import train

    model = models.build("resnet8_21", classifier_activation=None)
    stock, fast = fuse(model, return_report=True)[1], fuse(train.with_fast_kernels(model), return_report=True)
    assert fast[1].folded == stock.folded and fast[1].layers_after == stock.layers_after
    x = inputs_for(model, images)
    assert max_diff(model, fast[0], x) <= TOLERANCE


@pytest.mark.backend
@pytest.mark.parametrize("name", ["postresnet8_21", "preact11_32", "dfnmr14_43"])
def test_fused_probabilities_match(name, images):
    model = build(name)
    fused = fuse(model)
    assert max_diff(model, fused, images) <= TOLERANCE
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(images)).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.backend
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
@pytest.mark.parametrize("name", ["plain8_21", "resnet8_21", "dfnmr14_paired"])
def test_without_top(name, pooling, images):
    model = build(name, include_top=False, pooling=pooling)
    fused, report = fuse(model, return_report=True)
    assert fused.output_shape == model.output_shape
    assert max_diff(model, fused, images) <= TOLERANCE
    assert report.layers_after < report.layers_before


def test_inputs_and_outputs_keep_their_structure(images):
    model = build("resnet8_21")
    features = model.get_layer("avg_pool").output
    structures = ((model.input, {"probabilities": model.output, "features": features}),
                  ([model.input], [model.output]), ({"images": model.input}, model.output))  # fmt: skip
    for inputs, outputs in structures:
        original = keras.Model(inputs, outputs)
        given = keras.tree.pack_sequence_as(inputs, [images])
        predicted, fused = original.predict(given, verbose=0), fuse(original).predict(given, verbose=0)
        assert type(fused) is type(predicted)  # a dict's keys were lost: a list came back
        for want, got in zip(keras.tree.flatten(predicted), keras.tree.flatten(fused), strict=True):
            np.testing.assert_allclose(got, want, atol=TOLERANCE)
        assert type(fuse(original).input) is type(original.input)


def test_original_model_is_untouched(images):
    model = build("preact11_32")
    weights = [np.array(w) for w in model.get_weights()]
    before = keras.ops.convert_to_numpy(model(images, training=False))
    layer_names = [layer.name for layer in model.layers]
    fused = fuse(model)
    assert fused is not model and fused.name == "preact11_32_fused"
    assert [layer.name for layer in model.layers] == layer_names
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images, training=False)), before)


def test_merges_conv_chains_only_where_multiply_adds_drop():
    # type2 removes the second ReLU: conv1 (1x1) -> BN2 -> conv2 (3x3) in every block. Only in the first
    # block (1x1 16->16 then 3x3 16->16 at 32x32) does the composed 3x3 cost less than the two convs.
    model = build("preact11_type2")
    _, report = fuse(model, return_report=True)
    assert len(report.candidates) == 3
    merged = [c for c in report.candidates if c.merged]
    assert [(c.first, c.second) for c in merged] == [("stage1_block1_conv1", "stage1_block1_conv2")]
    assert report.macs_before - report.macs_after == merged[0].macs_separate - merged[0].macs_merged
    assert merged[0].macs_separate - merged[0].macs_merged == 32 * 32 * 16 * 16  # the 1x1 conv is gone
    # stage 2: 1x1 64->32 at 32x32, then 3x3 32->32 stride 2; merged: a 3x3 64->32 stride-2 conv
    stage2 = next(c for c in report.candidates if c.first == "stage2_block1_conv1")
    assert (stage2.macs_separate, stage2.macs_merged) == (
        32 * 32 * 64 * 32 + 16 * 16 * 9 * 32 * 32,
        16 * 16 * 9 * 64 * 32,
    )
    assert not stage2.merged


def test_nothing_merges_in_type1_bottleneck():
    _, report = fuse(build("preact11_32"), return_report=True)
    assert report.convs_merged == 0 and report.macs_after == report.macs_before
    assert "stage1_block1_bn1" in report.folded  # the first BN folds into the stem conv


@pytest.mark.backend
def test_layers_it_cannot_fold_are_kept_as_they_are(images):
    inputs = keras.Input((32, 32, 3))
    nested = models.build("resnet8_21", include_top=False)  # a model used as a layer
    randomize_batch_norms(nested)
    x = layers.Conv2D(4, 3, padding="same", dilation_rate=2, name="dilated")(nested(inputs))
    x = layers.Dropout(0.5, name="drop")(layers.BatchNormalization(name="bn_after_dilated")(x))
    x = layers.Conv2D(4, 3, padding="valid", name="valid_conv")(layers.BatchNormalization(name="bn")(x))
    model = keras.Model(inputs, x)
    randomize_batch_norms(model)
    fused, report = fuse(model, return_report=True)
    assert max_diff(model, fused, (images - 128.0) / 64.0) <= TOLERANCE
    assert {"resnet8_21", "dilated", "drop"} <= {layer.name for layer in fused.layers}
    assert report.folded == ("bn",)  # into the valid conv after it
    assert report.kept == ("bn_after_dilated",)  # the Dropout between stops it: an Affine layer


def test_bad_models_are_refused_clearly():
    inputs = keras.Input((None, None, 3))
    with pytest.raises(ValueError, match="static input shapes"):
        fuse(keras.Model(inputs, layers.Conv2D(4, 3, padding="same")(inputs)))
    with pytest.raises(ValueError, match=r"functional keras\.Model"):
        fuse(layers.Dense(3))
    sequential = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3), layers.BatchNormalization()])
    with pytest.raises(ValueError, match=r"received Sequential \(a Sequential model with an Input: fuse"):
        fuse(sequential)
    assert fuse(keras.Model(sequential.inputs, sequential.outputs)).output_shape == (None, 6, 6, 4)


def test_return_report_must_be_a_bool():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layers.BatchNormalization()(layers.Conv2D(4, 3)(inputs)))
    for value in ("no", "false", 0, None):  # "no" returned a (model, report) pair
        with pytest.raises(ValueError, match=rf"return_report must be True or False; received {value!r}\."):
            fuse(model, return_report=value)
    assert isinstance(fuse(model, return_report=False), keras.Model)


@pytest.mark.backend
def test_mixed_precision_model_fuses_in_float32(images):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = build("resnet8_21")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    reference = models.build("resnet8_21", normalization=NORMALIZATION)
    reference.set_weights(mixed.get_weights())
    fused = fuse(mixed)
    assert all(layer.dtype_policy.name == "float32" for layer in fused.layers)
    assert max_diff(reference, fused, images) <= TOLERANCE


def test_a_nested_mixed_precision_model_is_copied_to_float32_layer_by_layer():
    """Its copy took the model's float32 dtype, which Keras does not pass on to the layers inside: the fused
    model computed in float16 and said float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inner_input = keras.Input((8, 8, 3))
        inner = keras.Model(inner_input, layers.Conv2D(3, 3, padding="same")(inner_input), name="inner")
        inputs = keras.Input((8, 8, 3))
        model = keras.Model(inputs, inner(layers.BatchNormalization()(inputs)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    fused = fuse(model)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    assert keras.backend.standardize_dtype(fused(x).dtype) == "float32"
    assert [layer.dtype_policy.name for layer in fused.layers[-1].layers] == ["float32", "float32"]
    assert np.abs(keras.ops.convert_to_numpy(fused(x)) - keras.ops.convert_to_numpy(model(x))).max() < 1e-2


def test_a_nested_model_is_copied_for_its_layers_precision_and_kept_when_quantized():
    """A model made after the policy was reset holds half-precision layers under a float32 policy (it was
    kept in float16); a quantized one has weights a float32 rebuild has no place for (it was kept, and the
    copy then crashed in set_weights): kept as it is."""
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    for quantized in (False, True):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            inner_input = keras.Input((8, 8, 3))
            inner_output = layers.Dense(3)(layers.Conv2D(3, 3, padding="same")(inner_input))
        finally:
            keras.mixed_precision.set_global_policy("float32")
        inner = keras.Model(inner_input, inner_output, name="inner")
        if quantized:
            inner.quantize("int8")
        inputs = keras.Input((8, 8, 3))
        fused = fuse(keras.Model(inputs, inner(layers.BatchNormalization()(inputs))))
        dtype = keras.backend.standardize_dtype(fused(x).dtype)
        assert dtype == ("bfloat16" if quantized else "float32"), (quantized, dtype)


def test_a_model_with_one_value_per_image_is_fused():
    """A rank-1 tensor (a per-image scalar) was read as having the batch axis for channels: a TypeError."""
    inputs = keras.Input((8, 8, 3))
    pooled = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(layers.BatchNormalization()(inputs)))
    model = keras.Model(inputs, layers.Reshape(())(layers.Dense(1)(pooled)))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    fused = fuse(model)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x)), keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-5, atol=1e-5)  # fmt: skip


@pytest.mark.backend
def test_fused_model_round_trips_through_keras_file(tmp_path, images):
    fused = fuse(build("resnet8_21"))
    fused.save(tmp_path / "fused.keras")
    loaded = keras.models.load_model(tmp_path / "fused.keras")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(images)), keras.ops.convert_to_numpy(fused(images))
    )


@pytest.mark.parametrize("name", real_entries_for_this_backend())
def test_zoo_entries_fuse_within_tolerance(name, monkeypatch):
    """Every entry, on TensorFlow: the graph walk is Keras-level, the same on each backend; what a backend
    changes, the fused layers' numbers, the small families' cases and the zoo feature extractor check under
    each (this took 60 s of the JAX and PyTorch passes)."""
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    images = np.random.default_rng(1).integers(0, 256, size=(16, 32, 32, 3)).astype("float32")
    model = zoo.load(name)
    fused, report = fuse(model, return_report=True)
    assert max_diff(model, fused, images) <= TOLERANCE
    assert report.layers_after < report.layers_before


@pytest.mark.backend
def test_a_zoo_feature_extractor_fuses_within_tolerance():
    """The headless, max-pooled form of the smallest entry (the entries' full models are fused above)."""
    images = np.random.default_rng(1).integers(0, 256, size=(16, 32, 32, 3)).astype("float32")
    name = cheapest_entry(zoo.list())
    features = zoo.load(name, include_top=False, pooling="max")
    assert max_diff(features, fuse(features), images) <= TOLERANCE


@pytest.mark.backend
def test_the_fused_form_of_a_zoo_model_keeps_the_image_check(toy_zoo):
    model = zoo.load(REAL)
    fused = fuse(model)
    with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\]"):
        fused.predict(RAW / 255.0, verbose=0)
    np.testing.assert_allclose(fused.predict(RAW, verbose=0), model.predict(RAW, verbose=0), atol=1e-4)


@pytest.mark.tensorflow
def test_saved_model_of_fused_model_serves_the_same_outputs(tmp_path):
    import tensorflow as tf

    from relu_ratio.zoo.saved_model import SIGNATURE, _write_saved_model

    model = build("preact11_32")
    _write_saved_model(fuse(model), tmp_path / "fused")
    loaded = tf.saved_model.load(str(tmp_path / "fused"))  # keep a reference: it owns the variables
    served = getattr(loaded, SIGNATURE)
    images = np.random.default_rng(2).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    expected = keras.ops.convert_to_numpy(model(images.astype("float32"), training=False))
    assert np.max(np.abs(np.asarray(served(tf.constant(images))) - expected)) <= TOLERANCE


@pytest.mark.parametrize(
    "application",
    # ResNet50V2 runs on TensorFlow only: what it adds to the small families' cases, which run under JAX too,
    # is a big pre-activation graph walked and rebuilt (Keras-level logic, the same on each backend), and it
    # took 30 s of the JAX pass. MobileNetV2 stays on both: it is the only case of a folded DepthwiseConv2D.
    ["ResNet50V2", pytest.param("MobileNetV2", marks=pytest.mark.backend)],
)
def test_fuse_any_functional_keras_cnn(application):
    """Not only our families: keras.applications nets (random weights) fuse exactly, with fewer layers."""
    model = getattr(keras.applications, application)(
        weights=None, input_shape=(64, 64, 3), classifier_activation=None
    )
    randomize_batch_norms(model)
    fused, report = fuse(model, return_report=True)
    x = np.random.default_rng(0).normal(0.0, 1.0, (2, 64, 64, 3)).astype("float32")
    assert max_diff(model, fused, x) <= TOLERANCE
    assert report.layers_after < report.layers_before
    after_conv = {
        layer.name for layer in model.layers if isinstance(layer, layers.BatchNormalization)
        and isinstance(layer.input._keras_history[0], (layers.Conv2D, layers.DepthwiseConv2D))
    }  # fmt: skip
    assert len(after_conv) > 30 and after_conv <= set(report.folded)  # every BN after a conv is gone


@pytest.mark.backend
def test_keras_ops_and_call_arguments_are_replayed_as_they_were(images):
    """Non-layer operations (``x * 0.5 + ops.relu(x)``) are copied, and so are a call's keyword arguments,
    tensors included (``Softmax()(x, mask=...)``)."""
    inputs = keras.Input((32, 32, 3))
    x = layers.BatchNormalization(name="bn")(layers.Conv2D(4, 3, padding="same", name="conv")(inputs))
    x = x * 0.5 + keras.ops.relu(x)
    x = layers.Softmax(name="masked")(x, mask=keras.ops.greater(x, 0.1))
    model = keras.Model(inputs, layers.Conv2D(2, 1, name="head")(x))
    randomize_batch_norms(model)
    fused, report = fuse(model, return_report=True)
    x = (images - 128.0) / 64.0
    assert max_diff(model, fused, x) <= TOLERANCE
    assert report.folded == ("bn",) and "masked" in {layer.name for layer in fused.layers}
    assert max_diff(model, fuse(model), x) <= TOLERANCE  # the original is untouched: it fuses again


class ScaleBy(layers.Layer):
    """A custom layer whose constructor takes a function: it has no config, so it cannot be serialised."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn
        self.alpha = self.add_weight(shape=(), initializer="ones", name="alpha")

    def call(self, x):
        return self.fn(x) * self.alpha

    def get_config(self):
        raise NotImplementedError("ScaleBy takes a function")


@pytest.mark.backend
def test_lambda_and_unserialisable_layers_are_kept_as_the_same_objects(images):
    """fuse used to rebuild every kept layer from its config: a Lambda raised Keras' "deserialization of a
    Lambda ... disallowed", a layer without a config NotImplementedError. Now the layer object itself is
    kept, and the model fuses again afterwards (the kept layers then have a call in the fused model too)."""
    lam, custom = layers.Lambda(lambda t: t * 0.5 + 1.0, name="lam"), ScaleBy(keras.ops.tanh, name="custom")
    inputs = keras.Input((32, 32, 3))
    x = layers.BatchNormalization(name="bn1")(layers.Conv2D(4, 3, padding="same", name="conv1")(inputs))
    x = layers.BatchNormalization(name="bn2")(custom(lam(x)))
    x = layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    model = keras.Model(inputs, x)
    randomize_batch_norms(model)
    custom.alpha.assign(1.5)
    x = (images - 128.0) / 64.0
    for _ in range(2):
        fused, report = fuse(model, return_report=True)
        assert max_diff(model, fused, x) <= TOLERANCE
        assert report.folded == ("bn1", "bn2")
        kept = [layer for layer in fused.layers if layer.name in ("lam", "custom")]
        assert len(kept) == 2 and kept[0] is lam and kept[1] is custom


def test_only_a_half_precision_layer_with_a_config_is_copied_to_float32():
    """A mixed-precision model's kept layers: one that rebuilds from its config becomes a float32 copy; a
    Lambda (whose function Keras will not rebuild) and a layer without a config stay the same objects."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        scale, lam = layers.Rescaling(0.5, name="scale"), layers.Lambda(lambda t: t + 1.0, name="lam")
        custom = ScaleBy(keras.ops.tanh, name="custom")
        full = layers.Rescaling(2.0, dtype="float32", name="full")  # already float32: kept as it is
        inputs = keras.Input((32, 32, 3))
        model = keras.Model(inputs, full(custom(lam(scale(layers.Conv2D(4, 3, name="conv")(inputs))))))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    fused = fuse(model)
    (copy,) = [layer for layer in fused.layers if isinstance(layer, layers.Rescaling) and layer.scale == 0.5]
    assert copy is not scale and copy.dtype_policy.name == "float32"
    kept = {layer.name: layer for layer in fused.layers if layer.name in ("lam", "custom", "full")}
    assert kept["lam"] is lam and kept["custom"] is custom and kept["full"] is full


@pytest.mark.backend
def test_a_shared_layer_is_fused_at_each_call(images):
    """fuse reads the model's own calls (it used to refuse a layer called twice, and so also any layer it had
    kept once): each call of a shared conv or BatchNorm is folded, a shared kept layer is called twice."""
    conv, bn = layers.Conv2D(3, 3, padding="same", name="conv"), layers.BatchNormalization(name="bn")
    lam = layers.Lambda(lambda t: t - 0.25, name="lam")
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, lam(bn(conv(lam(bn(conv(inputs)))))))
    randomize_batch_norms(model)
    fused, report = fuse(model, return_report=True)
    assert max_diff(model, fused, (images - 128.0) / 64.0) <= TOLERANCE
    assert report.folded == ("bn",)
    names = [layer.name for layer in fused.layers if not isinstance(layer, layers.InputLayer)]
    assert sorted(names) == ["conv", "conv_2", "lam"]  # the conv folded at each call; the Lambda called twice


@pytest.mark.backend
@pytest.mark.parametrize("after", ["conv", "relu"])
def test_uint8_images_are_cast_before_a_folded_normalization(after):
    """A Normalization (which casts) folded into the next layer used to hand it the uint8 images."""
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    mean, std = NORMALIZATION
    x = layers.Normalization(mean=mean, variance=[s * s for s in std], name="normalize")(inputs)
    if after == "conv":
        x = layers.Conv2D(4, 3, padding="same", name="conv")(x)
    else:
        x = layers.Conv2D(4, 1, name="head")(layers.ReLU(name="relu")(x))
    model = keras.Model(inputs, x)
    fused, report = fuse(model, return_report=True)
    assert report.folded == ("normalize",) if after == "conv" else report.kept == ("normalize",)
    uint8 = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    assert fused.inputs[0].dtype == "uint8"
    assert max_diff(model, fused, uint8) <= TOLERANCE
