"""Builders: published parameter counts, ReLU counts measured from the model, argument checks."""

from __future__ import annotations

import re
import types
import warnings

import keras
import numpy as np
import pytest
from conftest import SMALL_NAMES

import relu_ratio
from relu_ratio import models

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("family", list(SMALL_NAMES))
def test_removing_relus_never_changes_parameters(family):
    name = SMALL_NAMES[family]
    family, depth, _ = models.parse_name(f"{name}_11")
    counts = {
        pattern: relu_ratio.describe(models.build_family(family, depth, pattern)).params
        for pattern in ("paired", "2:1" if family in ("plain", "resnet", "postresnet") else "type1")
    }
    assert len(set(counts.values())) == 1, counts


@pytest.mark.parametrize(
    ("family", "depth", "blocks"),
    [("plain", 38, [12, 12, 12]), ("plain", 62, [20, 20, 20]), ("plain", 84, [27, 27, 28]),
     ("dfnmr", 110, [9, 9, 9]), ("preact", 164, [18, 18, 18]), ("resnet", 110, [18, 18, 18])],
)
def test_depth_to_stages(family, depth, blocks):
    assert models.FAMILIES[family].blocks_per_stage(depth) == blocks


@pytest.mark.parametrize(
    ("family", "depth", "nearest"),
    [("preact", 165, "164, 173"), ("resnet", 100, "98, 104"), ("dfnmr", 111, "110, 114"),
     ("preact", 3, "11"), ("plain", 2, "5")],
)
def test_invalid_depth_lists_nearest_valid_depths(family, depth, nearest):
    with pytest.raises(ValueError, match=f"Nearest valid depths: {nearest}"):
        models.build_family(family, depth)


def test_names():
    assert models.parse_name("preact164_32") == ("preact", 164, "3:2")
    assert models.parse_name("dfnmr110_type2") == ("dfnmr", 110, "type2")
    with pytest.raises(ValueError, match="did you mean 'preact'"):
        models.build("preakt164_32")
    with pytest.raises(ValueError, match="did you mean 'type1'"):
        models.build("preact164_typ1")
    with pytest.raises(ValueError, match="does not follow"):
        models.build("resnet")
    # a mask, as the zoo table shows it, in a name: named as one, with the call that takes it
    for name, call in (("resnet20_01", "build_family('resnet', 20, '01')"),
                       ("preact164_101", "build_family('preact', 164, '101')")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(f"goes in relu_pattern: models.{call}")):
            models.parse_name(name)
    said = r"^pattern '10' in model name 'resnet8_10' reads as the ratio 1:0, which keeps no ReLU \(a ratio "
    with pytest.raises(ValueError, match=said + r".*A mask such as '10' goes in relu_pattern: models\.build"):
        models.build("resnet8_10")  # was relu_pattern's error about '1:0' alone, the mask not named
    with pytest.raises(ValueError, match=r"'resnet8_00' reads as the ratio 0:0, which keeps no ReLU \(.*\.$"):
        models.parse_name("resnet8_00")


