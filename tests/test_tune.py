"""Pattern search: the space per family, constraints, hyperparameters -> relu_pattern, searches, CLI,
distributed mode."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import time
import tracemalloc

import keras
import keras_tuner
import pytest
from conftest import SMALL_NAMES, start_module, write_image_folder
from helpers import CtrlCLostAfterTheFirstBatch, Steps, lock_of

import relu_ratio
from relu_ratio import data, models, train, tune
from relu_ratio.tune.search import _draw_within_bounds as draw_within_bounds

SMALL = {family: int(name[len(family) :]) for family, name in SMALL_NAMES.items()}  # plain -> 8, ...
SLOTS = {"postresnet": 2, "resnet": 2, "preact": 3, "dfnmr": 4}


TINY = {"max_trials": 2, "epochs": 1, "val_subset": 6, "batch_size": 8, "verbose": 0, "overwrite": True}


def _sampled_values(hypermodel, count, seed=0):
    rng = random.Random(seed)
    names = [name for name, _, _ in hypermodel.positions]
    yield dict.fromkeys(names, hypermodel.choices[-1])  # the fewest ReLUs everywhere
    for _ in range(count):
        yield {name: rng.choice(hypermodel.choices) for name in names}


# --- the space -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["postresnet", "resnet", "preact", "dfnmr"])
def test_stage_space_is_every_mask_with_a_relu(family):
    hm = tune.ReLUHyperModel(family, SMALL[family])
    slots = SLOTS[family]
    assert len(hm.choices) == 2**slots - 1 and hm.default == "1" * slots
    assert set(hm.choices) == {"".join(b) for b in itertools.product("01", repeat=slots)} - {"0" * slots}
    assert [name for name, _, _ in hm.positions] == ["stage1", "stage2", "stage3"]
    assert hm.space_size() == ((2**slots - 1) ** 3,) * 2
    for choice in hm.choices:  # each is a valid mask of the block kind
        relu_ratio.ReLUPattern(choice).resolve(hm.kind, hm.blocks_per_stage)


def test_min_relus_per_block_restricts_the_masks():
    hm = tune.ReLUHyperModel("preact", 11, min_relus_per_block=2)
    assert sorted(hm.choices) == ["011", "101", "110", "111"]
    assert tune.ReLUHyperModel("dfnmr", 14, min_relus_per_block=3).choices == (
        "1111",
        "1110",
        "1101",
        "1011",
        "0111",
    )
    hm0 = tune.ReLUHyperModel("resnet", 8, min_relus_per_block=0)
    assert "00" in hm0.choices
    with pytest.raises(ValueError, match="nothing to search"):
        tune.ReLUHyperModel("preact", 11, min_relus_per_block=3)
    with pytest.raises(ValueError, match="from 0 to 3"):
        tune.ReLUHyperModel("preact", 11, min_relus_per_block=4)
    for wrong in (True, 2.0, -1):
        with pytest.raises(ValueError, match=rf"an integer from 0 to 3 .*received {wrong!r}\."):
            tune.ReLUHyperModel("preact", 11, min_relus_per_block=wrong)
    with pytest.raises(ValueError, match="fewer than min_relus_per_block=2"):
        tune.ReLUHyperModel("preact", 11, min_relus_per_block=2, choices=["3:2", "type2", "100"])


def test_choices_accept_ratios_presets_and_masks():
    hm = tune.ReLUHyperModel("preact", 11, choices=["1:1", "3:2", "type2", "011"])
    assert hm.choices == ("111", "011", "101")  # normalised to masks, duplicates dropped
    with pytest.raises(ValueError, match="cannot be realised"):
        tune.ReLUHyperModel("resnet", 8, choices=["3:2", "1:1"])


def test_plain_stages_choose_ratios_and_blocks_choose_layers():
    hm = tune.ReLUHyperModel("plain", 8)
    assert hm.choices == ("1:1", "2:1", "3:2") and hm.default == "1:1"
    pairs = tune.ReLUHyperModel("plain", 8, min_relus_per_block=2, choices=["3:2", "4:2", "2:2"])
    assert pairs.choices == ("3:2", "4:2", "2:2")  # M >= 2 in every period
    with pytest.raises(ValueError, match="fewer than min_relus_per_block=2"):
        tune.ReLUHyperModel("plain", 8, min_relus_per_block=2, choices=["3:2", "1:1"])
    with pytest.raises(ValueError, match=r"an integer >= 0 \(the M of each N:M ratio\); received -1\."):
        tune.ReLUHyperModel("plain", 8, min_relus_per_block=-1)  # a plain stage's M has no upper bound
    layers = tune.ReLUHyperModel("plain", 8, "block", min_relus_per_block=0)
    assert layers.choices == ("1", "0") and len(layers.positions) == 6
    with pytest.raises(ValueError, match="granularity='stage'"):
        tune.ReLUHyperModel("plain", 8, "block")
    with pytest.raises(ValueError, match=r"\['2:1'\] .*two or more different choices \(e.g. 1:1,2:1\)"):
        tune.ReLUHyperModel("plain", 8, choices=["2:1", "2:1"])


def test_block_granularity_has_one_choice_per_block():
    hm = tune.ReLUHyperModel("resnet", 14, "block")
    names = [name for name, _, _ in hm.positions]
    assert names == [f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2)]
    assert hm.space_size()[0] == 3**6
    values = dict(zip(names, ["11", "01", "10", "11", "01", "01"]))
    assert tune.relu_pattern_from(values) == [["11", "01"], ["10", "11"], ["01", "01"]]


def test_relu_pattern_from_hyperparameters_and_dicts():
    hp = keras_tuner.HyperParameters()
    tune.ReLUHyperModel("preact", 11).declare_hyperparameters(hp)
    assert tune.relu_pattern_from(hp) == ["111", "111", "111"]  # defaults: paired
    hp.values.update({"stage2": "011", "tuner/epochs": 3, "tuner/trial_id": "0001"})
    assert tune.relu_pattern_from(hp) == ["111", "011", "111"]
    assert tune.relu_pattern_from(hp.values) == ["111", "011", "111"]
    with pytest.raises(ValueError, match="neither"):
        tune.relu_pattern_from({"units": 3})
    with pytest.raises(ValueError, match="must run 1, 2"):
        tune.relu_pattern_from({"stage1": "11", "stage3": "11"})
    for key in ("stage0", "Stage 1", "stage1_blk2"):  # a stage meant, spelt otherwise: was dropped
        with pytest.raises(ValueError, match=f"key {key!r} is neither 'stageN' nor 'stageN_blockM'"):
            tune.relu_pattern_from({key: "11", "stage1": "01"})
    assert tune.relu_pattern_from({"stage1": "01", "stage_lr": 0.1, "stages": 3}) == ["01"]  # others: ignored


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "resnt"}, "did you mean 'resnet'"),
        ({"depth": 9}, "Nearest valid depths: 8, 14"),
        ({"granularity": "layer"}, "granularity must be one of stage, block"),
        ({"min_ratio": "2:0"}, "M = 0"),
        ({"max_ratio": "fast"}, "not understood"),
        ({"min_ratio": 2, "max_ratio": 1.5}, "larger than max_ratio"),
        ({"max_ratio": "1:2"}, "ratio runs from 1.000 to 1.750"),
        ({"relu_pattern": "2:1"}, "set by the search"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    settings = {"family": "resnet", "depth": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        tune.ReLUHyperModel(settings.pop("family"), settings.pop("depth"), **settings)


def test_ratio_bounds_fail_trials_before_training():
    hm = tune.ReLUHyperModel("resnet", 14, "block", min_ratio="3:2", max_ratio=2)
    total, feasible = hm.space_size()
    assert 0 < feasible < total
    hp = keras_tuner.HyperParameters()
    hm.declare_hyperparameters(hp)  # defaults: paired, 13 convs : 13 ReLUs, ratio 1 < 3:2
    model = hm.build(hp)
    assert hm.counts(hp) == (13, 13)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match=r"below min_ratio 1\.5"):
        hm.fit(hp, model, None)  # never reaches model.fit
    hp.values.update(dict.fromkeys(hp.values, "01"))  # 13 : 7 = 1.86
    assert hm.violation(*hm.counts(hp)) is None


def _trial_parts(folder, epochs=1):
    """A hypermodel, training batches (shared by the trials) and validation batches, as search() makes them,
    on the tiny folder: 18 training images in 3 batches of 8 an epoch."""
    train_split, val_split = tune.load_search_data(folder, "holdout", val_subset=6)
    batches = data.batches(train_split, 8, augment=True, seed=0, one_hot=True)
    config = train.TrainConfig(recipe="fast", epochs=epochs, batch_size=8, seed=0)
    hm = tune.ReLUHyperModel("resnet", 8, train_config=config, steps_per_epoch=len(batches), seed=0,
                             **train_split.builder_kwargs())  # fmt: skip
    return hm, batches, data.batches(val_split, 256, one_hot=True)


def _hp(hm, choice):
    hp = keras_tuner.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values.update(dict.fromkeys(hp.values, choice))
    return hp


def test_a_trial_trains_alike_whatever_trials_ran_before_it_in_the_process(folder):
    """The training batches are shared by a search's trials, and their epoch moved on with every trial's
    epochs: the same pattern trained as a process's first trial and as a later one scored differently (a
    resumed search ranked the patterns otherwise than an uninterrupted one), whatever --seed said."""
    hm, batches, val = _trial_parts(folder)

    def trial(choice):  # as keras-tuner calls it: Keras' own shuffling of the batches' order left on
        hp = _hp(hm, choice)
        return hm.fit(hp, hm.build(hp), batches, validation_data=val, epochs=1, verbose=0).history

    first = trial("11")
    trial("01")
    assert trial("11") == first


class _FirstStep(keras.callbacks.Callback):
    """What a fit's first training step sees: the optimizer's step count and learning rate, and the epoch of
    the batches."""

    def __init__(self, batches):
        super().__init__()
        self.batches, self.seen = batches, None

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen is None:
            optimizer = self.model.optimizer
            self.seen = (int(optimizer.iterations), float(optimizer.learning_rate), self.batches.epoch)


def test_a_continued_trial_goes_on_with_its_schedule_momentum_and_epochs(folder, tmp_path):
    """Hyperband's next round continues a trial: keras-tuner builds the model, loads the checkpoint it saved
    (weights and optimizer state) and fits from ``initial_epoch``. The schedule restarted at step 0 (warm-up
    again), the momentum was dropped (Keras skips an unbuilt optimizer's variables) and the batches served
    epoch 0's draws again."""
    hm, batches, val = _trial_parts(folder, epochs=2)  # the fast recipe: one epoch of warm-up
    hp = _hp(hm, "11")
    model = hm.build(hp)
    hm.fit(hp, model, batches, validation_data=val, epochs=1, verbose=0)
    model.save_weights(tmp_path / "checkpoint.weights.h5")  # keras-tuner's SaveBestEpoch
    continued = hm.build(hp)
    continued.load_weights(tmp_path / "checkpoint.weights.h5")  # Hyperband._build_hypermodel
    state = lambda m: [keras.ops.convert_to_numpy(v) for v in m.optimizer.variables]  # noqa: E731
    saved, loaded = state(model), state(continued)
    assert len(saved) == len(loaded) > 2 and all((a == b).all() for a, b in zip(saved, loaded))  # momenta
    first, step = _FirstStep(batches), len(batches)
    hm.fit(hp, continued, batches, validation_data=val, initial_epoch=1, epochs=2, verbose=0,
           callbacks=[first])  # fmt: skip
    lr = float(train.learning_rate(hm.train_config, step)(step))
    assert lr == pytest.approx(0.1) and first.seen == (step, pytest.approx(lr), 1), first.seen


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost interrupt
def test_ctrl_c_stops_a_trial_even_where_its_keyboard_interrupt_is_lost(folder, default_sigint):
    """The trial's fit had no StopOnCtrlC: an interrupt Python lost let the trial train on, and the search
    went on to the next trial."""
    hm, batches, val = _trial_parts(folder, epochs=3)
    hp, steps, handler = _hp(hm, "11"), Steps(), signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        hm.fit(hp, hm.build(hp), batches, validation_data=val, epochs=3, verbose=0,
               callbacks=[CtrlCLostAfterTheFirstBatch(), steps])  # fmt: skip
    assert steps.count == 1 and signal.getsignal(signal.SIGINT) is handler  # stopped at the next batch


ORACLES = [("RandomSearchOracle", {"max_trials": 50}), ("HyperbandOracle", {"max_epochs": 81}),
           ("BayesianOptimizationOracle", {"max_trials": 50})]  # fmt: skip


@pytest.mark.parametrize(("oracle", "settings"), ORACLES)
def test_a_tuners_random_draws_stay_within_the_ratio_bounds(oracle, settings):
    hm = tune.ReLUHyperModel("resnet", 14, "block", min_ratio="3:2", max_ratio=2)
    total, feasible = hm.space_size()
    assert feasible / total < 0.5  # an unchecked draw falls outside about every other time
    oracle = getattr(keras_tuner.oracles, oracle)(objective="val_accuracy", seed=0, **settings)
    hp = keras_tuner.HyperParameters()
    hm.declare_hyperparameters(hp)
    oracle.update_space(hp)
    draw_within_bounds(oracle, hm)
    draws = [oracle.populate_space(str(trial))["values"] for trial in range(20)]  # Hyperband: one bracket
    draws = [values for values in draws if values is not None]
    assert draws and all(hm.within_bounds(values) for values in draws)


SAMPLED_SPACES = [  # (family, depth, granularity)
    ("plain", 8, "stage"), ("plain", 8, "block"), ("postresnet", 8, "stage"), ("resnet", 14, "block"),
    ("preact", 11, "stage"), ("dfnmr", 18, "block"),
]  # fmt: skip


@pytest.mark.parametrize(("family", "depth", "granularity"), SAMPLED_SPACES)
def test_the_space_counts_what_models_counts_counts(family, depth, granularity):
    hm = tune.ReLUHyperModel(family, depth, granularity, min_relus_per_block=0 if family == "plain" else 1)
    for values in _sampled_values(hm, 6, seed=depth):
        try:
            counted = models.counts(family, depth, hm.pattern(values))
        except ValueError:  # every ReLU of the blocks removed: counted, and a failed trial
            assert hm.counts(values) == (models.counts(family, depth).convs, hm.spec.fixed_relus)
            continue
        assert hm.counts(values) == (counted.convs, counted.relus), values


@pytest.mark.backend
@pytest.mark.parametrize(("family", "depth", "granularity"), SAMPLED_SPACES)
def test_every_sampled_pattern_builds_with_the_counted_relus(family, depth, granularity):
    hm = tune.ReLUHyperModel(family, depth, granularity, min_relus_per_block=0 if family == "plain" else 1)
    for values in _sampled_values(hm, 2, seed=len(family)):
        hp = keras_tuner.HyperParameters()
        hm.declare_hyperparameters(hp)
        hp.values.update(values)
        convs, relus = hm.counts(values)
        if hm.violation(convs, relus):  # plain, every layer off: a failed trial
            with pytest.raises(keras_tuner.errors.FailedTrialError, match="removes every ReLU"):
                hm.build(hp)
            continue
        model = hm.build(hp)  # compiled with the recipe
        measured = relu_ratio.describe(model)
        assert (measured.convs, measured.relus) == (convs, relus), values
        assert model.optimizer is not None and model.loss is not None


# --- searches ----------------------------------------------------------------------------------


def _check_result(result, tmp_path):
    assert result.role == "single" and result.val_accuracy is not None and 0 <= result.val_accuracy <= 1
    rebuilt = models.build_family(result.family, result.depth, result.relu_pattern, classes=3)
    measured = relu_ratio.describe(rebuilt)
    assert (measured.convs, measured.relus) == (result.convs, result.relus)
    assert relu_ratio.describe(result.build_model()).relus == result.relus
    assert models.build_family(result.family, result.depth, result.masks, classes=3).count_params() == (
        rebuilt.count_params()
    )
    with open(result.path) as f:
        saved = json.load(f)
    assert saved["relu_pattern"] == result.relu_pattern and saved["val_accuracy"] == result.val_accuracy
    assert not [p for p in os.listdir(os.path.dirname(result.path)) if p.endswith(".tmp")]


@pytest.mark.backend
def test_random_search_returns_a_buildable_best_pattern(folder, tmp_path):
    # resnet8 has 7 convs; the bounds allow only patterns with 5 ReLUs (ratio 1.4), 12 of the 27. Seed 10's
    # first two draws are outside them: the tuner draws again, and each of the 2 trials trains.
    config = tune.SearchConfig(family="resnet", depth=8, dataset=str(folder), tuner="random",
                               directory=str(tmp_path / "runs"), min_ratio=1.4, max_ratio="7:5", seed=10,
                               **TINY)  # fmt: skip
    result = tune.search(config)
    _check_result(result, tmp_path)
    statuses = [row["status"] for row in result.trials]
    assert statuses == ["COMPLETED"] * 2 and result.trials_run_here == [1, 2], statuses  # as in the table
    assert [row["relus"] for row in result.trials] == [5, 5]
    assert result.relus == 5 and result.space == {
        "hyperparameters": ["stage1", "stage2", "stage3"],
        "choices": ["11", "10", "01"],
        "configurations": 27,
        "feasible": 12,
    }
    assert result.path == os.fspath(tmp_path / "runs" / "resnet8_stage_random" / "best.json")
    table = tune.trial_table(result)
    assert tune.format_pattern(result.relu_pattern) in table


def test_a_search_draws_no_more_once_it_finds_no_untried_configuration_within_the_bounds(folder, tmp_path):
    # resnet8 with masks 11 and 01: 7 convs : 4 ReLUs is one configuration of the 8 (01 in every stage)
    config = tune.SearchConfig(family="resnet", depth=8, dataset=str(folder), choices=("11", "01"),
                               min_ratio="7:4", max_ratio="7:4", directory=str(tmp_path), **TINY)  # fmt: skip
    with pytest.warns(UserWarning, match="no untried configuration within the ratio bounds found in 400"):
        result = tune.search(config)
    assert [(row["status"], row["pattern"]) for row in result.trials] == [("COMPLETED", "01|01|01")]


# Not marked backend: what differs from the random search is keras-tuner's oracle bookkeeping, which does not
# touch Keras' backend; a trial's build and fit under JAX is run by the random search above (52 s of the JAX
# pass saved).
@pytest.mark.parametrize("tuner", ["hyperband", "bayesian"])
def test_hyperband_and_bayesian_run_one_trial(folder, tmp_path, tuner):
    settings = {**TINY, "max_trials": 1, "granularity": "block"}
    config = tune.SearchConfig(family="preact", depth=11, dataset=str(folder), tuner=tuner,
                               directory=str(tmp_path), **settings)  # fmt: skip
    result = tune.search(config)
    _check_result(result, tmp_path)
    assert len(result.trials) == 1 and result.trials[0]["status"] == "COMPLETED"
    if tuner == "hyperband":
        assert result.trials[0]["epochs"] == 1
    settings = json.loads((tmp_path / f"preact11_block_{tuner}" / "search.json").read_text())
    assert settings["hyperband_factor"] == (3 if tuner == "hyperband" else None)  # the factor it used


def test_holdout_validation_never_overlaps_training(folder):
    train_split, val_split = tune.load_search_data(folder, "holdout", train_subset=10, val_subset=6, seed=1)
    assert (len(train_split), len(val_split)) == (10, 6)
    seen = {img.tobytes() for img in train_split.images}
    assert not seen & {img.tobytes() for img in val_split.images}
    again = tune.load_search_data(folder, "holdout", train_subset=10, val_subset=6, seed=1)[1]
    assert (again.images == val_split.images).all()  # a fixed slice
    assert len(tune.load_search_data(folder, "test", val_subset=5)[1]) == 5
    with pytest.raises(ValueError, match="leaves no training images"):
        tune.load_search_data(folder, "holdout", val_subset=24)
    with pytest.raises(ValueError, match="train_subset 30 is more than the 18 images of the training split"):
        tune.load_search_data(folder, "holdout", train_subset=30, val_subset=6)  # 24 - 6 left to train on
    write_image_folder(folder, split="test", classes=("emu",), per_class=1)  # a class training lacks
    with pytest.raises(ValueError, match=r"splits of .* have different classes: .*only in one: \['emu'\]"):
        tune.load_search_data(folder, "test")  # validating on the test split checks that it matches


# --- CLI -----------------------------------------------------------------------------------------


def _tiny_args(folder, out, *extra):
    return [
        "--family",
        "resnet",
        "--depth",
        "8",
        "--dataset",
        str(folder),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--val-subset",
        "6",
        "--batch-size",
        "8",
        "--verbose",
        "0",
        *extra,
    ]


def test_cli_end_to_end(folder, tmp_path, capsys):
    # in-process, to spare a second TensorFlow start; `python -m relu_ratio.tune` runs in the distributed test
    args = _tiny_args(folder, tmp_path / "runs", "--max-trials", "1", "--validation", "test", "--overwrite",
                      "--verbose", "1")  # fmt: skip
    assert tune.main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = next(i for i, line in enumerate(lines) if line.startswith("trial ") and "status" in line)
    assert lines[table + 1].startswith("1 ") and "COMPLETED" in lines[table + 1]  # numbered from 1 (was 0),
    assert "Search: Running Trial #1" in out and "[1/1 trials]" in out  # as keras-tuner and progress number
    best = json.loads((tmp_path / "runs" / "resnet8_stage_random" / "best.json").read_text())
    assert best["role"] == "single" and best["trials_run_here"] == [1] and best["trial"] == 1  # as the table
    assert best["trial_id"] == "0" and (tmp_path / "runs" / "resnet8_stage_random" / "trial_0").is_dir()
    assert f"relu_pattern = {json.dumps(best['relu_pattern'])}" in out
    assert f"per-block masks = {json.dumps(best['masks'])}" in out
    assert "val_acc" in out and "COMPLETED" in out and "27 configurations, 27 within the constraints" in out
    assert relu_ratio.describe(models.build_family("resnet", 8, best["relu_pattern"])).relus == best["relus"]


def test_ctrl_c_ends_the_cli_with_one_line_and_exit_130(folder, tmp_path, monkeypatch, capsys):
    """It printed keras-tuner's traceback; now it says what was kept and how to go on, as train does."""

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune.cli, "search", interrupted)
    args, project = _tiny_args(folder, tmp_path / "runs"), tmp_path / "runs" / "resnet8_stage_random"
    for started in (False, True):
        if started:  # the search had written its settings: keras-tuner keeps its trials
            project.mkdir(parents=True)
            (project / "search.json").write_text("{}")
        try:
            status = tune.main(args)
        except KeyboardInterrupt:
            status = "KeyboardInterrupt raised"
        assert status == 130
        err = capsys.readouterr().err
        said = "nothing was written."
        if started:
            said = f"the search in {project} keeps the trials it finished; the same command resumes it"
        assert err.startswith("interrupted: ") and err.count("\n") == 1 and said in err, err


