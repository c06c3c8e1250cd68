"""The paper's depths built in full: published parameter counts and the ReLU counts measured from the built
model. What they check is the layer graph, which Keras builds the same way on every backend, so they run
once, in the TensorFlow pass (`test_models.py` builds small networks of every family on each backend)."""

from __future__ import annotations

import pytest

import relu_ratio
from relu_ratio import models


def test_preact164_has_the_published_parameter_count():
    model = models.preact_bottleneck(depth=164, classes=10)
    assert relu_ratio.describe(model).params == 1_703_258


@pytest.mark.parametrize("name", ["resnet110_11", "dfnmr110_11"])
def test_110_layer_nets_are_within_2_percent_of_published_1_7m(name):
    params = relu_ratio.describe(models.build(name)).params
    assert abs(params - 1.7e6) / 1.7e6 < 0.02, params


@pytest.mark.parametrize(
    ("name", "convs", "relus"),
    [
        ("preact164_11", 163, 163),  # 54 blocks x 3 + final BN-ReLU
        ("preact164_32", 163, 109),  # Type 1: first ReLU of every block removed
        ("preact164_31", 163, 55),
        ("resnet110_11", 109, 109),  # 54 blocks x 2 + final
        ("resnet110_21", 109, 55),
        ("postresnet110_11", 109, 109),  # stem + 54 x 2
        ("postresnet110_erase_last", 109, 55),
        ("dfnmr110_11", 109, 108),  # stem + 26 x 4 + last block: 2 inner + 1 merged
        ("dfnmr110_43", 109, 82),  # Type 1: one post-sum ReLU fewer in 26 blocks
        ("dfnmr110_type2", 109, 81),  # Type 2: one inner ReLU fewer in all 27 blocks
        ("plain38_11", 37, 37),
        ("plain38_21", 37, 19),  # stem + every 2nd of 36 layers
        ("plain62_21", 61, 31),
        ("plain84_21", 83, 42),
    ],
)
def test_relu_count_in_the_built_model_matches_the_pattern(name, convs, relus):
    info = relu_ratio.describe(models.build(name))
    assert (info.convs, info.relus) == (convs, relus)