def test_head_options(images):
    features = models.build("resnet8_21", include_top=False)
    assert features.output.shape == (None, 8, 8, 64)
    pooled = models.build("resnet8_21", include_top=False, pooling="max")
    assert pooled.output.shape == (None, 64)
    logits = models.build("resnet8_21", classes=100, classifier_activation=None)
    out = keras.ops.convert_to_numpy(logits(images))
    assert out.shape == (4, 100) and not np.allclose(out.sum(axis=1), 1)
    probs = keras.ops.convert_to_numpy(models.build("resnet8_21")(images))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    any_size = models.build("resnet8_21", input_shape=(None, None, 3), include_top=False, pooling="avg")
    for size in ((32, 32), (40, 24)):
        features = any_size(keras.ops.convert_to_tensor(np.zeros((2, *size, 3), "float32")))
        assert tuple(features.shape) == (2, 64)
    assert relu_ratio.describe(any_size).flops is None
    wide = models.build("resnet8_21", width_multiplier=2, input_shape=(64, 48, 1))
    assert wide.input.shape == (None, 64, 48, 1)
    assert relu_ratio.describe(wide).params > relu_ratio.describe(models.build("resnet8_21")).params


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "avg"}, "only applies with include_top=False"),
        ({"include_top": False, "pooling": "mean"}, "'avg' or 'max'"),
        ({"classes": 0}, "integer >= 2"),
        ({"classes": 1}, r"integer >= 2 \(a softmax over one class always says 1.0"),
        ({"classes": 10**9}, r"beyond relu_ratio.models.MAX_CLASSES = 100,000.*raise the limit"),
        ({"input_shape": (32, 32)}, "height, width, channels"),
        ({"input_shape": (2, 2, 3)}, "too small"),
        ({"width_multiplier": 0}, r"finite number in \(0, 64\]"),
        ({"width_multiplier": float("inf")}, r"width_multiplier must be a finite number .*received inf\."),
        ({"width_multiplier": float("nan")}, r"width_multiplier must be a finite number .*received nan\."),
        ({"width_multiplier": 1e-9}, r"width_multiplier 1e-09 leaves the 16-channel stage no channel .*1/32"),
        ({"weight_decay": float("nan")}, r"weight_decay must be a finite number >= 0; received nan\."),
        ({"weights": "model.h5"}, "'.weights.h5'"),
        ({"weights": 42}, r"None, a pretrained preset such as 'cifar10' .*received 42"),
        ({"weights": "../cifar10"}, r"a pretrained preset such as 'cifar10'"),
        ({"classifier_activation": "softmx"}, "softmx"),
    ],
)
def test_bad_builder_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.build("resnet8_11", **kwargs)


def test_weights_argument_loads_a_weights_file(tmp_path, images):
    source = models.build("preact11_32")
    path = tmp_path / "m.weights.h5"
    source.save_weights(path)
    loaded = models.build("preact11_32", weights=path)
    np.testing.assert_allclose(loaded.predict_on_batch(images), source.predict_on_batch(images), atol=1e-6)
    (tmp_path / "d.weights.h5").mkdir()  # a bare IsADirectoryError before
    with pytest.raises(ValueError, match=r"weights file '.*d.weights.h5' is a folder, not a"):
        models.build("preact11_32", weights=tmp_path / "d.weights.h5")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"include_top": False, "classes": 5}, r"classes=5 only applies with include_top=True"),
        ({"include_top": "no"}, r"include_top must be True or False"),
        ({"classes": 2.5}, r"classes must be an integer >= 2"),
        ({"input_shape": (32, 32, 3, 1)}, r"\(height, width, channels\)"),
        ({"normalization": ([1, 2], [1, 1])}, r"normalization must be \(mean, std\) with 3 finite values"),
        ({"normalization": ([1, 2, 3], [1, 0, 1])}, r"std > 0"),
        ({"normalization": ([float("nan")] * 3, [1, 1, 1])}, r"3 finite values each"),
        ({"normalization": ([1, 2, 3], [1, float("inf"), 1])}, r"3 finite values each"),
        ({"normalization": ("123", "456")}, r"3 finite values each and std > 0; received \('123', '456'\)"),
        ({"normalization": ([1, 2, True], [1, 1, 1])}, r"3 finite values each"),
        ({"input_shape": {32: 1, 2: 2, 3: 3}}, r"channels\); received {32: 1, 2: 2, 3: 3}"),
        ({"weight_decay": -1}, r"weight_decay must be a finite number >= 0"),
        ({"classifier_activation": "sofmax"}, r"'sofmax' is not a Keras activation \(did you mean 'softmax'"),
        ({"input_shape": 5}, r"input_shape must be \(height, width, channels\); received 5"),
        ({"pooling": "sum"}, r"pooling must be None, 'avg' or 'max'; received 'sum'"),
        ({"include_top": False, "classifier_activation": "sofmax"}, r"'sofmax' is not a Keras activation"),
        ({"name": ""}, r"name must be a non-empty string \(the model's name\) or None; received ''"),
        ({"input_shape": (None, 32, None)}, r"height and width may be None \(any size\)"),
        ({"input_shape": (None, 2, 3)}, "too small"),
        ({"relu_pattern": "1:1"}, r"build\('resnet8_11', relu_pattern='1:1'\): the name fixes the family, "),
        ({"family": "preact"}, r"build\('resnet8_11', family='preact'\): the name fixes"),
        ({"depth": 20}, r"depth=20\): the name fixes .* call build_family\('resnet', depth=..."),
    ],
)
def test_bad_builder_combinations_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.build("resnet8_11", **kwargs)