def test_cli_help_and_bad_values(capsys):
    with pytest.raises(SystemExit) as exit_info:
        tune.main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for flag in (
        "--family",
        "--granularity",
        "--min-relus-per-block",
        "--tuner",
        "--validation",
        "KERASTUNER",
    ):
        assert flag in help_text
    assert tune.main(["--family", "resnt"]) == 2
    assert "unknown family 'resnt' (did you mean 'resnet'?)" in capsys.readouterr().err
    assert tune.main(["--family", "preact", "--depth", "12"]) == 2
    err = capsys.readouterr().err
    assert "depth 12 is not valid" in err and "Nearest valid depths: 11, 20" in err
    assert tune.main(["--dataset", "/no/such/dir", "--depth", "8"]) == 2
    assert "/no/such/dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tune.main(["--tuner", "grid"])
    assert "invalid choice: 'grid'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # an empty item is refused, not dropped
        tune.main(["--choices", "01,,11"])
    assert "argument --choices: '01,,11' has an empty item" in capsys.readouterr().err


# --- distributed ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_chief_and_worker(folder, tmp_path, monkeypatch, capsys):
    """The chief is ``python -m relu_ratio.tune``; the worker is the same command in this process (a second
    process would only add a TensorFlow start)."""
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    args = _tiny_args(folder, tmp_path / "runs", "--max-trials", "1", "--chief-timeout", "120")
    chief = start_module("relu_ratio.tune", args, {**env, "KERASTUNER_TUNER_ID": "chief"})
    start = time.time()
    try:
        with monkeypatch.context() as worker_env:
            for key, value in {**env, "KERASTUNER_TUNER_ID": "tuner0"}.items():
                worker_env.setenv(key, value)
            status = tune.main(args)
        worker_log = "".join(capsys.readouterr())
        chief_log, _ = chief.communicate(timeout=max(10, 270 - (time.time() - start)))
    finally:
        if chief.poll() is None:
            chief.kill()
            chief.communicate()
    assert status == 0, worker_log
    assert "worker tuner0 ran trials 1 (numbered as in the chief's table) in " in worker_log, worker_log
    assert chief.returncode == 0, chief_log
    best = json.loads((tmp_path / "runs" / "resnet8_stage_random" / "best.json").read_text())
    assert best["role"] == "chief" and best["trials_run_here"] == []  # the chief trains nothing
    assert [row["status"] for row in best["trials"]] == ["COMPLETED"]
    assert f"relu_pattern = {json.dumps(best['relu_pattern'])}" in chief_log
    model = models.build_family("resnet", 8, best["relu_pattern"], classes=3)
    assert relu_ratio.describe(model).relus == best["relus"]


