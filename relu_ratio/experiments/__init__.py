"""Reproduce the paper's experiments with one command each, at full scale or at a small budget.

Experiments (:data:`EXPERIMENTS`): ``table1`` (plain 38/62/84, 1:1 vs 2:1), ``table2`` (pre-activation
building block 62/110/164, 1:1 vs 2:1), ``figs7_8`` (bottleneck 110/164, paired vs Type 1/2/3), ``table3``
(DFN-MR 110, paired vs Type 1/2) and ``erase_relu`` (the last ReLU of every module erased). Budgets
(:data:`BUDGETS`): ``paper`` (400 epochs, 5 seeds), ``fast`` (30 epochs, 1 seed), ``tiny`` (a smoke run:
``table2`` takes about 9 minutes on a 2-core CPU); any setting can be overridden.

Example::

    python -m relu_ratio.experiments run table2 --budget tiny          # CSV, markdown table and figure
    python -m relu_ratio.experiments run table2 --budget paper --workers 4 --gpus 0,1,2,3

From Python:
    >>> from relu_ratio import experiments
    >>> sorted(experiments.EXPERIMENTS)
    ['erase_relu', 'figs7_8', 'table1', 'table2', 'table3']
"""

from relu_ratio.experiments.report import Report, collect, render_markdown
from relu_ratio.experiments.runner import Run, default_dataset, parse_shard, plan, resolve_budget, run
from relu_ratio.experiments.specs import (
    BUDGETS,
    EXPERIMENTS,
    Budget,
    Experiment,
    Published,
    Variant,
    budget,
    experiment,
)

__all__ = [
    "BUDGETS",
    "EXPERIMENTS",
    "Budget",
    "Experiment",
    "Published",
    "Report",
    "Run",
    "Variant",
    "budget",
    "collect",
    "default_dataset",
    "experiment",
    "parse_shard",
    "plan",
    "render_markdown",
    "resolve_budget",
    "run",
]