def test_normalization_on_the_0_1_scale_is_warned_of():
    """ImageNet-style statistics for images scaled to [0, 1]: the model, taking raw 0-255 images, would
    normalise them wrongly, silently; a dataset that dark is possible, so a warning rather than a refusal."""
    with pytest.warns(UserWarning, match=r"scaled to \[0, 1\].*multiply both by 255"):
        models.build("resnet8_11", normalization=([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.build("resnet8_11", normalization=([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]))
        models.build("resnet8_11", normalization=np.array([[125.3, 123.0, 113.9], [63.0, 62.1, 66.7]]))


@pytest.mark.parametrize("preact", ["no", None, 0])
def test_resnet_preact_takes_true_or_false_only(preact):
    with pytest.raises(ValueError, match=rf"preact \(True: pre-activation, False: post-activation\) must be "
                                         rf"True or False; received {preact!r}\."):  # fmt: skip
        models.resnet(8, preact=preact)
    assert models.resnet(8, preact=np.bool_(False)).name == models.resnet(8, preact=False).name  # numpy's too


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("type-1", r"relu_pattern 'type-1' is not understood \(did you mean 'type1'"),
     (lambda stage: "11", r"called as fn\(stage, block\) .* cannot be: too many")],
)  # fmt: skip
def test_a_misspelt_preset_or_a_callable_of_the_wrong_arity_is_named(pattern, message):
    with pytest.raises(ValueError, match=message):
        models.resnet(8, pattern)


def test_numpy_numbers_are_taken_as_the_python_numbers_they_hold():
    """``classes=labels.max() + 1`` or ``input_shape=images.shape[1:]`` give numpy numbers."""
    model = models.resnet(np.int64(8), "2:1", classes=np.int64(5), input_shape=np.array([32, 24, 3]),
                          width_multiplier=np.float32(0.5), weight_decay=np.float32(1e-4))  # fmt: skip
    assert model.output_shape == (None, 5) and model.input_shape == (None, 32, 24, 3)
    assert model.get_config()["layers"][-1]["config"]["units"] == 5 and type(model.layers[-1].units) is int
    assert models.counts("preact", np.int64(164), "3:2") == models.counts("preact", 164, "3:2")
    with pytest.raises(ValueError, match="classes must be an integer >= 2"):  # a numpy bool is no number
        models.build("resnet8_21", classes=np.bool_(True))


@pytest.mark.parametrize("builder", ["resnet20_21", "resnet20_11"])
def test_a_shipped_zoo_weights_file_given_by_path_is_refused_with_the_way_to_load_it(builder):
    """Loaded by path it would lack its normalization, and fit any ReLU pattern of the same shapes."""
    from relu_ratio.zoo import registry

    path = registry.shipped_store() / "resnet20_21" / "model.weights.h5"
    with pytest.raises(ValueError, match=r"holds zoo entry 'resnet20_21'.*zoo.load\('resnet20_21'\) or "
                       r"models.build\('resnet20_21', weights='cifar10'\)"):  # fmt: skip
        models.build(builder, weights=path)


def test_a_weights_file_loads_only_into_a_model_normalised_as_the_one_that_saved_it(tmp_path, images):
    """The normalization has no weights: a fine-tuned zoo model's file loaded into a model built without it
    gave 10 % on the sample, without an error."""
    stats = ([125.0, 123.0, 114.0], [63.0, 62.0, 66.0])
    normalised, plain = tmp_path / "normalised.weights.h5", tmp_path / "plain.weights.h5"
    source = models.build("resnet8_21", normalization=stats)
    source.save_weights(normalised)
    models.build("resnet8_21").save_weights(plain)
    with pytest.raises(ValueError, match=r"saved from a model that normalises its images .* resnet8_21 built "
                                         r"here does not: .* normalization=\(mean, std\)"):  # fmt: skip
        models.build("resnet8_21", weights=normalised)
    with pytest.raises(ValueError, match=r"saved from a model without normalization .* resnet8_21 built here "
                                         r"normalises them: build it without normalization=\.$"):  # fmt: skip
        models.build("resnet8_21", weights=plain, normalization=stats)
    models.build("resnet14_21").save_weights(plain)
    with pytest.raises(ValueError, match="cannot be loaded into resnet8_21"):  # another network: said first
        models.build("resnet8_21", weights=plain, normalization=stats)
    loaded = models.build("resnet8_21", weights=normalised, normalization=stats)
    np.testing.assert_allclose(loaded.predict_on_batch(images), source.predict_on_batch(images), atol=1e-6)
    models.build("resnet14_21", weights=plain)


def _warns_on_load(path):
    for _ in range(2):  # one line, one message, twice: as Keras repeats a warning for each layer
        warnings.warn(f"loaded {path}", UserWarning, stacklevel=1)  # this file: this module


def test_the_warnings_of_a_load_that_succeeds_meet_the_filters_on_their_module():
    """``load_weights_file`` holds back the warnings of a load, to drop them if it fails; given again, they
    named no module (a filter on Keras' module no longer matched) and escaped the once-per-location rule."""
    model = types.SimpleNamespace(load_weights=_warns_on_load)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", module=re.escape(__name__))
        with pytest.raises(UserWarning, match="loaded first"):
            models.load_weights_file(model, "first")
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        models.load_weights_file(model, "same")
    assert [str(w.message) for w in shown] == ["loaded same"]


def test_builder_weights_of_another_architecture_are_named(tmp_path, recwarn):
    path = tmp_path / "other.weights.h5"
    models.build("resnet14_21").save_weights(path)
    with pytest.raises(ValueError, match=r"cannot be loaded into resnet8_21.*same architecture"):
        models.build("resnet8_21", weights=path)
    models.build("resnet8_21").save_weights(path)  # fewer layers than resnet14's: Keras warns for each
    with pytest.raises(ValueError, match=r"cannot be loaded into resnet14_21.*same architecture"):
        models.build("resnet14_21", weights=path)
    assert not [w for w in recwarn if "freshly-initialized" in str(w.message)]  # said before the refusal
    models.build("resnet8_21", classes=5).save_weights(path)
    shapes = r"predictions/kernel is \(64, 7\) here, \(64, 5\) in the file\. Check"  # cut off before
    with pytest.raises(ValueError, match=shapes) as refused:
        models.build("resnet8_21", classes=7, weights=path)
    assert "value=" not in str(refused.value)  # not the values Keras prints before it
    models.build("resnet8_21", include_top=False).save_weights(path)
    reason = r"<Dense name=predictions, built=True>: Layer 'predictions' expected 2 variables, but received 0"
    with pytest.raises(ValueError, match=reason + r" .*\['kernel', 'bias'\]\. Check"):  # ended at the colon
        models.build("resnet8_21", weights=path)
    path.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="cannot be loaded into"):
        models.build("resnet8_21", weights=path)