@pytest.mark.parametrize(
    ("env", "message"),
    [({"KERASTUNER_ORACLE_PORT": "80a"}, r"ORACLE_PORT must be a port number \(1 to 65535\); received '80a'"),
     ({"KERASTUNER_ORACLE_PORT": "70000"}, "received '70000'"),
     ({"KERASTUNER_ORACLE_PORT": "²"}, "received '²'"),
     ({"KERASTUNER_TUNER_ID": " "}, "KERASTUNER_TUNER_ID is set but empty"),
     ({"KERASTUNER_ORACLE_IP": ""}, "KERASTUNER_ORACLE_IP is set but empty")],
)  # fmt: skip
def test_a_distributed_setting_keras_tuner_would_fail_on_later_is_refused_first(monkeypatch, env, message):
    good = {"ORACLE_IP": "127.0.0.1", "ORACLE_PORT": "8000", "TUNER_ID": "chief"}
    for key, value in {**{f"KERASTUNER_{k}": v for k, v in good.items()}, **env}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        tune.distributed_role()
    monkeypatch.delenv("KERASTUNER_ORACLE_IP")  # a tuner id alone: the search runs alone, and says so
    with pytest.warns(UserWarning, match="KERASTUNER_ORACLE_IP is not: this search runs alone"):
        assert tune.distributed_role()[0] == "single"


