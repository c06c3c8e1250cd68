"""The examples in the docstrings of modules whose examples run offline in seconds are run as written."""

from __future__ import annotations

import doctest

import pytest

from relu_ratio import data, demo, files, flags, progress, validators
from relu_ratio.experiments import results, specs
from relu_ratio.train import callbacks, kernels, metrics, record, speeds, torch_conv
from relu_ratio.zoo import card, registry

MODULES = [data, demo, files, flags, progress, validators, results, specs, callbacks, kernels, metrics,
           record, speeds, torch_conv, card, registry]  # fmt: skip


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_the_examples_run_as_written(module):
    outcome = doctest.testmod(module)
    assert outcome.failed == 0 and outcome.attempted > 0
