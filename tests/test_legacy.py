"""Weights saved in the first (subclassed-block) layout load into today's models with unchanged outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from relu_ratio import data, legacy, models, zoo

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
CASES = json.loads((FIXTURES / "cases.json").read_text())


@pytest.mark.backend
@pytest.mark.parametrize("name", sorted(CASES))
def test_old_weights_load_through_build(name):
    old = FIXTURES / f"{name}.weights.h5"
    assert legacy.is_legacy(old)
    model = models.build(name, weights=old, **CASES[name])
    outputs = np.asarray(model(np.load(FIXTURES / "inputs.npy"), training=False))
    np.testing.assert_allclose(outputs, np.load(FIXTURES / f"{name}.npy"), atol=1e-5, rtol=0)


def test_convert_writes_the_new_layout(tmp_path):
    name = "preact11_32"
    legacy.convert(FIXTURES / f"{name}.weights.h5", tmp_path / "new.weights.h5", name, **CASES[name])
    assert not legacy.is_legacy(tmp_path / "new.weights.h5")
    model = models.build(name, **CASES[name])
    model.load_weights(tmp_path / "new.weights.h5")  # plain Keras loading
    outputs = np.asarray(model(np.load(FIXTURES / "inputs.npy"), training=False))
    np.testing.assert_allclose(outputs, np.load(FIXTURES / f"{name}.npy"), atol=1e-5, rtol=0)


def test_old_weights_of_another_architecture_are_refused():
    with pytest.raises(ValueError, match=r"cannot be loaded into resnet8_21.*shapes"):
        models.build("resnet8_21", weights=FIXTURES / "preact11_32.weights.h5")


@pytest.mark.parametrize("entry", ["resnet8_11", "resnet8_21"])
@pytest.mark.slow
def test_converted_zoo_entries_give_the_old_outputs(
    entry, shared_data, toy_zoo, decoded_data_home, monkeypatch
):
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    images = data.load(shared_data, "test").images[:500]
    probabilities = zoo.load(entry).predict(images, verbose=0)
    expected = np.load(FIXTURES / f"zoo_{entry}_test500.npy")
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