def test_a_project_another_search_holds_is_refused_before_the_data_overwrite_or_not(tmp_path, capsys):
    project = tmp_path / "runs" / "resnet8_stage_random"
    project.mkdir(parents=True)
    (project / "search.json").write_text("{}")
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (project / ".lock").write_text(lock_of(holder.pid))
        for extra in ([], ["--overwrite"]):
            assert tune.main(_tiny_args(tmp_path / "no-data", tmp_path / "runs", *extra)) == 2
            err = capsys.readouterr().err
            assert f"the tuner's project folder {project} is in use by process {holder.pid}" in err, err
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in project.iterdir()) == [".lock", "search.json"]  # nothing deleted


def test_overwrite_never_empties_a_folder_that_holds_no_search(tmp_path, capsys):
    """``--project-name victim --overwrite`` deleted the user's files in ``victim/`` (and said "wrote")."""
    victim = tmp_path / "runs" / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("important")
    args = _tiny_args(tmp_path / "no-data", tmp_path / "runs", "--project-name", "victim", "--overwrite")
    assert tune.main(args) == 2
    err = capsys.readouterr().err
    assert f"--overwrite would empty {victim}, which holds files of no search (notes.txt, sub)" in err, err
    assert (victim / "notes.txt").read_text() == "important" and (victim / "sub").is_dir()
    (victim / "search.json").write_text("{}")  # a search's project: --overwrite goes on to the data
    assert tune.main(args) == 2 and "no-data" in capsys.readouterr().err