@pytest.mark.parametrize(
    ("depth", "message"),
    [(-1000, r"depth -1000 is not valid .* Nearest valid depths: 8\."),
     (600002, r"depth 600002 is beyond relu_ratio.models.MAX_DEPTH = 2000.*MAX_DEPTH = 600002")],
)  # fmt: skip
def test_depths_that_cannot_be_meant_are_refused_clearly(depth, message):
    with pytest.raises(ValueError, match=message):
        models.resnet(depth)


def test_build_takes_a_name_for_the_model():
    assert models.build("resnet8_21", name="mine").name == "mine"
    assert models.build("resnet8_21").name == "resnet8_21"


def test_a_builder_names_its_model_as_build_names_the_network_where_the_pattern_has_such_a_name():
    """``resnet(8, "2:1")`` and ``resnet(8, "1:1")`` were both named "resnet8"; paired (the default): _11."""
    named = [models.resnet(8, "2:1"), models.resnet(8), models.preact_bottleneck(11, "3:2"),
             models.dfn_mr(14, "type1"), models.resnet(8, "2:1", preact=False), models.plain(8, "2:2")]
    assert [m.name for m in named] == ["resnet8_21", "resnet8_11", "preact11_32", "dfnmr14_type1",
                                       "postresnet8_21", "plain8_22"]  # fmt: skip
    assert all(relu_ratio.describe(models.build(m.name)) == relu_ratio.describe(m) for m in named)
    unnamed = [models.resnet(8, "01"), models.plain(8, "11"), models.plain(38, "10:1"),
               models.preact_bottleneck(11, ["1:1", "3:2", "type1"])]  # a mask, a 2-digit N, one per stage
    assert [m.name for m in unnamed] == ["resnet8", "plain8", "plain38", "preact11"]  # fmt: skip


