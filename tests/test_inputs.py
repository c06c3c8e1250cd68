"""Image checks (relu_ratio.inputs): check_images names what is wrong and what is valid; a CheckedModel (what
zoo.load returns) runs it wherever it is given images, in every form, and keeps it when saved or exported."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import ml_dtypes
import numpy as np
import pytest
from helpers import RAW, REAL, SHAPE

from relu_ratio import zoo
from relu_ratio.inputs import CheckedModel, ImageInputError, check_images


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (RAW[:, :28, :28], r"shape \(4, 28, 28, 3\); expected \(batch, 32, 32, 3\)\. Resize"),
        (RAW[..., 0], r"shape \(4, 32, 32\).*Grayscale\? Stack it to RGB"),
        (RAW[..., :1], r"shape \(4, 32, 32, 1\).*takes 3 channel.*RGB: np\.repeat\(images, 3, axis=-1\)\.$"),
        (RAW[0], r"single image without a batch axis.*images\[None\]"),
        (np.full((2, *SHAPE), "a"), r"dtype <U1; expected raw images"),
        (RAW > 128, r"dtype bool; expected raw images"),
        (RAW.astype(object), r"dtype object"),
        (RAW / 255.0, r"images look scaled to \[0, 1\].*images \* 255"),
        ((RAW - 128.0) / 64.0, r"span \[-2, 1\.984375\].*in \[0, 255\]\. They look standardised"),
        (RAW * 2.0, r"span \[.*, 510\].*in \[0, 255\]"),
        (np.where(RAW == 7, np.nan, RAW.astype("float32")), r"contain \d+ NaN or infinite value"),
        (np.full((1, *SHAPE), np.inf, "float32"), r"contain 3,072 NaN or infinite"),
    ],
    ids=["28x28", "grayscale", "one-channel", "no-batch", "strings", "bool", "object", "scaled-0-1",
         "standardised", "above-255", "nan", "inf"],
)  # fmt: skip
def test_check_images_names_what_is_wrong_and_what_is_valid(images, message):
    with pytest.raises(ImageInputError, match=message):
        check_images(images, SHAPE)


def test_check_images_accepts_raw_images():
    for ok in (RAW, RAW.astype("float32"), RAW.astype("int64"), np.zeros((2, *SHAPE), "float32"),
               np.zeros((0, *SHAPE), np.uint8), RAW.tolist()):  # fmt: skip
        assert check_images(ok, SHAPE).shape[1:] == SHAPE
    assert check_images(RAW[:, :20], (None, None, 3)).shape == (4, 20, 32, 3)
    bf16 = RAW.astype(ml_dtypes.bfloat16)  # what JAX and PyTorch arrays of bfloat16 become (was refused)
    assert check_images(bf16, SHAPE).dtype == ml_dtypes.bfloat16
    assert check_images(np.full((1, *SHAPE), 256, ml_dtypes.bfloat16), SHAPE).shape == (1, *SHAPE)  # rounding
    with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\]"):
        check_images(bf16 / 255, SHAPE)


def test_check_images_is_not_fooled_by_a_few_outlier_pixels():
    scaled = RAW / 255.0
    scaled[0, 0, 0, 0] = 2.0  # one hot pixel above 1
    with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\] \(0.00\d+ % of the values are above 1"):
        check_images(scaled, SHAPE)
    flat = scaled.reshape(-1)  # a view; the line between scaled and raw: 1 % of the values above 1
    flat[: round(0.009 * flat.size)] = 200.0
    with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\] \(0.9 % of the values are above 1"):
        check_images(scaled, SHAPE)
    flat[: round(0.011 * flat.size)] = 200.0
    assert check_images(scaled, SHAPE).shape == (4, *SHAPE)
    scaled[:, :2] = 200.0  # 1/16 of the values above 1: a raw (dark) image, not a scaled one
    assert check_images(scaled, SHAPE).shape == (4, *SHAPE)
    assert check_images(np.where(RAW > 240, RAW, 0).astype("float32"), SHAPE).shape == (4, *SHAPE)


@pytest.mark.backend
def test_zoo_models_refuse_bad_images_in_predict_evaluate_fit_and_call(toy_zoo):
    model = zoo.load(REAL)
    assert isinstance(model, CheckedModel) and isinstance(model, keras.Model)
    scaled, labels = RAW / 255.0, np.arange(4)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    for use in (model.predict, model, model.predict_on_batch, model.evaluate, model.fit):
        with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\]"):
            use(scaled, labels, verbose=0) if use in (model.evaluate, model.fit) else use(scaled)
    with pytest.raises(ImageInputError, match=r"\(4, 28, 28, 3\)"):
        model.predict(RAW[:, :28, :28], verbose=0)
    from relu_ratio import data, train

    train.compile_for(model, train.TrainConfig(recipe="fast", epochs=1), steps_per_epoch=1)
    indices = data.Split(RAW, np.arange(4, dtype="int32"), data.sample().info)
    for use, batches in ((model.fit, data.batches(indices, 4)), (model.evaluate, data.batches(indices, 4))):
        with pytest.raises(ValueError, match=r"compiled for one-hot labels .* one_hot=True\)"):
            use(batches, verbose=0)
    info = data.DatasetInfo("three", ("a", "b", "c"), (0.0,) * 3, (1.0,) * 3)
    three = data.Split(RAW, np.arange(4) % 3, info)
    with pytest.raises(ValueError, match=r"^the batches given as x are of 3 classes and \w+ has 10: build"):
        model.fit(data.batches(three, 4, one_hot=True), verbose=0)  # failed inside Keras
    given = r"{0} holds class indices \(shape \(4,\)\): give keras.utils.to_categorical\({0}, 10\), or"
    for use in (model.fit, model.evaluate):  # numpy class indices (the top-5 metric failed inside Keras)
        with pytest.raises(ValueError, match="one-hot labels .*, but " + given.format("y")):
            use(RAW, indices.labels, verbose=0)
    with pytest.raises(ValueError, match=given.format(r"validation_data\[1\]")):
        model.fit(RAW, np.eye(10)[:4], validation_data=(RAW, indices.labels), verbose=0)
    with pytest.raises(ValueError, match=given.format("y")):  # float indices: Keras's shape error, after
        model.fit(RAW, indices.labels.astype("float32"), verbose=0)  # which TensorFlow's next fit failed too
    wide = r"y has shape \(4, 11\) and \w+ has 10 classes: give one-hot rows of 10 values, or build or load"
    with pytest.raises(ValueError, match=wide):
        model.evaluate(RAW, np.eye(11)[:4], verbose=0)
    with pytest.raises(ValueError, match=r"^y holds NaN or infinite values \(row 2\): one-hot labels"):
        model.fit(RAW, np.where(np.arange(4)[:, None] == 2, np.nan, np.eye(10)[:4]), verbose=0)
    assert model.predict(data.batches(indices, 4), verbose=0).shape == (4, 10)  # no labels needed
    assert np.isfinite(model.evaluate(data.batches(indices, 4, one_hot=True), verbose=0)[0])
    from PIL import Image

    pictures = [Image.fromarray(image) for image in RAW]
    for given, said in ((pictures, "a list of 4 PIL images"), (pictures[0], "a PIL image")):
        with pytest.raises(ImageInputError, match=rf"not {said}: resize them to \(32, 32\) and stack"):
            model.predict(given, verbose=0)
    for extractor in (zoo.load(REAL, include_top=False), zoo.load(REAL, classes=5)):
        with pytest.raises(ImageInputError, match="NaN"):
            extractor.predict(np.full((1, *SHAPE), np.nan), verbose=0)
    np.testing.assert_allclose(model.predict(RAW, verbose=0), model.predict(RAW.astype("float32"), verbose=0))
    with pytest.raises(ValueError, match=r"\.check_inputs must be True or False; received 'False'"):
        model.check_inputs = "False"  # a string would read as true: the checks kept on, silently
    model.check_inputs = False  # the documented way out, for images that really are that dark
    assert model.predict(scaled, verbose=0).shape == (4, 10)


@pytest.mark.backend
def test_class_indices_outside_the_models_classes_are_refused_on_every_backend(toy_zoo):
    """JAX trained on them without an error (TensorFlow and PyTorch failed deep inside)."""
    from relu_ratio import data

    model = zoo.load(REAL, classes=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    labels, before = np.array([0, 1, 7, 2]), model.get_weights()
    split, good = data.Split(RAW, labels, data.sample().info), labels % 3
    uses = [
        ("y", lambda: model.fit(RAW, labels, verbose=0)),
        ("y", lambda: model.evaluate(RAW, labels[:, None].astype("float32"), verbose=0)),  # floats too
        (r"validation_data\[1\]", lambda: model.fit(RAW, good, validation_data=(RAW, labels), verbose=0)),
    ]  # fmt: skip
    said = r" holds class index 7, but .* has 3 classes \(indices 0 to 2\): build or load it with classes="
    for given, use in uses:
        with pytest.raises(ValueError, match=f"^{given}{said}"):
            use()
    said = r" are of 10 classes and \w+ has 3: build or load the model with classes="
    batches = data.batches(split, 2)
    for given, use in [("x", lambda: model.fit(batches, verbose=0)),
                       ("validation_data", lambda: model.fit(RAW, good, validation_data=batches, verbose=0))]:
        with pytest.raises(ValueError, match=f"^the batches given as {given}{said}"):
            use()
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # nothing trained
    with pytest.raises(ValueError, match=r"^y holds class index -1"):
        model.fit(RAW, labels - 1, verbose=0)
    with pytest.raises(ValueError, match=r"^y holds class index 7, but"):  # the backend's own tensor
        model.fit(RAW, keras.ops.convert_to_tensor(labels), verbose=0)
    for index in (np.nan, 2.5):  # JAX trained on NaN; every backend truncated 2.5 to 2
        with pytest.raises(ValueError, match=rf"^y holds class index {index}, which is not a whole number: "
                           r"\w+'s class indices are 0 to 2\.$"):  # fmt: skip
            model.fit(RAW, np.array([0, 1, index, 2], "float32"), verbose=0)
    assert np.isfinite(model.fit(RAW, good, verbose=0).history["loss"]).all()
    loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)  # Keras' own way to leave some out
    model.compile(optimizer="sgd", loss=loss)
    assert np.isfinite(model.fit(RAW, np.array([0, 1, -1, 2]), verbose=0).history["loss"]).all()
    with pytest.raises(ValueError, match=r"^y holds class index 7"):
        model.fit(RAW, labels, verbose=0)
    features = zoo.load(REAL, include_top=False, pooling="avg")  # 64 features, not classes: other losses
    features.compile(optimizer="sgd", loss="mse")
    assert np.isfinite(features.fit(RAW, np.full((4, 64), 99.0), verbose=0).history["loss"]).all()
    maps = zoo.load(REAL, include_top=False, pooling=None)  # (4, 8, 8, 64): not a classifier's labels
    maps.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert np.isfinite(maps.evaluate(RAW, np.eye(64)[np.zeros((4, 8, 8), int)], verbose=0))


@pytest.mark.backend
def test_labels_a_sparse_loss_cannot_take_are_refused_however_the_loss_is_given(toy_zoo):
    """One-hot rows under a sparse loss failed inside Keras (and a TensorFlow model failed its next fit
    too); class-index batches of 3 classes trained a 10-class model silently; the loss given as Keras'
    function was not recognised (JAX trained on class index 3 of 3 classes)."""
    from relu_ratio import data

    model, three = zoo.load(REAL), data.DatasetInfo("three", ("a", "b", "c"), (0.0,) * 3, (1.0,) * 3)
    split = data.Split(RAW, np.arange(4) % 3, three)
    before = model.get_weights()
    one_hot_rows = (r"^the model was compiled for class indices \(sparse categorical cross-entropy\), but y "
                    r"holds one-hot rows \(shape \(4, 10\)\): give y.argmax\(axis=1\), or compile with a "
                    r"categorical cross-entropy\.$")  # fmt: skip
    one_hot_batches = r"batches given as x hold one-hot labels: make them with data.batches\(..., one_hot=F"
    for loss in ("sparse_categorical_crossentropy", keras.losses.sparse_categorical_crossentropy):
        model.compile(optimizer="sgd", loss=loss)
        with pytest.raises(ValueError, match=one_hot_rows):
            model.fit(RAW, np.eye(10)[:4], verbose=0)
        with pytest.raises(ValueError, match=one_hot_batches):
            model.fit(data.batches(data.Split(RAW, np.arange(4), data.sample().info), 2, one_hot=True))
        with pytest.raises(ValueError, match=r"^the batches given as x are of 3 classes and \w+ has 10: "):
            model.fit(data.batches(split, 2), verbose=0)
        with pytest.raises(ValueError, match=r"^y holds class index 10, but"):
            model.fit(RAW, np.array([0, 1, 10, 2]), verbose=0)
        text = r"^y holds text \(dtype <U1\); labels are numbers: class indices 0 to 9 \(by each class's"
        with pytest.raises(ValueError, match=text):
            model.fit(RAW, np.array(list("abca")), verbose=0)
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # nothing trained
    model.compile(optimizer="sgd", loss=keras.losses.categorical_crossentropy)
    with pytest.raises(ValueError, match=r"compiled for one-hot labels .*, but y holds class indices"):
        model.fit(RAW, np.arange(4), verbose=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert np.isfinite(model.fit(RAW, np.arange(4), verbose=0).history["loss"]).all()  # and it trains after


@pytest.mark.backend
def test_zoo_models_check_images_in_every_method_that_takes_them(toy_zoo):
    model = zoo.load(REAL)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    scaled, labels = RAW / 255.0, np.arange(4)
    for use in (lambda: model.train_on_batch(scaled, labels), lambda: model.test_on_batch(x=scaled, y=labels),
                lambda: model.predict_on_batch(x=scaled),
                lambda: model.fit(RAW, labels, verbose=0, validation_data=(scaled, labels)),
                lambda: model.fit(RAW, labels, 4, 1, 0, None, 0.0, (scaled, labels))):  # fmt: skip
        with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\]"):
            use()
    assert np.isfinite(model.train_on_batch(RAW, labels)) and np.isfinite(model.test_on_batch(RAW, labels))
    assert model.fit(RAW, labels, verbose=0, validation_data=(RAW, labels)).history["val_loss"]


@pytest.mark.backend
def test_bad_images_are_refused_in_every_form_a_zoo_model_is_given_them(toy_zoo):
    model = zoo.load(REAL)
    scaled = RAW.astype("float32") / 255.0
    for form in (keras.ops.convert_to_tensor(scaled), (scaled,), (scaled, np.arange(4)), {"images": scaled}):
        with pytest.raises(ImageInputError, match=r"scaled to \[0, 1\]"):
            model.predict(form, verbose=0)
    nan = np.full((2, 32, 32, 3), np.nan, np.float32)
    with pytest.raises(ImageInputError, match="NaN"):
        model(keras.ops.convert_to_tensor(nan))
    np.testing.assert_allclose(
        model.predict((RAW,), verbose=0), model.predict(RAW, verbose=0), atol=1e-6
    )  # good images in a tuple still work


@pytest.mark.tensorflow
def test_a_tf_data_pipeline_is_checked_batch_by_batch_as_it_streams(toy_zoo):
    import tensorflow as tf

    model = zoo.load(REAL)
    raw = RAW.astype("float32")
    good = tf.data.Dataset.from_tensor_slices(raw).batch(2)
    np.testing.assert_allclose(model.predict(good, verbose=0), model.predict(raw, verbose=0), atol=1e-6)
    late = np.concatenate([raw[:2], raw[2:] / 255.0])  # only the second batch is bad
    with pytest.raises(ImageInputError, match=r"a batch of the dataset was refused: images look scaled"):
        model.predict(tf.data.Dataset.from_tensor_slices(late).batch(2), verbose=0)
    model.compile(loss="sparse_categorical_crossentropy")
    labelled = tf.data.Dataset.from_tensor_slices((late, np.arange(4))).batch(2)
    with pytest.raises(ImageInputError, match="a batch of the dataset was refused"):
        model.evaluate(labelled, verbose=0)
    drawn = []

    def batches():  # the second is scaled: refused while the dataset streams, not read whole first
        for number in range(2_000):
            drawn.append(number)
            yield late[2:] if number == 1 else raw[:2]

    spec = tf.TensorSpec((None, *raw.shape[1:]), tf.float32)
    with pytest.raises(ImageInputError, match="a batch of the dataset was refused"):
        model.predict(tf.data.Dataset.from_generator(batches, output_signature=spec), verbose=0)
    assert len(drawn) < 200, len(drawn)  # tf.data checks in parallel: a few batches per thread drawn ahead


class _Batches(keras.utils.PyDataset):
    """Two batches of 2: the first of ``images`` and ``labels``, then the second (labels if given); counts
    the epoch hooks Keras calls (``hooks``)."""

    def __init__(self, images, labels=None, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, labels
        self.hooks = []

    def on_epoch_begin(self):
        self.hooks.append("begin")

    def on_epoch_end(self):
        self.hooks.append("end")

    def __len__(self):
        return 2

    def __getitem__(self, index):
        part = slice(2 * index, 2 * index + 2)
        return self.images[part] if self.labels is None else (self.images[part], self.labels[part])


@pytest.mark.backend
def test_a_py_dataset_or_a_generator_is_checked_batch_by_batch_as_it_streams(toy_zoo):
    model = zoo.load(REAL)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    raw, labels = RAW.astype("float32"), np.arange(4)
    late = np.concatenate([raw[:2], raw[2:] / 255.0])  # only the second batch is scaled (gave class 4)
    expected = model.predict(raw, verbose=0)
    for good in (_Batches(raw), _Batches(raw, workers=2), ((raw[i : i + 2],) for i in (0, 2))):
        np.testing.assert_allclose(model.predict(good, verbose=0), expected, atol=1e-6)
    refused = r"batch [01] of the dataset was refused: images look scaled to \[0, 1\]"
    with pytest.raises(ImageInputError, match=refused):  # the first loop of a model (JAX: AttributeError)
        zoo.load(REAL).predict(((late[i : i + 2],) for i in (0, 2)), verbose=0)
    uses = (  # predict, evaluate, fit and fit's validation_data, each given a PyDataset and a generator
        lambda: model.predict(_Batches(late), verbose=0),
        lambda: model.predict(_Batches(raw / 255.0), verbose=0),  # the first batch
        lambda: model.predict(((late[i : i + 2],) for i in (0, 2)), verbose=0),
        lambda: model.evaluate(_Batches(late, labels), verbose=0),
        lambda: model.evaluate(((late[i : i + 2], labels[:2]) for i in (0, 2)), verbose=0),
        lambda: model.fit(_Batches(raw / 255.0, labels), verbose=0),
        lambda: model.fit(_Batches(late, labels), verbose=0),
        lambda: model.fit(((late[i : i + 2], labels[:2]) for i in (0, 2)), verbose=0),
        lambda: model.fit(raw, labels, verbose=0, validation_data=_Batches(late, labels)),
    )
    for number, use in enumerate(uses):
        with pytest.raises(ImageInputError, match=refused):
            use()
        if number == 4:  # the weights are the model's (on JAX, a loop stopped mid-way left them detached)
            np.testing.assert_allclose(model.predict(raw, verbose=0), expected, atol=1e-6)
    assert np.isfinite(model.evaluate(_Batches(raw, labels), verbose=0))
    history = model.fit(_Batches(raw, labels), verbose=0, validation_data=_Batches(raw, labels)).history
    assert np.isfinite(history["val_loss"]).all()
    hooked = _Batches(raw, labels)
    model.fit(hooked, epochs=2, verbose=0)  # the checked dataset calls the dataset's own epoch hooks
    assert hooked.hooks.count("begin") >= 2 and hooked.hooks.count("end") >= 2, hooked.hooks
    lists = ([raw[i : i + 2], labels[i : i + 2]] for i in (0, 2))  # a list batch: Keras takes it as a tuple
    assert np.isfinite(model.evaluate(lists, verbose=0))
    with pytest.raises(ImageInputError, match=refused):
        model.evaluate(([late[i : i + 2], labels[:2]] for i in (0, 2)), verbose=0)
    model.train_on_batch(raw, labels)  # on JAX it leaves a state of its own behind, not this loop's
    model.set_weights(weights := [w * 0.5 for w in model.get_weights()])
    with pytest.raises(ImageInputError, match=refused):
        model.predict(_Batches(raw / 255.0), verbose=0)  # refused at its first batch: that state stays unused
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.backend
def test_a_torch_data_loader_is_checked_batch_by_batch_as_it_streams(toy_zoo):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    model = zoo.load(REAL)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    raw, labels = RAW.astype("float32"), np.arange(4)
    late = np.concatenate([raw[:2], raw[2:] / 255.0])  # only the second batch is scaled

    def loader(images, with_labels=False):
        tensors = [torch.from_numpy(images)] + ([torch.from_numpy(labels)] if with_labels else [])
        return DataLoader(TensorDataset(*tensors), batch_size=2)

    expected = model.predict(raw, verbose=0)
    np.testing.assert_allclose(model.predict(loader(raw), verbose=0), expected, atol=1e-6)
    assert np.isfinite(model.evaluate(loader(raw, True), verbose=0))
    fitted = model.fit(loader(raw, True), validation_data=loader(raw, True), shuffle=False, verbose=0)
    assert np.isfinite(fitted.history["val_loss"]).all()
    refused = r"batch 1 of the dataset was refused: images look scaled to \[0, 1\]"
    for use in (
        lambda: model.predict(loader(late), verbose=0),
        lambda: model.evaluate(loader(late, True), verbose=0),
        lambda: model.fit(loader(late, True), verbose=0, shuffle=False),
        lambda: model.fit(raw, labels, verbose=0, validation_data=loader(late, True)),
    ):
        with pytest.raises(ImageInputError, match=refused):
            use()
    collated = []

    def collate(items):
        collated.append(len(items))
        return torch.utils.data.default_collate(items)

    # the loader's own sampler and collation make the batches (here in reverse order)
    own = DataLoader(TensorDataset(torch.from_numpy(raw)), 2, sampler=[3, 2, 1, 0], collate_fn=collate)
    np.testing.assert_allclose(model.predict(own, verbose=0), model.predict(raw[::-1], verbose=0), atol=1e-6)
    assert collated and set(collated) == {2}


def test_an_empty_batch_gives_an_empty_result(toy_zoo):
    out = zoo.load(REAL).predict(np.zeros((0, 32, 32, 3), np.uint8), verbose=0)
    assert out.shape == (0, 10)


@pytest.mark.backend
def test_a_checked_zoo_model_saves_loads_and_fine_tunes(toy_zoo, tmp_path):
    model = zoo.load(REAL)
    expected = model.predict(RAW, verbose=0)
    model.save(tmp_path / "m.keras")
    plain = keras.models.load_model(tmp_path / "m.keras")  # a stock functional model: no custom objects
    assert type(plain) is keras.Model or type(plain).__name__ == "Functional"
    assert not isinstance(plain.input, list)  # one input, as built: its export serves images, not [images]
    loaded = CheckedModel.from_model(plain)  # the input check back
    np.testing.assert_allclose(loaded.predict(RAW, verbose=0), expected, atol=1e-6)
    with pytest.raises(ImageInputError):
        loaded.predict(RAW / 255.0, verbose=0)
    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    history = loaded.fit(RAW, np.arange(4), batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(loaded.predict(RAW, verbose=0), expected)


@pytest.mark.backend
def test_a_zoo_model_inside_another_says_how_to_take_what_its_layers_hand_it(toy_zoo):
    base = zoo.load(REAL, include_top=False)
    images = keras.Input((48, 48, 3))
    resized = keras.layers.Resizing(32, 32, interpolation="bicubic")(images)  # overshoots [0, 255] at edges
    model = keras.Model(images, keras.layers.Dense(3)(base(resized)))
    edges = np.tile(np.kron([[0, 255], [255, 0]], np.ones((6, 6))), (4, 4))[:48, :48]
    x = np.repeat(np.stack([edges] * 4)[..., None], 3, axis=-1).astype("uint8")
    assert keras.ops.convert_to_numpy(model.layers[1](x.astype("float32"))).max() > 255  # what the base gets
    with pytest.raises(ImageInputError, match=rf"{base.name} runs inside another model: .* set "
                       rf"{base.name}\.check_inputs = False\."):  # fmt: skip
        model(x)
    sequential = keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.Dense(3)])
    with pytest.raises(ImageInputError, match="scaled to"):  # first in line, it is handed the images: checked
        sequential(x[:, :32, :32] / 255.0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    if keras.backend.backend() == "jax":  # a stateless step (compiled ones are traced): raising would leave
        model.fit(x, np.arange(4) % 3, verbose=0)  # the model's variables purged ('NoneType' not callable)
        model.evaluate(x, np.arange(4) % 3, verbose=0)  # so in each of the trainer's stateless steps
        model.predict(x, verbose=0)
    else:
        with pytest.raises(ImageInputError, match=rf"{base.name} runs inside another model"):
            model.fit(x, np.arange(4) % 3, verbose=0)
    if keras.backend.backend() == "torch":  # its predict runs the layers eagerly: the check sees the values
        with pytest.raises(ImageInputError, match=rf"{base.name} runs inside another model"):
            model.predict(x, verbose=0)
    base.check_inputs = False
    assert model.predict(x, verbose=0).shape == (4, 3) and model(x).shape == (4, 3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, np.arange(4) % 3, verbose=0)


def test_float32_interpolations_overshoot_is_not_refused_and_a_real_one_is_named_exactly():
    rotated = np.full((2, 32, 32, 3), 128.0, dtype="float32")  # what a RandomRotation of 0-255 images gave
    rotated[0, 0, 0] = 255.00003
    rotated[1, 0, 0] = -1.5e-5
    assert check_images(rotated, (32, 32, 3)) is not None
    rotated[0, 0, 0] = 255.02
    with pytest.raises(ImageInputError, match=r"span \[-1.5e-05, 255.02\]; expected raw images.*255\]\.$"):
        check_images(rotated, (32, 32, 3))
    half = rotated.astype("float16")  # under mixed_float16 the layers interpolate in float16 (0.125 a step)
    half[0, 0, 0], half[1, 0, 0] = 255.125, -0.0625
    assert check_images(half, (32, 32, 3)) is not None
    rotated[0, 0, 0], rotated[1, 0, 0] = 268.0, -12.0  # a bicubic overshoot: refused, not "standardised"
    with pytest.raises(ImageInputError, match=r"span \[-12, 268\]; expected raw images.*255\]\.$"):
        check_images(rotated, (32, 32, 3))


def _own_loss(y_true, y_pred):
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


def test_a_checked_zoo_model_with_a_loss_of_ones_own_is_checkpointed(toy_zoo, tmp_path):
    model = zoo.load(REAL)  # saving rebuilt the compile state from its config: the loss was not found by name
    model.compile(optimizer="sgd", loss=_own_loss)
    checkpoint = keras.callbacks.ModelCheckpoint(tmp_path / "c.keras")
    model.fit(RAW, np.arange(4), batch_size=4, epochs=1, verbose=0, callbacks=[checkpoint])
    loaded = keras.models.load_model(tmp_path / "c.keras", custom_objects={"_own_loss": _own_loss})
    assert loaded.loss is _own_loss
    np.testing.assert_allclose(loaded.predict(RAW, verbose=0), model.predict(RAW, verbose=0), atol=1e-6)


def test_a_model_that_nests_a_zoo_model_loads_after_import_relu_ratio(toy_zoo, tmp_path):
    """So does a fused model (its ``Affine`` layers are the package's own Keras class)."""
    from relu_ratio import models
    from relu_ratio.fuse import fuse

    base = zoo.load(REAL, include_top=False)
    images = keras.Input((32, 32, 3))
    keras.Model(images, keras.layers.Dense(3)(base(images))).save(tmp_path / "tuned.keras")
    fused = fuse(models.build("resnet8_11"))
    assert any(type(layer).__name__ == "Affine" for layer in fused.layers)
    fused.save(tmp_path / "fused.keras")
    paths = [os.fspath(tmp_path / "tuned.keras"), os.fspath(tmp_path / "fused.keras")]
    load = (f"import keras, relu_ratio; tuned, fused = (keras.saving.load_model(p) for p in {paths!r}); "
            "print(tuned.layers[1].name, 'Affine' in {type(layer).__name__ for layer in fused.layers})")
    done = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == [base.name, "True"], done.stderr[-2000:]


@pytest.mark.tensorflow
def test_a_checked_zoo_model_exports_a_saved_model(toy_zoo, tmp_path):
    import tensorflow as tf

    model = zoo.load(REAL)
    model.export(tmp_path / "sm", format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(os.fspath(tmp_path / "sm"))
    np.testing.assert_allclose(served.serve(RAW.astype("float32")), model.predict(RAW, verbose=0), atol=1e-5)
    model.save(tmp_path / "m.keras")  # the README's export: the .keras file loaded back, then exported
    keras.saving.load_model(tmp_path / "m.keras").export(tmp_path / "saved", verbose=False)
    served = tf.saved_model.load(os.fspath(tmp_path / "saved"))  # its serve took a list of one image batch
    np.testing.assert_allclose(served.serve(RAW.astype("float32")), model.predict(RAW, verbose=0), atol=1e-5)


@pytest.mark.tensorflow
def test_autograph_converts_the_input_check_so_an_export_prints_no_warning(capfd):
    import tensorflow as tf

    from relu_ratio import inputs

    for check in (CheckedModel._check, inputs._checked_input):
        tf.autograph.to_graph(check)  # a `:=` in it raised ConversionError (AutoGraph cannot convert it)
    inputs = keras.Input(SHAPE)
    model = CheckedModel(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    tf.function(model).get_concrete_function(tf.TensorSpec((None, *SHAPE)))  # what an export traces
    out, err = capfd.readouterr()
    assert "AutoGraph could not transform" not in out + err and "report this to the TensorFlow" not in err