def test_search_config_generates_every_flag():
    """SearchConfig is the CLI and search()'s one argument: every field a flag with a help line."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(tune.SearchConfig)}
    actions = [a for a in tune.parser()._actions if a.dest != "help"]
    assert {a.dest for a in actions} == fields
    assert all(a.help and "default" in a.help for a in actions)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"width_multiplier": 0}, r"width_multiplier must be a finite number in \(0, 64\] .*; received 0"),
     ({"project_name": "../escaped"}, r"project_name must name a folder inside --out \(not blank, no '/'\)"),
     ({"project_name": ".."}, "project_name must name a folder"),
     ({"project_name": ""}, "project_name must name a folder inside --out .*received ''"),
     ({"project_name": " "}, "project_name must name a folder inside --out .*received ' '"),
     ({"max_consecutive_failed_trials": 0}, "max_consecutive_failed_trials must be a positive integer"),
     ({"max_consecutive_failed_trials": -3}, "max_consecutive_failed_trials must be a positive integer"),
     ({"directory": " "}, r"the tuner directory \(--out\) names no folder .*received ' '"),
     ({"overwrite": "false"}, r"overwrite must be true or false \(a boolean\); received 'false'"),
     ({"verbose": 5}, r"verbose must be one of \[0, 1, 2\]; received 5"),
     ({"chief_timeout": float("nan")}, r"chief_timeout must be a finite number of seconds > 0; received nan"),
     ({"chief_timeout": -1}, "chief_timeout must be"), ({"chief_timeout": float("inf")}, "chief_timeout"),
     *[({"hyperband_factor": factor}, r"hyperband_factor \(--hyperband-factor\) is Hyperband's "
                                      r"reduction factor: it needs tuner='hyperband' .*; received it with "
                                      r"tuner='random'") for factor in (5, 3)],  # 3 (the default) passed
     ({"tuner": "hyperband", "hyperband_factor": 1}, r"hyperband_factor must be an integer >= 2; received 1"),
     ({"max_trials": 10**20}, rf"max_trials {10**20} is beyond relu_ratio.tune.search.MAX_TRIALS = 100,000"),
     ({"batch_size": 100_000, "train_subset": 128},  # trained one batch of 128
      r"batch_size 100000 is more than the 128 training images \(train_subset\); give at most 128\."),
     ({"family": "resnett", "train_subset": 64},  # the batch (128) was named first, then the family
      r"^unknown family 'resnett' \(did you mean 'resnet'\?\)")],
)  # fmt: skip
def test_settings_a_trial_would_fail_on_are_refused_before_the_data_and_the_project(tmp_path, changes,
                                                                                    message, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a relative folder, " " say, would be made
    config = tune.SearchConfig(**{"family": "resnet", "depth": 8, "dataset": str(tmp_path / "none"),
                                  "directory": str(tmp_path / "out"), **changes})  # fmt: skip
    with pytest.raises(ValueError, match=message):
        tune.search(config)
    assert list(tmp_path.iterdir()) == []


def test_a_search_config_takes_paths_a_list_of_choices_and_any_real_ratio_bound(tmp_path):
    from fractions import Fraction

    import numpy as np

    bounds = {"min_ratio": Fraction(1), "max_ratio": np.float32(2)}
    config = tune.SearchConfig(family="resnet", depth=8, dataset=tmp_path / "none", directory=tmp_path,
                               choices=["11", "01"], **bounds)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="none"):  # the settings were taken: the data is looked for
        tune.search(config)


def test_the_best_of_equal_scores_is_the_first_trial_on_every_read(tmp_path):
    """Ties (val_accuracy moves in steps of 1/images) went to whichever trial keras-tuner reloaded first: a
    finished search read again could name another pattern, not the table's top row."""
    import importlib
    from types import SimpleNamespace

    search_module = importlib.import_module("relu_ratio.tune.search")  # tune.search is the function

    hm = tune.ReLUHyperModel("resnet", 8)
    names = [name for name, _, _ in hm.positions]

    def trial(trial_id, choice, score):
        hp = keras_tuner.HyperParameters()
        for name in names:
            hp.Choice(name, list(hm.choices), default=choice)
        return SimpleNamespace(trial_id=trial_id, status="COMPLETED", score=score, hyperparameters=hp,
                               message=None)  # fmt: skip

    first, other, last = hm.choices[0], hm.choices[1], hm.choices[-1]
    trials = [trial("02", first, 0.5), trial("00", other, 0.25), trial("01", last, 0.5)]
    for order in (trials, trials[::-1]):  # keras-tuner's own ranking of the ties: in the order reloaded
        oracle = SimpleNamespace(trials={t.trial_id: t for t in order},
                                 get_best_trials=lambda n, order=order: order[:n])  # fmt: skip
        result = search_module.SearchResult("single", "chief", "resnet", 8, "stage", str(tmp_path))
        found = search_module._finish(result, SimpleNamespace(oracle=oracle), hm)
        best = json.loads((tmp_path / "best.json").read_text())
        assert (best["trial"], best["trial_id"], found.trial) == (2, "01", 2)  # numbered as in the table
        assert {row["trial_id"]: row["trial"] for row in best["trials"]} == {"00": 1, "01": 2, "02": 3}
        assert found.relu_pattern == [last] * len(names)
        assert tune.trial_table(found).splitlines()[1].startswith("2 ")  # trial_id "01": the second trial


