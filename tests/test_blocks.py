"""Blocks are stock Keras layers: summaries show every ReLU, .keras files load without relu_ratio, and the
pure counter agrees with what describe() reads off the built layers."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import SMALL_NAMES

import relu_ratio
from relu_ratio import blocks, models, patterns, zoo

PATTERNS = ["paired", *(p for p in patterns.PRESETS if p != "paired"), "2:1", "3:2", "3:1", "4:3", "4:1"]


def _family_patterns():
    for family, name in SMALL_NAMES.items():
        depth = models.parse_name(f"{name}_11")[1]
        for pattern in PATTERNS:
            try:
                models.counts(family, depth, pattern)
            except ValueError:
                continue  # a preset or ratio this block type does not have
            yield family, depth, pattern


@pytest.mark.parametrize(("family", "depth", "pattern"), list(_family_patterns()))
def test_counts_without_building_equal_describe(family, depth, pattern):
    counted = models.counts(family, depth, pattern)
    measured = relu_ratio.describe(models.build_family(family, depth, pattern))
    assert (counted.convs, counted.projections, counted.relus) == (
        measured.convs, measured.projections, measured.relus
    )  # fmt: skip


def test_counts_of_the_flagship():
    assert models.counts("preact", 164, "3:2") == models.Counts(convs=163, projections=3, relus=109)
    assert models.counts("preact", 164, "paired").relus == 163


@pytest.mark.parametrize("name", [f"{n}_11" for n in SMALL_NAMES.values()] + ["dfnmr14_type1", "preact11_32"])
def test_built_models_hold_stock_keras_layers_only(name):
    model = models.build(name, normalization=((120.0,) * 3, (60.0,) * 3))
    modules = {type(layer).__module__ for layer in model.layers}
    foreign = {module for module in modules if not module.startswith("keras.")}
    assert not foreign
    assert all(not layer._flatten_layers(include_self=False, recursive=False) for layer in model.layers)


def test_summary_shows_every_relu_by_its_stable_name():
    model = models.build("preact11_32")
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=200)
    text = "\n".join(lines)
    relus = [layer.name for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert len(relus) == relu_ratio.describe(model).relus == 7  # 3 blocks x 2 (Type 1) + the final ReLU
    assert all(f"{name} (ReLU)" in text for name in relus)
    assert "stage1_block1_relu_preact2" in relus and "stage1_block1_relu_preact1" not in text


KERAS_ONLY = """
import sys

class BlockRelu:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "relu_ratio":
            raise ImportError("relu_ratio is not installed here")

sys.meta_path.insert(0, BlockRelu())
try:
    import relu_ratio  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("relu_ratio is importable: the test would prove nothing")
import keras
import numpy as np

model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
print(type(model).__name__)
"""


@pytest.mark.slow
def test_zoo_model_saved_as_keras_loads_where_relu_ratio_is_not_installed(toy_zoo, tmp_path, images):
    model = zoo.load("resnet8_21")
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run(
        [sys.executable, "-c", KERAS_ONLY, str(tmp_path / "model.keras"), str(tmp_path / "images.npy"),
         str(tmp_path / "out.npy")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "Functional"
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(images, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    ("mask", "kept"),
    [("011", ["b_relu_preact2", "b_relu_preact3"]), ([0, 1, 1], ["b_relu_preact2", "b_relu_preact3"]),
     (np.array([True, False, True]), ["b_relu_preact1", "b_relu_preact3"]), (None, ["b_relu_preact1",
     "b_relu_preact2", "b_relu_preact3"])],
)  # fmt: skip
def test_a_relu_mask_as_the_package_writes_it_builds_the_block_it_says(mask, kept):
    x = keras.Input((8, 8, 64))
    y = blocks.preact_block(x, 16, np.int64(2), relu_mask=mask, name="b", bottleneck=True)
    assert [layer.name for layer in keras.Model(x, y).layers if isinstance(layer, keras.layers.ReLU)] == kept


@pytest.mark.parametrize(
    ("block", "kwargs", "message"),
    [
        ("preact_block", {"relu_mask": "3:2"}, "relu_mask must hold 2 entries, True/False or 0/1"),
        ("preact_block", {"relu_mask": [0.5, 1]}, "received [0.5, 1]"),
        ("preact_block", {"relu_mask": 5}, "one per ReLU slot of a pre-activation building block"),
        ("postact_block", {"relu_mask": "type1"}, "received 'type1'"),
        ("plain_layer", {"relu_mask": ["0", "x"]}, "relu_mask must hold 1 entry"),
        ("plain_layer", {"relu_mask": np.array(1)}, "relu_mask must hold 1 entry"),  # was a TypeError
        ("preact_block", {"strides": True}, "strides must be 1 or 2; received True"),
        ("preact_block", {"filters": "16"}, "filters must be an integer >= 1; received '16'"),
        ("postact_block", {"weight_decay": -1}, "weight_decay must be a finite number >= 0; received -1"),
        ("preact_block", {"bottleneck": "no"}, "bottleneck must be True or False; received 'no'"),
        ("merge_and_run", {}, "merge_and_run is called on [x1, x2], its two lines"),
    ],
)
def test_a_block_refuses_arguments_that_do_not_fit_naming_them(block, kwargs, message):
    x = keras.Input((8, 8, 16))
    with pytest.raises(ValueError) as raised:
        getattr(blocks, block)(x, **{"filters": 16, **kwargs})
    assert message in str(raised.value)
