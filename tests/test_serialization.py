"""Every family and pattern survives .keras saving and SavedModel export with identical outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import SMALL_NAMES

from relu_ratio import models

CASES = [f"{name}_{pattern}" for name in SMALL_NAMES.values() for pattern in ("11", "type1")]
CASES = [c for c in CASES if not c.startswith("plain")] + ["plain8_21", "postresnet8_21"]


def _trained_like(name):
    """A model whose BatchNorm statistics are not the initial ones, so saving them matters."""
    model = models.build(name)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.default_rng(1).normal(size=layer.moving_mean.shape))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0))
    return model


@pytest.mark.backend
@pytest.mark.parametrize("name", CASES)
def test_keras_file_round_trip(name, tmp_path, images):
    model = _trained_like(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    assert [type(layer) for layer in loaded._flatten_layers()] == [
        type(layer) for layer in model._flatten_layers()
    ]


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", ["preact11_32", "dfnmr14_type1", "plain8_21", "postresnet8_21"])
def test_saved_model_export(name, tmp_path, images):
    import tensorflow as tf

    model = _trained_like(name)
    model.export(tmp_path / "sm", format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(served.serve(tf.constant(images)), model.predict(images, verbose=0), atol=1e-5)