def test_a_finished_project_resumed_with_fewer_max_trials_says_no_trial_runs(folder, tmp_path):
    """keras-tuner ran no trial and gave the old trials as the result, and nothing said so. The project's
    search.json is as searches wrote it before hyperband_factor became None without Hyperband: it resumes."""
    import warnings

    out, project = tmp_path / "runs", tmp_path / "runs" / "resnet8_stage_random"
    assert tune.main(_tiny_args(folder, out, "--max-trials", "2")) == 0
    recorded = json.loads((project / "search.json").read_text())
    (project / "search.json").write_text(json.dumps({**recorded, "hyperband_factor": 3}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the same command: a finished search read again
        assert tune.main(_tiny_args(folder, out, "--max-trials", "2")) == 0
    with pytest.warns(UserWarning, match=rf"{project} already holds 2 trials, more than max_trials=1 "
                                         r"\(--max-trials\), so no new trial runs"):  # fmt: skip
        assert tune.main(_tiny_args(folder, out, "--max-trials", "1")) == 0
    assert len(json.loads((project / "best.json").read_text())["trials"]) == 2


def test_a_project_that_recorded_the_unused_hyperband_factor_3_resumes(tmp_path):
    """Until the factor became None without Hyperband, every search recorded the default, 3, in its
    search.json: such a project resumes; Hyperband's own factor is still compared."""
    import importlib

    check = importlib.import_module("relu_ratio.tune.search")._check_same_search
    for tuner in ("random", "bayesian"):
        (tmp_path / "search.json").write_text(json.dumps({"tuner": tuner, "hyperband_factor": 3}))
        check(tmp_path, {"tuner": tuner, "hyperband_factor": None})  # resumed
    (tmp_path / "search.json").write_text(json.dumps({"tuner": "hyperband", "hyperband_factor": 3}))
    check(tmp_path, {"tuner": "hyperband", "hyperband_factor": 3})
    with pytest.raises(ValueError, match=r"other settings: hyperband_factor 3 \(now 5\)\."):
        check(tmp_path, {"tuner": "hyperband", "hyperband_factor": 5})
    (tmp_path / "search.json").write_text(json.dumps({"tuner": "random", "hyperband_factor": 3}))
    with pytest.raises(ValueError, match=r"other settings: tuner 'random' \(now 'hyperband'\); hyperband_"):
        check(tmp_path, {"tuner": "hyperband", "hyperband_factor": 3})


def test_the_trial_table_keeps_its_columns_apart_whatever_the_trial_ids():
    """keras-tuner pads trial ids to max_trials' digits: six (max_trials up to MAX_TRIALS) ran the trial
    column into the status column. The table numbers the trials from 1."""
    row = {"status": "COMPLETED", "val_accuracy": 0.5, "epochs": None, "pattern": "11|11|11", "convs": 7,
           "relus": 7}  # fmt: skip
    import importlib

    ids = [f"{n:06d}" for n in (0, importlib.import_module("relu_ratio.tune.search").MAX_TRIALS - 1)]
    result = tune.SearchResult("single", "tuner0", "resnet", 8, "stage", "project",
                               trials=[{**row, "trial_id": i, "trial": tune.trial_number(i)} for i in ids])
    lines = tune.trial_table(result).splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [["1", "COMPLETED"], ["100000", "COMPLETED"]]
    assert len({lines[0].index("status"), *(line.index("COMPLETED") for line in lines[1:])}) == 1, lines


def test_search_takes_a_config_and_nothing_in_its_place(tmp_path):
    missing = str(tmp_path / "none")
    config = tune.SearchConfig(family="resnet", depth=8, dataset=missing, directory=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="none"):  # the data is looked for: the settings were taken
        tune.search(config)
    with pytest.raises(TypeError, match=r"not beside it \(epochs\)"):
        tune.search(config, epochs=3)
    with pytest.raises(TypeError, match=r"takes a SearchConfig; received 'resnet' \(str\)"):
        tune.search("resnet", depth=8)


def test_a_huge_plain_ratio_choice_is_not_spelt_out_and_keys_have_one_spelling():
    """A plain stage's ratio choice N:M is index arithmetic (its period used to be a string of N characters);
    hyperparameter keys are matched whole, in ASCII without leading zeros."""
    tracemalloc.start()
    try:
        hm = tune.ReLUHyperModel("plain", 8, choices=["1:1", "10000000:1"])
        counts = hm.counts({"stage1": "1:1", "stage2": "10000000:1", "stage3": "10000000:1"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000 and counts == (7, 3)  # stem ReLU + stage 1's two layers
    for key in ("stage01", "stage\uff11", "stage1\n"):
        with pytest.raises(ValueError, match=r"(?=.*neither)(?=.*'stage1')"):  # the valid forms named
            tune.relu_pattern_from({key: "11"})


def test_an_old_project_with_other_settings_is_refused_naming_what_differs(folder, tmp_path, capsys):
    """keras-tuner would train nothing and report the first search's trials as the new one's."""
    out = tmp_path / "runs"
    assert tune.main(_tiny_args(folder, out, "--max-trials", "1")) == 0
    best = out / "resnet8_stage_random" / "best.json"
    before = best.read_text()
    other = write_image_folder(tmp_path / "other", split="train", classes=("ant", "bee"), per_class=8)
    for extra, differs in (
        (["--epochs", "2"], ["epochs 1 (now 2)"]), (["--recipe", "paper"], ["recipe 'fast' (now 'paper')"]),
        (["--dataset", str(other)], ["dataset_info {'name': 'ds'"]),
        (["--epochs", "2", "--recipe", "paper"], ["epochs 1 (now 2)", "recipe 'fast' (now 'paper')"]),  # each
    ):  # fmt: skip
        capsys.readouterr()
        assert tune.main(_tiny_args(folder, out, "--max-trials", "1", *extra)) == 2
        err = capsys.readouterr().err
        assert f"{out / 'resnet8_stage_random'} holds a search with other settings: " in err, err
        assert all(d in err for d in differs) and "--overwrite" in err and err.count("\n") == 1, err
    search_file = out / "resnet8_stage_random" / "search.json"
    settings = search_file.read_text()
    search_file.write_text(settings[: len(settings) // 2])  # cut off while it was written
    assert tune.main(_tiny_args(folder, out, "--max-trials", "1")) == 2
    err = capsys.readouterr().err
    assert f"{search_file}: is not valid JSON" in err and "--overwrite" in err and err.count("\n") == 1, err
    search_file.write_text(settings)
    assert best.read_text() == before
    assert tune.main(_tiny_args(folder, out, "--max-trials", "2")) == 0  # more trials: the search resumed
    assert tune.main(_tiny_args(folder, out, "--max-trials", "1", "--epochs", "2", "--overwrite")) == 0
    assert json.loads((out / "resnet8_stage_random" / "search.json").read_text())["epochs"] == 2