def test_describe_counts_every_layer_that_applies_a_relu():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)  # conv + ReLU in one layer
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.ReLU(max_value=6.0)(x)
    x = keras.layers.LeakyReLU()(x)
    x = keras.layers.Activation("relu6")(x)
    x = keras.layers.Activation("gelu")(x)  # not a ReLU
    x = keras.layers.Conv2D(4, 1, activation="leaky_relu")(x)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    info = relu_ratio.describe(keras.Model(inputs, outputs))
    assert (info.convs, info.relus) == (2, 6)


def test_describe_counts_the_relus_a_fused_model_builds_into_affine_layers():
    from relu_ratio.fuse import fuse

    model = models.build("resnet8_11")
    fused = fuse(model)
    assert any(type(layer).__name__ == "Affine" for layer in fused.layers)
    assert relu_ratio.describe(fused).relus == relu_ratio.describe(model).relus


@pytest.mark.parametrize(
    "name",
    ["resnet8_21\n", "resnet008_21", "resnet\uff18_21", "resnet8_\uff12\uff11", "ResNet8_21", " resnet8_21"],
)
def test_a_network_has_one_name(name):
    """A trailing newline, leading zeros, full-width digits or capitals used to give one network a second id
    (and a newline reached folder names); now only the canonical spelling passes, and it is suggested."""
    with pytest.raises(ValueError, match=r"lower-case ASCII, no leading zeros.*Did you mean 'resnet8_21'\?"):
        models.check_name(name)
    assert models.check_name("resnet8_21") == ("resnet", 8, "2:1")


def test_a_name_with_no_canonical_spelling_gets_no_suggestion():
    with pytest.raises(ValueError, match="does not follow") as error:
        models.parse_name("resnt008_21\n")
    assert "Did you mean" not in str(error.value)


def test_a_plain_ratio_longer_than_the_network_is_refused_before_any_allocation():
    """The period of a plain net's ratio used to be a string of N characters (1 GB for N = 10**9)."""
    with pytest.raises(ValueError, match=r"'1000000000:1' repeats every 1,000,000,000 layers.*N <= 36"):
        models.plain(38, relu_pattern="1000000000:1")
    with pytest.raises(ValueError, match=r"'10000000000:1' repeats .* only 36 layers"):
        models.counts("plain", 38, "10000000000:1")
