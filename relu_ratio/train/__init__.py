"""Train any relu_ratio model with ``model.fit``: the paper's recipe, a fast recipe, and a CLI that resumes.

Recipes (:data:`RECIPES`, :mod:`relu_ratio.train.recipes`):

* ``paper`` (default; fusenet's ``train_model.py``, which the paper follows): SGD, Nesterov momentum 0.9,
  lr 0.1, weight decay 1e-4, batch 64, 400 epochs, lr x0.1 at 1/2, 3/4 and 7/8 of training.
* ``fast`` (what the zoo is trained with on the CPU): same optimizer, batch 128, weight decay 5e-4, one
  warm-up epoch into a cosine decay to zero, no label smoothing. Epochs are yours to set.

From Python::

    from relu_ratio import train
    result = train.run(train.TrainConfig(model="resnet20_21", dataset="../shared/data", epochs=2))

or use the parts in your own script (:func:`compile_for`, :func:`relu_ratio.data.batches`). From the
command line::

    python -m relu_ratio.train --model preact164_32 --dataset ../shared/data --recipe fast \
        --epochs 30 --out runs/p164

At its start a run prints its device (a CPU with its class: AMX, AVX512-BF16, AVX-512, AVX2...), backend
and precision, and, where another Keras backend trained faster on a CPU of that class
(:mod:`~relu_ratio.train.speeds`, docs/BENCHMARKS.md), one line with that backend, the measured ratio and
the command.

The run directory gets ``config.json`` (the full config and the command), ``metrics.csv`` (one row per epoch),
TensorBoard logs (with TensorFlow installed), ``best.weights.h5`` / ``model.weights.h5`` (best by validation
accuracy, the test split's or ``--holdout``'s / final), a ``backup/`` for resuming, and ``result.json`` (final
validation accuracy, time, device). Killed at any point, the same command resumes from the last backup (every
epoch and every ``--backup-every`` steps; the interrupted epoch goes on from the backup, training only its
batches the backup had not seen, or restarts from its beginning with ``--ema``) and ends after the same number
of epochs; a kill while a backup is being written falls back to the previous one. A NaN or infinite loss or
weights stop the run with :class:`TrainingDiverged` (the CLI exits 1) before anything non-finite is saved.

The package's modules, one seam each: :mod:`~relu_ratio.train.config` (:class:`TrainConfig`),
:mod:`~relu_ratio.train.recipes` (recipes, schedule, optimizer), :mod:`~relu_ratio.train.metrics` (the
top-5 accuracy, ties ranked as the zoo ranks them), :mod:`~relu_ratio.train.callbacks`
(backups, divergence guard, clock), :mod:`~relu_ratio.train.fit` (:func:`run`),
:mod:`~relu_ratio.train.record` (:class:`RunRecord`, what a run folder holds),
:mod:`~relu_ratio.train.devices` (what a run trains on, the CPU's class), :mod:`~relu_ratio.train.speeds`
(measured speed per CPU class and backend), :mod:`~relu_ratio.train.series` (a series of runs
in order: skip finished ones, resume, record failures),
:mod:`~relu_ratio.train.kernels` (training-time layers on faster kernels: the fused BatchNorm of
:mod:`~relu_ratio.train.fused_norm`, PyTorch's copy-free convolution of
:mod:`~relu_ratio.train.torch_conv`) and
:mod:`~relu_ratio.train.cli`.
"""

from relu_ratio.train.callbacks import TrainingDiverged
from relu_ratio.train.cli import main, parser
from relu_ratio.train.config import TrainConfig, command_for
from relu_ratio.train.fit import (
    check_batch_size,
    device,
    precision_policy,
    run,
    save_model_weights,
    with_recorded_recipe,
)
from relu_ratio.train.kernels import with_fast_kernels
from relu_ratio.train.recipes import HOLDOUT_SEED, RECIPES, compile_for, learning_rate
from relu_ratio.train.record import RunRecord, metric_column, parse_run_folder_name, run_folder_name

__all__ = [
    "HOLDOUT_SEED", "RECIPES", "RunRecord", "TrainConfig", "TrainingDiverged", "check_batch_size",
    "command_for", "compile_for", "device", "learning_rate", "main", "metric_column", "parse_run_folder_name",
    "parser", "precision_policy", "run", "run_folder_name", "save_model_weights", "with_fast_kernels",
    "with_recorded_recipe",
]  # fmt: skip
