"""Search where the ReLUs go: a keras-tuner search over per-stage or per-block ReLU masks.

The paper's future work is to "assemble adaptively the convolutional layer and ReLU". This module
makes the ReLU placement a hyperparameter: :class:`ReLUHyperModel` declares one ``hp.Choice`` per stage
(``granularity="stage"``) or per block position (``granularity="block"``) over the masks a block kind
allows, builds the network with :func:`relu_ratio.models.build_family` and compiles it with the recipe's
optimizer (:func:`relu_ratio.train.compile_for`); the objective is ``val_accuracy``.

Search space (slots and removal orders come from :mod:`relu_ratio.patterns`):

* residual families (``postresnet``, ``resnet``, ``preact``, ``dfnmr``): every 0/1 mask of the block's
  ReLU slots with at least ``min_relus_per_block`` ones (default 1: "at least one ReLU per block"), e.g.
  3 masks for a building block (``01``, ``10``, ``11``), 7 for the bottleneck, 15 for merge-and-run;
* ``plain``: a plain "block" is a single conv-BN(-ReLU) layer, so a per-layer mask with at least one
  ReLU would be all ones. Per stage, the choice is a *ratio* laid periodically over the stage's layers
  (default ``"1:1"``, ``"2:1"``, ``"3:2"``; ``min_relus_per_block`` then bounds ``M`` of each period). With
  ``granularity="block"`` every layer gets a ``"1"``/``"0"`` choice, which needs
  ``min_relus_per_block=0`` and is best bounded with ``min_ratio``/``max_ratio``;
* ``choices=`` replaces the candidate list (masks, ratios or presets, checked against the block kind).

``min_ratio``/``max_ratio`` bound the whole network's conv:ReLU ratio as :func:`relu_ratio.describe`
measures it (main-path convolutions including the stem : every ReLU layer), given as ``"3:2"`` or a
number. :func:`search`'s tuner draws only configurations within them (:meth:`ReLUHyperModel.within_bounds`
counts a configuration's ReLUs without building it), so ``max_trials`` counts trials that train; a
configuration that Bayesian optimisation models outside them, or any built outside :func:`search`, is marked
failed the keras-tuner way (``keras_tuner.errors.FailedTrialError``, raised before training) and the search
goes on. The constructor refuses bounds that no configuration meets, and :meth:`ReLUHyperModel.space_size`
counts how many do. The hyperparameters map back to a ``relu_pattern`` with :func:`relu_pattern_from`.

:func:`search` runs a search end to end and writes ``best.json`` (atomically) into the tuner's project
directory. The paper has no validation split (it reports test accuracy), so by default
(``validation="holdout"``) a fixed, seeded slice of the *training* set is held out for validation and
the rest trains; ``validation="test"`` validates on (a subset of) the test split instead, which selects
the pattern on test data.

With its ``seed`` (the CLI's ``--seed``, default 0) a trial trains alike whether it is a process's first or
a later one (:meth:`ReLUHyperModel.fit` serves each epoch's draws of the shared training batches), so a
search interrupted and resumed scores every pattern as an uninterrupted one. Hyperband's continued trial
goes on from the checkpoint keras-tuner kept, its optimizer state (momentum) included, and its learning-rate
schedule goes on from ``initial_epoch`` epochs of steps, not warming up again. Ctrl-C stops the search
(the CLI exits 130, saying that the same command resumes it: keras-tuner keeps the finished trials and runs
the interrupted one again).

Example::

    from relu_ratio import tune
    result = tune.search(tune.SearchConfig(family="resnet", depth=8, dataset="../shared/data", tuner="random",
                                           max_trials=6, epochs=1, train_subset=4000, val_subset=1000,
                                           directory="runs/tune"))
    model = result.build_model()                 # the best pattern, untrained, same builder kwargs
    models.build_family("resnet", 8, result.relu_pattern, classes=10)   # or by hand

The package's modules: :mod:`~relu_ratio.tune.space` (the search space, :class:`ReLUHyperModel`),
:mod:`~relu_ratio.tune.search` (:class:`SearchConfig`, :func:`search`, the data and the results) and
:mod:`~relu_ratio.tune.cli` (flags generated from :class:`SearchConfig`).

Command line (``python -m relu_ratio.tune --help``)::

    python -m relu_ratio.tune --family resnet --depth 8 --tuner random --max-trials 3 --epochs 1 \\
        --train-subset 512 --val-subset 256 --dataset ../shared/data --out runs/tune

It prints the trial table, the trials numbered from 1 as keras-tuner's screen numbers them while the search
runs ("Search: Running Trial #1"; trial ``N`` is keras-tuner's trial id ``N - 1``, the project's
``trial_<id>`` folder, :func:`trial_number`), and the best pattern. ``best.json`` and a worker's last line
number the trials alike (``trial``, ``trials_run_here``), beside keras-tuner's ``trial_id``.
``--max-trials`` is at most :data:`~relu_ratio.tune.search.MAX_TRIALS` (100,000); ``--hyperband-factor``
goes with ``--tuner hyperband`` only (default 3 there); a ``--batch-size`` larger than the training images
is refused, as by ``train``.

Distributed search (keras-tuner's chief/worker mode): start the *same command* in every process, with
``KERASTUNER_TUNER_ID`` (``chief`` for the one process that runs the oracle, ``tuner0``, ``tuner1``...
for the workers), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief serves,
gRPC) set in the environment::

    export KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000
    KERASTUNER_TUNER_ID=chief  python -m relu_ratio.tune --family resnet --depth 8 --out runs/tune &
    KERASTUNER_TUNER_ID=tuner0 python -m relu_ratio.tune --family resnet --depth 8 --out runs/tune &
    KERASTUNER_TUNER_ID=tuner1 python -m relu_ratio.tune --family resnet --depth 8 --out runs/tune

The chief trains nothing: it hands out trials and blocks until the search is over (every worker has
been told to stop and no trial is running; keras-tuner re-checks that every 20 s once the first worker is
done), then prints the trial table and writes ``best.json``. Workers train, report to the chief and exit
when told to stop; they print which trials they ran. ``--out`` must be one directory shared by all
processes (Hyperband resumes a trial from another trial's checkpoint). ``--overwrite`` is honoured only by
the chief, and a worker waits for the chief's server before it touches the directory (up to
``--chief-timeout`` seconds), so the chief's overwrite cannot delete a worker's files. A worker killed in
the middle of a trial leaves that trial running in the oracle and the chief waits for it: restart the worker
with the same ``KERASTUNER_TUNER_ID`` (it resumes) or stop the chief.
"""

from relu_ratio.tune.cli import main, parser
from relu_ratio.tune.search import (
    OBJECTIVE,
    TUNERS,
    VALIDATIONS,
    SearchConfig,
    SearchResult,
    distributed_role,
    load_search_data,
    search,
    trial_number,
    trial_table,
)
from relu_ratio.tune.space import (
    GRANULARITIES,
    PLAIN_CHOICES,
    ReLUHyperModel,
    format_pattern,
    parse_ratio_bound,
    relu_pattern_from,
)

__all__ = [
    "GRANULARITIES", "OBJECTIVE", "PLAIN_CHOICES", "TUNERS", "VALIDATIONS", "ReLUHyperModel", "SearchConfig",
    "SearchResult", "distributed_role", "format_pattern", "load_search_data", "main", "parse_ratio_bound",
    "parser", "relu_pattern_from", "search", "trial_number", "trial_table",
]  # fmt: skip
