"""The model zoo: register a tiny fake training run into a temporary store, then load, verify, evaluate it;
bad load arguments, and the SavedModel cache and exports under a full disk, damage and two processes."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import FIXTURE_ZOO, write_image_folder
from helpers import BARRIER, RAW, REAL, SHAPE, cheapest_entry, real_entries_for_this_backend, two_processes
from PIL import Image

import relu_ratio
from relu_ratio import data, files, models, zoo
from relu_ratio.fuse import fuse
from relu_ratio.inputs import CheckedModel
from relu_ratio.zoo import saved_model
from relu_ratio.zoo.__main__ import main

NAME = "resnet8_21"
CLASSES = ("cat", "dog", "frog")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished fake training run (resnet8_21, 3 classes) and its 12-image PNG test split."""
    root = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label, cls in enumerate(CLASSES):
        (root / "data" / "test" / cls).mkdir(parents=True)
        for i in range(4):
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / "data" / "test" / cls / f"{i}.png")
            images.append(image)
            labels.append(label)
    images, labels = np.stack(images), np.asarray(labels)
    normalization = [images.mean(axis=(0, 1, 2)).tolist(), images.std(axis=(0, 1, 2)).tolist()]
    kwargs = {"classes": len(CLASSES), "normalization": normalization}
    model = models.build(NAME, **kwargs)
    run_dir = root / "run"
    run_dir.mkdir()
    model.save_weights(run_dir / "model.weights.h5")
    config = {
        "model": NAME,
        "dataset": os.fspath(root / "data"),
        "architecture": {"builder_name": NAME, "kwargs": kwargs},
        "command": f"python -m relu_ratio.train --model {NAME} --epochs 1",
        "epochs": 1,
    }
    result = {"epochs_completed": 1, "wall_time_s": 1.5, "device": "cpu", "backend": "tensorflow"}
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "result.json").write_text(json.dumps({**result, "test_top1": 0.3, "test_top5": 1.0}))
    return {"root": root, "dir": run_dir, "model": model, "images": images, "labels": labels}


@pytest.fixture(scope="module")
def store(run):
    """``RELU_RATIO_ZOO`` pointing at a store holding the registered run (never the real zoo/)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELU_RATIO_ZOO", os.fspath(run["root"] / "store"))
        patch.setenv("RELU_RATIO_HOME", os.fspath(run["root"] / "home"))
        zoo.register(run["dir"])
        yield run["root"] / "store"


@pytest.fixture
def scratch(store, tmp_path, monkeypatch):
    """A private copy of the store, for tests that damage it."""
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(copy))
    return copy


def test_register_measures_every_number(run, store):
    entry = zoo.info(NAME)
    weights = store / NAME / "model.weights.h5"
    assert zoo.list() == [NAME] and zoo.list("resnet*") == [NAME] and zoo.list("preact*") == []
    with pytest.raises(TypeError, match="pattern must be an fnmatch string such as 'preact\\*'; received 5"):
        zoo.list(5)
    assert entry.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry.file_size == weights.stat().st_size
    predicted = np.argsort(-run["model"].predict(run["images"], verbose=0), axis=1)
    assert entry.metrics["top1"] == pytest.approx(100 * np.mean(predicted[:, 0] == run["labels"]))
    assert entry.metrics["top5"] == 100.0  # 3 classes
    description = relu_ratio.describe(run["model"])
    assert (entry.params, entry.flops) == (description.params, description.flops)
    assert entry.relu_pattern == "01"  # 2:1 in a pre-activation block: first ReLU removed
    assert entry.class_names == CLASSES and entry.num_images == 12 and entry.split == "test"
    assert entry.training["epochs"] == 1 and entry.training["config"]["model"] == NAME
    assert entry.package_version == relu_ratio.__version__ and entry.keras_version == keras.version()
    assert not [p for p in store.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_register_refuses_a_taken_name_and_a_run_that_does_not_fit(run, store, tmp_path):
    with pytest.raises(zoo.ZooError, match="already exists"):
        zoo.register(run["dir"])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / NAME).write_text("notes of mine")  # a file where the entry would go
    with pytest.raises(zoo.ZooError, match=f"{NAME} is no zoo entry .* does not replace it"):
        zoo.register(run["dir"], store=tmp_path / "mine", overwrite=True)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == [NAME]
    assert (tmp_path / "mine" / NAME).read_text() == "notes of mine"
    with pytest.raises(zoo.ZooError, match="invalid zoo name ''"):  # not the default name
        zoo.register(run["dir"], "", store=tmp_path / "other")
    bad = tmp_path / "run"
    shutil.copytree(run["dir"], bad)
    config = json.loads((bad / "config.json").read_text())
    config["architecture"]["builder_name"] = config["model"] = "resnet14_21"
    (bad / "config.json").write_text(json.dumps(config))
    named = re.escape(f"{bad / 'model.weights.h5'} does not fit resnet14_21")  # not the store's float16 copy
    with pytest.raises(zoo.IntegrityError, match=named):
        zoo.register(bad, store=tmp_path / "other")
    assert not (tmp_path / "other").exists()  # nothing half-registered, not the store folder made for it
    raw = {**config, "architecture": {**config["architecture"], "kwargs": {"classes": 3}}}
    (bad / "config.json").write_text(json.dumps(raw))
    with pytest.raises(zoo.ZooError, match=r"lack 'normalization' \(\[mean, std\] per channel of the"):
        zoo.register(bad, store=tmp_path / "other")
    (bad / "config.json").write_text(json.dumps(config))
    standardised = tmp_path / "standardised"  # a model that took standardised images, its config given one
    shutil.copytree(run["dir"], standardised)
    models.build(NAME, classes=3).save_weights(standardised / "model.weights.h5")
    with pytest.raises(zoo.IntegrityError, match="saved from a model without normalization"):
        zoo.register(standardised, store=tmp_path / "other")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(zoo.ZooError, match=r"notes.txt is not a run .*: notes.txt: is a file, not a run"):
        zoo.register(tmp_path / "notes.txt", store=tmp_path / "other")
    with pytest.raises(zoo.ZooError, match=r"nowhere does not exist: register takes the folder a training"):
        zoo.register(tmp_path / "nowhere", store=tmp_path / "other")
    with pytest.raises(zoo.ZooError, match=r"data/config.json: missing, .* \(register takes the folder a"):
        zoo.register(run["root"] / "data", store=tmp_path / "other")  # was '(run unfinished?)'
    (bad / "result.json").unlink()
    with pytest.raises(zoo.ZooError, match=r"\(no result.json; epochs logged: 0\): the same command resumes"):
        zoo.register(bad, store=tmp_path / "other")  # cut off in its first epoch
    (bad / "metrics.csv").write_text("epoch,accuracy,val_accuracy\n0,0.3,0.25\n")
    resumes = f"(no result.json; epochs logged: 1): the same command resumes it: {config['command']}"
    with pytest.raises(zoo.ZooError, match=re.escape(resumes)):
        zoo.register(bad, store=tmp_path / "other")
    (bad / "failed.json").write_text(json.dumps({"error": "TrainingDiverged: loss is nan"}))
    with pytest.raises(zoo.ZooError, match=r"not finished .*: it failed \(TrainingDiverged: loss is nan\)"):
        zoo.register(bad, store=tmp_path / "other")
    assert not (tmp_path / "other").exists() or list((tmp_path / "other").iterdir()) == []


def test_register_stores_the_model_of_a_file_keras_saved_with_its_optimizer(run, store, tmp_path):
    saved = tmp_path / "run"
    shutil.copytree(run["dir"], saved)
    model = models.build(NAME, **json.loads((saved / "config.json").read_text())["architecture"]["kwargs"])
    model.set_weights(run["model"].get_weights())
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.save_weights(saved / "model.weights.h5")  # a compiled model's file: Keras adds its optimizer
    with h5py.File(saved / "model.weights.h5", "r") as file:
        assert "optimizer" in file
    entry = zoo.register(saved, store=tmp_path / "other")
    with h5py.File(tmp_path / "other" / NAME / "model.weights.h5", "r") as file:
        assert set(file) == {"layers", "vars"}
    registered = json.loads((store / NAME / "metadata.json").read_text())  # the same weights, saved bare
    assert (entry.sha256, entry.metrics) == (registered["sha256"], registered["metrics"])


def test_register_refuses_test_data_with_other_class_names_than_the_run_trained_on(run, tmp_path):
    recorded = tmp_path / "run"
    shutil.copytree(run["dir"], recorded)
    config = json.loads((recorded / "config.json").read_text())
    config["dataset_info"] = {"class_names": ["cat", "dog", "owl"]}  # what the run trained on
    (recorded / "config.json").write_text(json.dumps(config))
    trained = r"classes \['cat', 'dog', 'frog'\], but the run .* trained on \['cat', 'dog', 'owl'\]"
    with pytest.raises(zoo.ZooError, match=trained):
        zoo.register(recorded, store=tmp_path / "store", data=run["root"] / "data")
    assert not (tmp_path / "store" / NAME).exists()
    larger = write_image_folder(tmp_path / "larger", classes=CLASSES, size=(40, 40))  # another size
    shapes = r"images of shape \(40, 40, 3\), but the run .* trained on \(32, 32, 3\)"
    with pytest.raises(zoo.ZooError, match=shapes):
        zoo.register(run["dir"], store=tmp_path / "store", data=larger)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match=r"cannot write to the zoo store .*a-file.* is not a folder"):
        zoo.register(run["dir"], store=tmp_path / "a-file" / "store")
    assert not (tmp_path / "store" / NAME).exists()


def test_a_queued_tagged_run_registers_under_its_tagged_name(run, tmp_path):
    tagged = tmp_path / f"{NAME}.long-seed0"  # the training queue's folder of a "long" variant
    shutil.copytree(run["dir"], tagged)
    entry = zoo.register(tagged, store=tmp_path / "store")
    assert entry.name == f"{NAME}.long" and entry.weights_key.endswith(".long")
    card = (tmp_path / "store" / f"{NAME}.long" / "README.md").read_text()
    assert f'models.build("{NAME}", weights="{entry.weights_key}")' in card  # the tagged weights key
    assert (tmp_path / "store" / f"{NAME}.long").is_dir() and not (tmp_path / "store" / NAME).exists()
    other = tmp_path / "resnet14_21.long-seed0"  # named for another model: the run's own model
    shutil.copytree(run["dir"], other)
    assert zoo.register(other, store=tmp_path / "store").name == NAME
    capital = tmp_path / f"{NAME}.Long-seed0"  # a tag no zoo name can carry: refused, not dropped
    shutil.copytree(run["dir"], capital)
    with pytest.raises(zoo.ZooError, match=f"names the tag 'Long'.*--name {NAME}.long"):
        zoo.register(capital, store=tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(zoo.ZooError, match=rf"names the tag ''.*--name {NAME}\.$"):  # nothing to keep of it
        zoo.publish.default_name(tmp_path / f"{NAME}.-seed0", NAME)


@pytest.mark.backend
def test_load_gives_the_saved_model_with_its_weights_rounded_to_float16(run, store):
    model = zoo.load(NAME)
    assert {str(w.dtype) for w in model.weights} == {"float32"}
    for loaded, trained in zip(model.weights, run["model"].weights):
        rounded = np.asarray(trained).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(loaded), rounded)
    expected = run["model"].predict(run["images"], verbose=0)
    np.testing.assert_allclose(model.predict(run["images"], verbose=0), expected, atol=2e-2)


def test_weights_are_stored_in_float16_at_about_half_the_bytes(run, store):
    stored, trained = store / NAME / "model.weights.h5", run["dir"] / "model.weights.h5"
    assert set(zoo.card.stored_dtypes(stored)) == {"float16"}
    assert zoo.card.stored_precision(stored) == "float16"
    assert stored.stat().st_size < 0.6 * trained.stat().st_size


def test_the_larger_arrays_are_stored_compressed_and_the_smaller_as_they_are(store):
    """Compression is lossless (the load test above compares the values bit for bit) and is kept to the
    arrays where it saves more than its chunk index costs."""
    packed = {}

    def collect(key: str, item) -> None:
        if isinstance(item, h5py.Dataset):
            packed[key] = item

    with h5py.File(store / NAME / "model.weights.h5", "r") as stored:
        stored.visititems(collect)
        large = {key: (item.compression, item.shuffle) for key, item in packed.items()
                 if item.nbytes >= zoo.publish.COMPRESS_FROM_BYTES}  # fmt: skip
        small = {key: item.compression for key, item in packed.items() if key not in large}
    assert large and set(large.values()) == {("gzip", True)}
    assert small and set(small.values()) == {None}


def test_an_array_beyond_float16s_range_is_stored_as_it_is_not_as_inf(tmp_path):
    """A run whose activations grew large (plain84_11 blew up in its first epoch) has BatchNorm moving
    variances of up to 7e8: in float16 they became inf and the stored model predicted one class."""
    model = models.build("resnet8_21")
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    norm.moving_variance.assign(np.full(norm.moving_variance.shape, 7e8, "float32"))
    model.save_weights(tmp_path / "run.weights.h5")
    zoo.publish.write_float16(tmp_path / "run.weights.h5", tmp_path / "half.weights.h5")
    loaded = models.build("resnet8_21", weights=tmp_path / "half.weights.h5")
    variance = next(w for w in loaded.weights if w.path == norm.moving_variance.path)
    np.testing.assert_array_equal(np.asarray(variance), 7e8)
    dtypes = zoo.card.stored_dtypes(tmp_path / "half.weights.h5")
    assert dtypes["float32"] == 1 and set(dtypes) == {"float16", "float32"}  # that variance alone
    assert zoo.card.stored_precision(tmp_path / "half.weights.h5") == (
        f"float16; 1 of {dtypes.total()} arrays float32: values beyond float16's range")


def test_an_entry_registers_again_from_its_own_folder_with_its_run_and_log(run, store, tmp_path):
    logged = tmp_path / "run"
    shutil.copytree(run["dir"], logged)
    (logged / "metrics.csv").write_text("epoch,accuracy,val_accuracy\n0,0.5,0.25\n")
    first = zoo.register(logged, store=tmp_path / "store")
    again = zoo.register(tmp_path / "store" / NAME, store=tmp_path / "store", overwrite=True)
    assert again.name == NAME and again.training == first.training and again.metrics == first.metrics
    assert again.sha256 == first.sha256  # float16 stored again as float16: the same bytes
    assert (tmp_path / "store" / NAME / "metrics.csv").read_text() == (logged / "metrics.csv").read_text()
    assert "[`metrics.csv`](metrics.csv)" in (tmp_path / "store" / NAME / "README.md").read_text()


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", os.fspath(folder), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit_all(repository: Path) -> str:
    _git(repository, "add", ".")
    _git(repository, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "zoo")
    return _git(repository, "rev-parse", "HEAD")


def test_git_that_gives_no_answer_in_time_is_a_zoo_error_not_a_wait_without_end(tmp_path, monkeypatch):
    def no_answer(command, **kwargs):  # git on a hung network filesystem
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", no_answer)
    with pytest.raises(zoo.ZooError, match=r"^git -C .* show HEAD:x gave no answer in 60 s\.$"):
        zoo.git_weights.git(tmp_path, "show", "HEAD:x")


def test_an_entry_registered_with_its_weights_in_git_says_how_to_fetch_them(
    run, tmp_path, monkeypatch, capsys
):
    repository = tmp_path / "my repository"  # a space: no shell command is built from a path
    store = repository / "zoo"
    zoo.register(run["dir"], store=store)
    _git(repository, "init", "-q")
    commit = _commit_all(repository)
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(store))
    kept = f"HEAD:zoo/{NAME}/model.weights.h5"
    name = f"{NAME}.e1"
    assert main(["register", os.fspath(store / NAME), "--name", name, "--weights-in-git", kept]) == 0
    entry, folder = zoo.info(name), store / name
    weights = folder / "model.weights.h5"
    assert entry.weights_git_object == f"{commit}:zoo/{NAME}/model.weights.h5"
    assert entry.sha256 == zoo.info(NAME).sha256 and entry.metrics == zoo.info(NAME).metrics
    assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "README.md", "metadata.json"]
    assert zoo.registry.with_weights(zoo.list()) == [NAME]
    with pytest.raises(zoo.WeightsNotStoredError) as error:
        zoo.load(name)
    assert f"python -m relu_ratio.zoo fetch {name}." in str(error.value)
    assert entry.training["command"] in str(error.value)
    again = f"register the run here again (python -m relu_ratio.zoo register <run folder> --name {name}"
    assert f"{again} --store {store} --force)" in str(error.value) and "package" not in str(error.value)
    row = f"| [`{name}`](zoo/{name}/README.md) (weights not shipped: see its card) |"
    assert row in zoo.markdown_table(repository / "README.md")
    card = (folder / "README.md").read_text()
    assert f"| weights | `model.weights.h5`, not shipped: the git object `{commit}:zoo/{NAME}/" in card
    assert f"```bash\npython -m relu_ratio.zoo fetch {name}\n```" in card
    assert main(["info", name]) == 0
    said = capsys.readouterr().out
    assert f"  weights        not in the store: python -m relu_ratio.zoo fetch {name}\n" in said
    assert main(["verify"]) == 0
    assert f"{name}: skipped: its weights file is not in the store" in capsys.readouterr().out
    assert main(["verify", name]) == 1 and "skipped" in capsys.readouterr().out  # named: nothing checked
    with pytest.raises(zoo.WeightsNotStoredError):  # nor registered again from a folder without them
        zoo.register(folder, overwrite=True)

    weights.write_bytes(b"")  # a fetch cut short by hand
    with pytest.raises(zoo.IntegrityError, match=f"0 bytes.* Fetch it again: .* fetch {name}"):
        zoo.load(name)
    assert main(["fetch", name]) == 0 and capsys.readouterr().out == f"{name}: {weights}\n"
    untracked = _git(repository, "status", "--porcelain", "--untracked-files=all")
    assert untracked == f"?? zoo/{name}/.gitignore\n?? zoo/{name}/README.md\n?? zoo/{name}/metadata.json"
    assert zoo.card.update(check=True) == []  # the card is the same with the file fetched
    fetched, stored = (zoo.load(n).predict(run["images"], verbose=0) for n in (name, NAME))
    np.testing.assert_array_equal(fetched, stored)
    assert main(["verify", name]) == 0
    with pytest.raises(zoo.ZooError, match=f"{NAME!r} was registered with its weights file .*nothing to"):
        zoo.fetch(NAME)
    again = zoo.register(folder, overwrite=True)  # re-measured in its own store: still without its file
    assert again.weights_git_object == entry.weights_git_object and not weights.exists()
    other = zoo.register(store / NAME, name=name, store=tmp_path / "other")  # elsewhere: with it
    assert other.weights_git_object is None and (tmp_path / "other" / name / "model.weights.h5").is_file()

    with monkeypatch.context() as patch:  # each refused before anything is measured
        patch.setattr(zoo.publish, "_measure", lambda *args: pytest.fail("measured before the check"))
        for spec, message in [
            ("HEAD", "named '<revision>:<path from the repository's root>' .* received 'HEAD'"),
            (f"HEAD:./{NAME}/model.weights.h5", "received 'HEAD:./"),
            (f"HEAD:zoo/{NAME}/metadata.json", f"git object HEAD:zoo/{NAME}/metadata.json is not the "
             f"weights being registered: its sha256 is [0-9a-f]{{64}}, the float16 file to register has "
             f"{entry.sha256}"),
            ("nope:x", "cannot find commit 'nope' for the store .*: .*Needed a single revision"),
        ]:
            with pytest.raises(zoo.ZooError, match=message):
                zoo.register(store / NAME, name=f"{NAME}.bad", weights_in_git=spec)
        outside = tmp_path / "outside"
        with pytest.raises(zoo.ZooError, match="not a git repository"):
            zoo.register(store / NAME, store=outside, weights_in_git=kept)
    assert not (store / f"{NAME}.bad").exists() and not outside.exists()  # nothing half-registered, no folder

    _commit_all(repository)  # the entry without its file
    shallow = tmp_path / "shallow"
    _git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repository}", os.fspath(shallow))
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(shallow / "zoo"))
    assert _git(shallow, "rev-parse", "--is-shallow-repository") == "true"  # without the first commit
    assert main(["fetch", name]) == 2
    assert "not a shallow clone: git fetch --unshallow" in capsys.readouterr().err
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(store))
    meta = json.loads((folder / "metadata.json").read_text())
    other_object = f"{commit}:zoo/{NAME}/metadata.json"  # a git object that is not the registered weights
    (folder / "metadata.json").write_text(json.dumps({**meta, "weights_git_object": other_object}))
    with pytest.raises(zoo.IntegrityError, match=f"{other_object} is not the weights file registered for "
                                                 f"'{name}': sha256 [0-9a-f]{{64}}, registered {entry.sha256}"
                                                 r"\. Nothing was written"):  # fmt: skip
        zoo.fetch(name)
    assert not weights.exists()
    (folder / "metadata.json").write_text(json.dumps({**meta, "weights_git_object": kept}))
    with pytest.raises(zoo.MetadataError, match=r"ill-typed: weights_git_object .*'<commit>:<path>'"):
        zoo.info(name)


def test_tampered_weights_raise(scratch):
    path = scratch / NAME / "model.weights.h5"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(zoo.IntegrityError, match=r"expected sha256 [0-9a-f]{64}, actual [0-9a-f]{64}") as err:
        zoo.load(NAME)
    assert str(path) in str(err.value)


def test_truncated_and_missing_weights_raise(scratch):
    path = scratch / NAME / "model.weights.h5"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(zoo.IntegrityError, match="truncated"):
        zoo.load(NAME)
    path.unlink()
    with pytest.raises(zoo.IntegrityError, match="missing"):
        zoo.load(NAME)


def test_weights_that_do_not_fit_raise_even_with_a_matching_hash(scratch):
    path = scratch / NAME / "model.weights.h5"
    models.build("resnet14_21", classes=3).save_weights(path)
    meta = json.loads((scratch / NAME / "metadata.json").read_text())
    meta.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), file_size=path.stat().st_size)
    (scratch / NAME / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(zoo.IntegrityError, match="does not fit"):
        zoo.load(NAME)


def test_metadata_is_schema_checked(scratch):
    meta = json.loads((scratch / NAME / "metadata.json").read_text())
    del meta["flops"]
    meta["params"] = "many"
    (scratch / NAME / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(zoo.MetadataError, match=r"missing keys \['flops'\].*params"):
        zoo.info(NAME)


@pytest.mark.parametrize(
    ("key", "value"),
    [("std", [math.nan, 60.0, 60.0]), ("mean", [math.inf, 120.0, 110.0]), ("wall_time_s", math.inf),
     ("cpu_time_s", math.nan)],
)  # fmt: skip
def test_metadata_holding_a_number_that_is_not_finite_is_refused(key, value):
    """NaN or an infinity, which a JSON file may hold, is no normalisation nor a time: not an entry."""
    metadata = json.loads((Path(FIXTURE_ZOO) / "resnet8_21" / "metadata.json").read_text())
    assert zoo.ZooEntry.from_json(metadata).name == "resnet8_21"
    if key in metadata["training"]:
        metadata["training"] = {**metadata["training"], key: value}
        key = "training"
    else:
        metadata[key] = value
    with pytest.raises(zoo.MetadataError, match=rf"ill-typed: {key} \(expected"):
        zoo.ZooEntry.from_json(metadata)


def test_one_damaged_entry_does_not_stop_loading_the_others(scratch):
    (scratch / "broken").mkdir()
    (scratch / "broken" / "metadata.json").write_text("{oops")
    with pytest.warns(UserWarning, match=r"entries that cannot be read were left out: broken: cannot read .*"
                      r"broken/metadata.json"):  # fmt: skip
        assert zoo.load(NAME).output_shape[-1] == zoo.info(NAME).classes
    with pytest.raises(zoo.MetadataError, match=r"cannot read .*broken/metadata.json"):
        zoo.load("broken")



def test_metadata_nested_deeper_than_json_reads_is_named_not_a_traceback(tmp_path):
    (tmp_path / "metadata.json").write_text("[" * 100_000)
    with pytest.raises(zoo.MetadataError, match=r"cannot read .*metadata.json: nested deeper"):
        zoo.ZooEntry.read(tmp_path)  # was a RecursionError
@pytest.mark.backend
def test_verify_compares_the_outputs_recorded_at_registration(run, store, capsys):
    recorded = zoo.info(NAME).reference_outputs
    probabilities = run["model"].predict(zoo.reference.images((32, 32, 3))[1], verbose=0)
    assert recorded["images"] == zoo.reference.SAMPLE_IMAGES  # the shipped CIFAR-10 sample: 32x32x3
    assert recorded["classes"] == probabilities.argmax(axis=1).tolist()
    np.testing.assert_allclose(recorded["probabilities"], probabilities.max(axis=1), atol=2e-3)  # float16
    report = zoo.verify(NAME)
    assert report["max_difference"] <= zoo.reference.TOLERANCE and report["same_class"] == 40
    assert main(["verify"]) == 0
    assert f"{NAME}: ok on {keras.backend.backend()}: 40 images" in capsys.readouterr().out


@pytest.mark.backend
def test_global_keras_settings_change_no_zoo_model(toy_zoo):
    """A global channels_first layout made the builders read 32x32x3 images as 32 channels (the zoo's
    weights then did "not fit", a model built from scratch predicted nonsense), and a global bfloat16 policy
    made verify blame the code for the policy's rounding."""
    expected, params = zoo.load(REAL).predict(RAW, verbose=0), models.build(REAL).count_params()
    layout = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        built, loaded = models.build(REAL), zoo.load(REAL)
        fused = fuse(loaded)
    finally:
        keras.config.set_image_data_format(layout)
    assert built.count_params() == params
    for model in (built, loaded, fused):
        assert {getattr(layer, "data_format", "channels_last") for layer in model.layers} == {"channels_last"}
    np.testing.assert_allclose(loaded.predict(RAW, verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(fused.predict(RAW, verbose=0), expected, atol=1e-5)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        report = zoo.verify(REAL)  # verified in float32, as recorded
        assert keras.config.dtype_policy().name == "mixed_bfloat16"  # the caller's policy is left as it was
    finally:
        keras.config.set_dtype_policy(policy)
    assert report["max_difference"] <= zoo.reference.TOLERANCE


def test_verify_refuses_changed_outputs_and_says_how_to_record_missing_ones(scratch, capsys):
    path = scratch / NAME / "metadata.json"
    meta = json.loads(path.read_text())
    recorded = dict(meta["reference_outputs"], probabilities=list(meta["reference_outputs"]["probabilities"]))
    probabilities = meta["reference_outputs"]["probabilities"]
    probabilities[7] = round(probabilities[7] - 0.01, 7)
    path.write_text(json.dumps(meta))
    changed = rf"'{NAME}'.* changed by 1.00e-02 \(allowed 1e-04\) on 40 images"
    with pytest.raises(zoo.IntegrityError, match=changed):
        zoo.verify(NAME)
    assert main(["verify", NAME]) == 1 and f"{NAME}: FAIL:" in capsys.readouterr().out
    del meta["reference_outputs"]
    path.write_text(json.dumps(meta))
    assert zoo.info(NAME).reference_outputs is None  # an entry registered before they were recorded
    with pytest.raises(zoo.ZooError, match=rf"records no reference outputs.*zoo register .*{NAME} --force"):
        zoo.verify(NAME)
    path.write_text(json.dumps({**meta, "reference_outputs": recorded, "sha256": "0" * 64}))
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        with pytest.raises(zoo.IntegrityError, match="does not match its registered hash"):
            zoo.verify(NAME)  # fails while it builds in float32
        assert keras.config.dtype_policy().name == "mixed_bfloat16"  # the caller's policy, even so
    finally:
        keras.config.set_dtype_policy(policy)
    assert main(["verify", "nope"]) == 2 and "no zoo entry named 'nope'" in capsys.readouterr().err
    assert main(["verify", NAME, "nope"]) == 2  # every name is checked before the first is verified
    assert capsys.readouterr().out == ""
    assert main(["cards", NAME, "nope", "--update"]) == 2 and capsys.readouterr().out == ""
    meta["reference_outputs"] = {"images": "x", "classes": [1, 2], "probabilities": [0.5]}
    path.write_text(json.dumps(meta))
    with pytest.raises(zoo.MetadataError, match="ill-typed: reference_outputs"):
        zoo.info(NAME)


def test_reference_images_are_seeded_noise_for_other_image_sizes():
    name, pixels = zoo.reference.images((16, 16, 3))
    assert name == zoo.reference.NOISE_IMAGES and pixels.shape == (40, 16, 16, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, zoo.reference.images((16, 16, 3))[1])
    model = models.build("resnet8_21", classes=3, input_shape=(16, 16, 3))
    recorded = zoo.reference.record(model)
    assert recorded["images"] == zoo.reference.NOISE_IMAGES
    assert zoo.reference.compare(model, recorded)["max_difference"] <= 1e-6


def test_unknown_name_suggests_the_closest(store):
    suggestion = rf"\(did you mean '{NAME}'\?\)\. Registered in .*: {NAME}\."
    with pytest.raises(zoo.UnknownModelError, match=suggestion):
        zoo.load("resnet8_12")


@pytest.mark.backend
def test_feature_extractor_and_new_classifier(run, store):
    features = zoo.load(NAME, include_top=False)
    assert features.output_shape == (None, 64)
    full = zoo.load(NAME)
    pooled = keras.Model(full.input, full.get_layer("avg_pool").output).predict(run["images"], verbose=0)
    np.testing.assert_allclose(features.predict(run["images"], verbose=0), pooled, atol=1e-6)
    assert zoo.load(NAME, include_top=False, pooling=None).output_shape == (None, 8, 8, 64)
    transfer = zoo.load(NAME, classes=5)
    assert transfer.output_shape == (None, 5)
    kernel = [keras.ops.convert_to_numpy(m.get_layer("stem_conv").kernel) for m in (transfer, full)]
    np.testing.assert_array_equal(*kernel)
    with pytest.raises(ValueError, match="include_top=True"):
        zoo.load(NAME, include_top=False, classes=5)


def test_a_loaded_model_takes_the_weight_decay_to_fine_tune_with(run, store):
    plain, decayed = zoo.load(NAME), zoo.load(NAME, weight_decay=5e-4)
    kernels = sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) for layer in decayed.layers)
    assert not plain.losses and len(decayed.losses) == kernels  # an L2 term on every kernel
    images = run["images"]
    np.testing.assert_array_equal(decayed.predict(images, verbose=0), plain.predict(images, verbose=0))


@pytest.mark.backend
def test_a_loaded_model_fine_tunes(run, store):
    model = zoo.load(NAME)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel)
    history = model.fit(run["images"], run["labels"], batch_size=12, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(keras.ops.convert_to_numpy(model.get_layer("predictions").kernel), before)


@pytest.mark.backend
def test_evaluate_reproduces_the_registered_accuracy(store, capsys):
    result = zoo.evaluate(NAME)
    assert result["diff_top1"] == 0 and result["diff_top5"] == 0 and result["num_images"] == 12
    assert main(["evaluate", NAME]) == 0
    out = capsys.readouterr().out
    assert "difference +0.00 points" in out and "(of 12 images" not in out  # the same images: not said
    assert result["registered_num_images"] == 12 and result["registered_data"] == str(store.parent / "data")


def test_the_table_names_the_images_of_each_figure_where_entries_were_measured_on_other_images(scratch):
    tagged = scratch / f"{NAME}.sub"  # the same data's name, fewer of its images (a subset, a tiny folder)
    shutil.copytree(scratch / NAME, tagged)
    meta = json.loads((tagged / "metadata.json").read_text())
    (tagged / "metadata.json").write_text(json.dumps({**meta, "name": f"{NAME}.sub", "num_images": 3}))
    table = zoo.markdown_table()
    assert table.startswith("| model | ReLU pattern | top-1 | params |")  # no shared dataset and split
    for name, images in ((NAME, 12), (f"{NAME}.sub", 3)):
        row = next(line for line in table.splitlines() if line.startswith(f"| [`{name}`]"))
        assert f" % ({meta['dataset']}, test, {images} images) |" in row


def test_evaluate_on_other_images_says_what_the_registered_figures_are(store, tmp_path, capsys, monkeypatch):
    other = write_image_folder(tmp_path / "other", classes=CLASSES, per_class=1)  # 3 images, not 12
    monkeypatch.setattr(zoo.registry, "TOLERANCE", -1.0)  # any difference fails: the message is seen
    assert main(["evaluate", NAME, "--data", os.fspath(other)]) == 1
    out, err = capsys.readouterr()
    assert f"registered 100.00 % (of 12 images, {store.parent / 'data'}), difference" in out  # top-5
    assert err == "FAIL: more than -1.0 points from the registered accuracy: the registered figures are of " \
        "other images\n"


def test_cli_list_info_and_table(store, capsys, tmp_path, monkeypatch):
    assert main(["list"]) == 0 and capsys.readouterr().out.split() == [NAME]
    assert main(["list", "nomatch*"]) == 1
    assert capsys.readouterr() == ("", f"no zoo entry matches 'nomatch*'; registered: {NAME}\n")
    with monkeypatch.context() as patch:
        (tmp_path / "empty").mkdir()
        patch.setenv("RELU_RATIO_ZOO", str(tmp_path / "empty"))
        assert main(["list", "nomatch*"]) == 1
        assert capsys.readouterr().err.endswith("; registered: none, the zoo is empty\n")
        assert main(["list"]) == 0 and capsys.readouterr() == ("\n", "")  # an empty store: nothing to list
        with pytest.raises(zoo.UnknownModelError, match=r"Registered in .*empty: none, the zoo is empty\.$"):
            zoo.load(NAME)
    missing = tmp_path / "mistyped"  # was listed as an empty store; verify passed, having checked nothing
    monkeypatch.setenv("RELU_RATIO_ZOO", str(missing))
    for what in ("does not exist", "is not a folder"):
        said = f"the store {missing} (chosen by $RELU_RATIO_ZOO) {what}"
        for command, first in ((["list"], "no zoo entries"), (["list", "x*"], "no zoo entry matches 'x*'"),
                               (["verify"], "no zoo entry to verify")):  # fmt: skip
            assert main(command) == 1 and capsys.readouterr() == ("", f"{first}; registered: none ({said})\n")
        with pytest.raises(zoo.UnknownModelError) as refused:
            zoo.load(NAME)
        assert str(refused.value) == f"no zoo entry named '{NAME}'. No entries: {said}."  # said once
        readme = tmp_path / "mine.md"  # was emptied to '(no entries yet)'; cards --check passed
        readme.write_text(f"{zoo.registry.TABLE_START}\nmine\n{zoo.registry.TABLE_END}\n")
        for command in (["table"], ["table", "--update", readme], ["table", "--check", readme], ["cards"],
                        ["cards", "--check"], ["cards", "--update"]):  # fmt: skip
            assert main([os.fspath(arg) for arg in command]) == 2
            err = capsys.readouterr().err  # one line; table's: "error: cannot update the zoo table: ..."
            assert re.fullmatch(rf"error: [^\n]*no zoo entries: {re.escape(said)}\.\n", err)
        assert "mine" in readme.read_text()
        with pytest.raises(zoo.ZooError, match=f"no zoo entries: {re.escape(said)}"):
            models.build(NAME, weights="cifar10")
        missing.write_text("")
    monkeypatch.undo()
    assert main(["info", NAME, "--json"]) == 0 and json.loads(capsys.readouterr().out)["name"] == NAME
    assert main(["info", NAME]) == 0  # a summary (it printed the whole record, 250 lines of JSON)
    entry, (head, *lines) = zoo.info(NAME), capsys.readouterr().out.splitlines()
    assert head == f"{NAME}: {zoo.presets.of_entry(entry).description}"  # "one of the ... ResNets ..."
    rows = dict(re.fullmatch(r"  (\S.*?)  +(\S.*)", line).groups() for line in lines)
    assert rows == {
        "load": f'zoo.load("{NAME}") or models.build("{NAME}", weights="{entry.weights_key}")',
        "ReLU pattern": "2:1 (`01`)",
        "top-1 / top-5": f"{entry.top1:.2f} % / {entry.metrics['top5']:.2f} % on the {entry.dataset} test "
        "split (12 images)",
        "parameters": f"{entry.params:,}",
        "multiply-adds": f"{entry.flops / 1e6:.1f} M per 32\N{MULTIPLICATION SIGN}32 image",
        "training": "recipe not recorded, 1 epoch, seed not recorded; CPU time not recorded",
        "weights": f"model.weights.h5 in the store, {entry.file_size:,} bytes (its sha256 checked on load)",
        "model card": os.fspath(zoo.registry.entry_dir(NAME) / "README.md"),
        "trained with": f"{entry.training['command']}  # --dataset, --out: the training machine's",
        "all metadata": f"python -m relu_ratio.zoo info {NAME} --json",
    }
    assert main(["info", "nope"]) == 2 and "no zoo entry named 'nope'" in capsys.readouterr().err
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{zoo.registry.TABLE_START}\nold\n{zoo.registry.TABLE_END}\n")
    assert main(["table", "--check", os.fspath(readme)]) == 1
    assert main(["table", "--update", os.fspath(readme)]) == 0
    assert main(["table", "--check", os.fspath(readme)]) == 0
    card = Path(os.path.relpath(store.resolve() / NAME / "README.md", tmp_path.resolve())).as_posix()
    assert f"| [`{NAME}`]({card}) | 2:1 (`01`) |" in readme.read_text() and card.startswith("../")
    assert f"| [`{NAME}`](store/{NAME}/README.md) |" in zoo.markdown_table(store.parent / "README.md")
    page = tmp_path / "TRAINING.md"  # the training table, where a page holds its markers
    page.write_text(f"# x\n{zoo.registry.TRAINING_START}\nold\n{zoo.registry.TRAINING_END}\n")
    assert main(["table", "--check", os.fspath(page)]) == 1
    assert main(["table", "--update", os.fspath(page)]) == 0
    assert main(["table", "--check", os.fspath(page)]) == 0
    assert f"| `{NAME}` | " in page.read_text() and "python -m relu_ratio.train --model" in page.read_text()
    page.write_text("no markers\n")
    assert main(["table", "--update", os.fspath(page)]) == 2 and "lacks the lines" in capsys.readouterr().err
    registry = zoo.registry
    broken = f"{registry.TABLE_START}\nold\n{registry.TABLE_END}\n{registry.CLAIMS_START}\nno end\n"
    page.write_text(broken)  # the second pair broken: nothing is written, not the first table alone
    assert main(["table", "--update", os.fspath(page)]) == 2
    assert "lacks the lines <!-- results:claims:start -->" in capsys.readouterr().err
    assert page.read_text() == broken
    twice = f"{registry.TABLE_START}\nold\n{registry.TABLE_END}\n" * 2  # only the first would be written
    page.write_text(twice)
    assert main(["table", "--update", os.fspath(page)]) == 2 and page.read_text() == twice
    assert f"holds the line {registry.TABLE_START} 2 times: keep one block" in capsys.readouterr().err
    page.write_bytes(broken.encode() + b"\xff")
    assert main(["table", "--check", os.fspath(page)]) == 2
    said = f"cannot check the zoo table: cannot read {page}: it is not UTF-8 text (invalid start byte at byte"
    assert said in capsys.readouterr().err
    assert main(["table", "--update", os.fspath(tmp_path / "missing.md")]) == 2
    assert "missing.md: No such file or directory" in capsys.readouterr().err
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(tmp_path / "empty"))
    assert "(no entries yet)" in zoo.markdown_table() and "(no entries yet)" in zoo.registry.training_table()


def test_register_writes_the_model_card_from_the_metadata(store, capsys):
    entry = zoo.info(NAME)
    card = (store / NAME / "README.md").read_text()
    assert card == zoo.card.render(entry, own_store=True)  # no metrics.csv, no docs links
    assert card.startswith(zoo.card.GENERATED) and f"\n# {NAME}\n" in card
    assert f"{entry.metrics['top1']:.2f} % / {entry.metrics['top5']:.2f} %" in card
    assert f"| parameters | {entry.params:,} |" in card and f"{entry.flops / 1e6:.1f} M multiply-adds" in card
    assert "| convolutions : ReLUs | 7 (+2 projections) : 4 = 1.75 |" in card  # 3 blocks of mask 01 + final
    assert f"python -m relu_ratio.zoo evaluate {NAME}" in card and entry.training["command"] in card
    assert f'zoo.load("{NAME}")' in card and f"python -m relu_ratio.zoo export {NAME} " in card
    assert "| commit | not recorded |" in card and "| wall clock | 0.00 h |" in card  # the run recorded none
    assert "arXiv:1709.06247" in card and "](../../docs/" not in card
    assert "store of one's own" in card and "`$RELU_RATIO_ZOO` names the folder that holds its folder" in card
    assert main(["cards", "--check"]) == 0
    (store / NAME / "README.md").write_text(card.replace("top-1", "top-one"))
    assert main(["cards", "--check"]) == 1 and "cards --update" in capsys.readouterr().out
    assert main(["cards", "--update"]) == 0 and (store / NAME / "README.md").read_text() == card
    (store / NAME / "README.md").write_bytes(b"\xff" + card.encode())  # no UTF-8: stale, written again
    assert main(["cards", "--check"]) == 1 and f"{NAME}" in capsys.readouterr().out
    assert main(["cards", "--update"]) == 0 and (store / NAME / "README.md").read_text() == card
    assert main(["cards", NAME]) == 0 and capsys.readouterr().out.strip().endswith("```")


def test_the_shipped_model_cards_are_generated_from_the_metadata(monkeypatch):
    """zoo/<name>/README.md of this repository (pointed at explicitly: an installed package's store may be
    another folder); the README's figures of what the JPEG data costs are the cards' too."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("RELU_RATIO_ZOO", os.fspath(root / "zoo"))
    assert zoo.card.update(check=True) == [], "run: python -m relu_ratio.zoo cards --update"
    readme = " ".join((root / "README.md").read_text().split())
    reference = zoo.card.REFERENCE
    runs = reference["original_runs"]
    original = f"{reference['original']:.2f} % on the original test set, mean of {runs} runs"
    assert original in readme
    assert f"reaches {reference['jpeg']:.2f} % on these images, CIFAR-10 (JPEG) (one seed" in readme
    assert f"[airbench]({reference['source']})" in readme


def test_table_states_gpu_hours_for_gpu_runs_and_cpu_hours_for_cpu_runs():
    from types import SimpleNamespace

    gpu = SimpleNamespace(training={"device": "gpu: H100 x1", "wall_time_s": 540.0, "cpu_time_s": 900.0})
    cpu = SimpleNamespace(training={"device": "cpu: 2 cores", "wall_time_s": 3600.0, "cpu_time_s": 5400.0})
    old = SimpleNamespace(training={"device": "cpu: 2 cores", "wall_time_s": 3600.0})
    assert zoo.registry.training_time(gpu) == "0.15 h on the GPU (wall clock)"
    assert zoo.registry.training_time(cpu) == "1.50 CPU h"
    assert zoo.registry.training_time(old) == "CPU time not recorded"
    devices = {"gpu: H100 x1": {"wall_time_s": 540.0, "cpu_time_s": 900.0},
               "cpu: 2 cores": {"wall_time_s": 3600.0, "cpu_time_s": 5400.0}}  # fmt: skip
    resumed = SimpleNamespace(training={**gpu.training, "result": {"devices": devices}})
    assert zoo.registry.training_time(resumed) == "0.15 h on the GPU (wall clock) + 1.50 CPU h"


def test_a_card_names_the_keras_backend_of_each_device_a_run_trained_on():
    devices = {"gpu: H200 x1": {"wall_time_s": 540.0, "cpu_time_s": 900.0},
               "cpu: 2 cores": {"wall_time_s": 3600.0, "cpu_time_s": 5400.0, "backends": ["tensorflow"]}}
    training = {"device": "gpu: H200 x1 + cpu: 2 cores", "backend": "tensorflow",
                "result": {"devices": devices}}
    assert zoo.card._where(training) == (
        "gpu: H200 x1 (Keras backend not recorded) + cpu: 2 cores (Keras on tensorflow)")
    devices["gpu: H200 x1"]["backends"] = ["jax"]
    assert zoo.card._where(training) == "gpu: H200 x1 (Keras on jax) + cpu: 2 cores (Keras on tensorflow)"
    del devices["gpu: H200 x1"]["backends"], devices["cpu: 2 cores"]["backends"]  # recorded before backends
    assert zoo.card._where(training) == (  # was "..., Keras backend tensorflow", as if the GPU's had been
        "gpu: H200 x1 + cpu: 2 cores (Keras backend recorded only where it finished: tensorflow)")
    one = {"device": "cpu: 2 cores", "backend": "jax", "result": {"devices": {"cpu: 2 cores": {}}}}
    assert zoo.card._where(one) == "cpu: 2 cores (Keras on jax)"  # as a run that records backends says


def test_a_card_registers_a_run_trained_again_under_a_name_that_clashes_with_no_entry(shipped_zoo):
    """The card of a shipped entry said ``register <run folder> --name resnet20_21``: refused ("already
    exists; pass --force"), and ``--force`` would have replaced the package's own entry. It registers into a
    store of one's own under a tagged name, and says how to read it from there; an entry of one's own store
    registers another run beside it, again under another name; each entry's suggestion is its own (the
    entry's tag kept: ``preact164_32.long`` is not told ``preact164_32.mine``, ``preact164_32``'s)."""
    import shlex

    from relu_ratio.zoo.__main__ import parser

    def register(card: str) -> list[str]:
        (command,) = re.findall(r"`(python -m relu_ratio\.zoo register [^`]*)`", card)
        return shlex.split(command.replace("<run folder>", "runs/mine"))[3:]

    entry = zoo.info("resnet20_21")
    card = zoo.card.render(entry, docs="../../docs")
    args = parser().parse_args(register(card))
    given = (args.run_dir, args.store, args.name, args.force)
    assert given == ("runs/mine", "~/my_zoo", "resnet20_21.mine", False)
    assert "`RELU_RATIO_ZOO=~/my_zoo python -m relu_ratio.zoo evaluate resnet20_21.mine`" in card
    assert "the zoo is that store alone: the package's entries are not seen" in card
    args = parser().parse_args(register(zoo.card.render(entry, own_store=True)))  # the entry's own store
    assert (args.store, args.name, args.force) == (None, "resnet20_21.mine", False)
    for name, suggested in (("resnet20_21.mine", "resnet20_21.mine_mine"),
                            ("resnet20_21.long", "resnet20_21.long_mine")):  # fmt: skip
        tagged = dataclasses.replace(entry, name=name)
        for own_store in (False, True):
            card = zoo.card.render(tagged, own_store=own_store)
            assert parser().parse_args(register(card)).name == suggested


@pytest.mark.tensorflow
def test_saved_model_serves_uint8_and_matches_keras(run, store, tmp_path):
    import tensorflow as tf

    path = zoo.export(NAME, tmp_path / "exported")
    serve = tf.saved_model.load(os.fspath(path)).signatures["serve"]
    assert serve.structured_input_signature[1]["images"].dtype == tf.uint8
    (output,) = serve(images=tf.constant(run["images"])).values()
    expected = zoo.load(NAME).predict(run["images"], verbose=0)
    np.testing.assert_allclose(output.numpy(), expected, atol=1e-5)
    sha = zoo.info(NAME).sha256
    assert (run["root"] / "home" / "saved_models" / f"{NAME}-{sha[:12]}" / "saved_model.pb").is_file()
    loaded = zoo.load_saved_model(NAME)  # from the cache
    np.testing.assert_allclose(loaded.serve(run["images"]).numpy(), expected, atol=1e-5)


def test_saved_model_cache_keeps_the_winner_of_a_race(store, tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(tmp_path))
    final = saved_model.cache_dir() / f"{NAME}-{zoo.info(NAME).sha256[:12]}"

    def racing_write(model, path):  # another process finishes first, while we export
        path.mkdir()
        (path / "saved_model.pb").write_text("ours")
        final.mkdir(parents=True)
        (final / "saved_model.pb").write_text("theirs")

    monkeypatch.setattr(saved_model, "_write_saved_model", racing_write)
    assert saved_model.saved_model_dir(NAME) == final
    assert (final / "saved_model.pb").read_text() == "theirs"
    assert list(final.parent.iterdir()) == [final]  # our staging folder is gone


# That the zoo loads an entry without TensorFlow is checked in the JAX process that also trains without it:
# test_train.py's test_jax_without_tensorflow_loads_the_zoo_trains_and_distributes_on_two_virtual_cpus.


def test_store_falls_back_to_the_repository_zoo(monkeypatch):
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    assert zoo.store_dir() == Path(relu_ratio.__file__).resolve().parents[1] / "zoo"


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_relu_ratio_zoo_is_unset_as_every_setting_of_the_package(blank, monkeypatch):
    """``RELU_RATIO_ZOO=" "`` is no store named " " (which does not exist), as ``RELU_RATIO_DATA`` and the
    others read (paths.setting)."""
    monkeypatch.setenv("RELU_RATIO_ZOO", blank)
    assert zoo.store_dir() == zoo.registry.shipped_store()
    assert zoo.registry.missing_store() is None and zoo.registry.chosen_store() is None


@pytest.mark.backend
@pytest.mark.parametrize("name", real_entries_for_this_backend())
def test_every_real_entry_gives_the_outputs_it_was_registered_with(name, monkeypatch):
    """Read-only walk of the repository's zoo/: hash, pattern, params (checked by load), FLOPs, and on this
    backend the outputs on the 40 reference images recorded when the entry's accuracy was measured."""
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    entry = zoo.info(name)
    model = zoo.load(name)
    assert relu_ratio.describe(model).flops == entry.flops
    assert model.output_shape == (None, entry.classes) and model.input_shape[1:] == entry.input_shape
    report = zoo.reference.compare(model, entry.reference_outputs)
    assert report["max_difference"] <= zoo.reference.TOLERANCE, report


@pytest.mark.slow
def test_the_smallest_real_entry_reproduces_its_registered_accuracy_on_the_whole_test_split(
    monkeypatch, shared_data, decoded_data_home
):
    """The registered accuracy again from the data, end to end, for the cheapest entry (``zoo evaluate``
    does it for any; the test above holds every entry to the outputs its accuracy was measured with)."""
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    monkeypatch.setenv("RELU_RATIO_HOME", decoded_data_home)
    name = cheapest_entry(zoo.list())
    report = zoo.evaluate(name, data=shared_data)
    assert abs(report["diff_top1"]) <= zoo.registry.TOLERANCE, report


def test_readme_zoo_table_is_generated_from_the_registry(monkeypatch):
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    readme = Path(__file__).resolve().parents[1] / "README.md"  # a deleted marker fails here, not skips
    assert zoo.update_table(readme, check=True), "run: python -m relu_ratio.zoo table --update README.md"


def test_the_training_page_table_is_generated_from_the_registry(monkeypatch):
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    page = Path(__file__).resolve().parents[1] / "docs" / "TRAINING.md"
    assert zoo.update_table(page, check=True), "run: python -m relu_ratio.zoo table --update docs/TRAINING.md"


def test_the_presets_in_the_package_data_record_every_shipped_entry(monkeypatch):
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    assert zoo.presets.read() == {name: zoo.presets.of_entry(zoo.info(name)) for name in zoo.list()}
    assert json.loads(zoo.presets.PRESETS_FILE.read_text())["format_version"] == zoo.presets.FORMAT_VERSION


# resnet20_21, the smallest shipped entry: how the builders spell its network, each finding its weights
SPELLINGS = [
    lambda **kw: models.build("resnet20_21", **kw),
    lambda **kw: models.resnet(20, "2:1", **kw),
    lambda **kw: models.build_family("resnet", 20, "01", **kw),  # the explicit mask
]


# Not marked backend: every comparison here is of two models built and loaded by the same Keras-level code on
# one backend (the builder's spellings against zoo.load); each real entry's outputs under JAX are held to the
# registered ones by test_every_real_entry_gives_the_outputs_it_was_registered_with (17 s of the JAX pass).
def test_a_builder_with_weights_cifar10_is_zoo_load(shipped_zoo):
    images = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    expected = zoo.load("resnet20_21").predict(images, verbose=0)
    for spelling in SPELLINGS:
        model = spelling(weights="cifar10")
        assert isinstance(model, CheckedModel) and model.name == "resnet20_21"
        np.testing.assert_array_equal(model.predict(images, verbose=0), expected)
    transfer = models.build("resnet20_21", weights="cifar10", classes=5, input_shape=(40, 40, 3))
    assert transfer.input_shape == (None, 40, 40, 3) and transfer.output_shape == (None, 5)
    assert transfer.name == "resnet20_21"  # named as without weights, whatever the head
    features = models.build("resnet20_21", weights="cifar10", include_top=False, pooling="avg", name="feat")
    assert features.name == "feat"
    pooled = zoo.load("resnet20_21", include_top=False).predict(images, verbose=0)
    np.testing.assert_array_equal(features.predict(images, verbose=0), pooled)
    assert models.build("resnet20_21", weights="cifar10", include_top=False).output_shape == (None, 8, 8, 64)
    logits = models.build("resnet20_21", weights="cifar10", classifier_activation=None, name="mine")
    assert logits.name == "mine"
    np.testing.assert_allclose(keras.ops.softmax(logits.predict(images, verbose=0)), expected, atol=1e-5)
    same = zoo.load("resnet20_21", classifier_activation=None)  # keras.applications' argument: a TypeError
    np.testing.assert_array_equal(same.predict(images, verbose=0), logits.predict(images, verbose=0))
    with pytest.raises(ValueError, match=r"classifier_activation 'softmx' is not a Keras activation"):
        zoo.load("resnet20_21", classifier_activation="softmx")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: models.resnet(32, "2:1", weights="cifar10"), r"no 'cifar10' weights for resnet32 with"),
        (
            lambda: models.build("resnet20_21", weights="cifar10", width_multiplier=2),
            r"no 'cifar10' weights for resnet20 with relu_pattern '2:1' and width_multiplier 2",
        ),
        (lambda: models.build("preact110_type2", weights="cifar10"), r"preact110 with relu_pattern 'type2'"),
        (lambda: models.build("resnet20_21", weights="imagenet"), r"no 'imagenet' weights"),
    ],
)
def test_a_builder_refuses_weights_the_zoo_does_not_have_naming_those_it_has(shipped_zoo, build, message):
    cifar10 = sorted(entry.name for entry in zoo.registry.entries() if entry.weights_key == "cifar10")
    assert {"preact164_32", "resnet20_21"} <= set(cifar10)  # the shipped store, not an empty one
    have = re.escape(f"'cifar10': {', '.join(cifar10)}")
    with pytest.raises(zoo.ZooError, match=rf"{message}.*Trained networks by weights: {have}[.;]"):
        build()


def test_a_builder_with_weights_cifar10_checks_its_arguments_once(shipped_zoo):
    with pytest.raises(ValueError, match=r"pooling='avg' only applies with include_top=False"):
        models.build("resnet20_21", weights="cifar10", pooling="avg")
    with pytest.raises(ValueError, match=r"weights='cifar10' come with the normalization .* drop normaliz"):
        models.build("resnet20_21", weights="cifar10", normalization=([0, 0, 0], [1, 1, 1]))
    with pytest.raises(ValueError, match=r"trained on \(32, 32, 3\) images"):
        models.build("resnet20_21", weights="cifar10", input_shape=(40, 40, 3))


def test_a_swapped_weights_file_with_rehashed_metadata_is_refused_in_the_shipped_store(monkeypatch, tmp_path):
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    shipped = tmp_path / "shipped"
    shutil.copytree(zoo.registry.shipped_store(), shipped, ignore=shutil.ignore_patterns("__*"))
    # a real shipped entry: the cheapest to build and load (the check is the same for each; the first listed,
    # preact164_11, took most of this test's 15 s)
    name = cheapest_entry(zoo.list())
    entry_dir = shipped / name
    source = models.build(name, **zoo.info(name).architecture["kwargs"])  # other (random) weights
    source.save_weights(entry_dir / "model.weights.h5")
    meta = json.loads((entry_dir / "metadata.json").read_text())
    path = entry_dir / "model.weights.h5"
    meta.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), file_size=path.stat().st_size)
    (entry_dir / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr(zoo.registry, "shipped_store", lambda: shipped)
    with pytest.raises(zoo.IntegrityError, match=rf"not the one this package ships for '{name}'"):
        zoo.load(name)
    monkeypatch.setenv("RELU_RATIO_ZOO", str(shipped))  # the same files as a store of your own: allowed
    monkeypatch.setattr(zoo.registry, "shipped_store", lambda: tmp_path / "elsewhere")
    zoo.load(name)


def _shipped_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped store and of the package's presets that the package takes for its own."""
    shipped = tmp_path / "shipped"
    shutil.copytree(zoo.registry.shipped_store(), shipped, ignore=shutil.ignore_patterns("__*"))
    presets_file = tmp_path / "presets.json"
    shutil.copyfile(zoo.presets.PRESETS_FILE, presets_file)
    monkeypatch.setattr(zoo.presets, "PRESETS_FILE", presets_file)
    monkeypatch.setattr(zoo.registry, "shipped_store", lambda: shipped)
    monkeypatch.delenv("RELU_RATIO_ZOO", raising=False)
    return shipped


def test_an_edited_presets_file_is_refused_in_the_shipped_store(tmp_path, monkeypatch):
    _shipped_copy(tmp_path, monkeypatch)
    raw = json.loads(zoo.presets.PRESETS_FILE.read_text())
    raw["presets"]["resnet20_21"]["sha256"] = "0" * 64
    zoo.presets.PRESETS_FILE.write_text(json.dumps(raw))
    refused = r"not the one this package ships for 'resnet20_21' \(.*presets.json: resnet20_21/model.weig"
    with pytest.raises(zoo.IntegrityError, match=rf"{refused}hts.h5, sha256 0{{64}}\)"):
        zoo.load("resnet20_21")
    with pytest.raises(zoo.IntegrityError, match=refused):
        models.build("resnet20_21", weights="cifar10")
    del raw["presets"]["resnet20_21"]
    zoo.presets.PRESETS_FILE.write_text(json.dumps(raw))
    with pytest.raises(zoo.IntegrityError, match=r"presets.json: no such entry"):
        zoo.load("resnet20_21")
    zoo.presets.PRESETS_FILE.write_text("{")
    with pytest.raises(zoo.MetadataError, match=r"cannot read the package's presets .*Reinstall"):
        zoo.load("resnet20_21")


def test_registering_into_the_shipped_store_writes_the_presets_data_first(run, tmp_path, monkeypatch):
    from relu_ratio.zoo import publish

    shipped = _shipped_copy(tmp_path, monkeypatch)
    monkeypatch.setattr(publish, "shipped_store", lambda: shipped)
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    before = zoo.presets.PRESETS_FILE.read_bytes()
    sources = {p: p.read_bytes() for p in Path(zoo.__file__).parent.glob("*.py")}

    def fails(*args):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(publish, "_publish", fails)
        with pytest.raises(OSError, match="disk full"):
            zoo.register(run["dir"])
    assert zoo.presets.PRESETS_FILE.read_bytes() == before  # rolled back
    entry = zoo.register(run["dir"])
    written = json.loads(zoo.presets.PRESETS_FILE.read_text())["presets"]  # data, not Python
    assert written[NAME] == dataclasses.asdict(zoo.presets.of_entry(entry))
    assert (written[NAME]["file"], written[NAME]["sha256"]) == (f"{NAME}/model.weights.h5", entry.sha256)
    assert {name: json.loads(before)["presets"][name] for name in written if name != NAME} == {
        name: preset for name, preset in written.items() if name != NAME
    }
    assert {p: p.read_bytes() for p in sources} == sources  # no package code rewritten
    zoo.load(NAME)  # the shipped store's check passes with the new presets


# --- zoo.load and evaluate: bad arguments, another input size, data of the wrong image size --------------


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "message"),
    [
        (REAL, {"input_shape": (28, 28, 3)}, ValueError, r"trained on \(32, 32, 3\).*Resize the images"),
        (REAL, {"input_shape": (32, 32, 1)}, ValueError, r"takes 3 channel\(s\)"),
        (REAL, {"input_shape": (32, 32)}, ValueError, r"\(height, width, channels\)"),
        (REAL, {"input_shape": (2, 2, 3), "include_top": False}, ValueError, "too small"),
        (REAL, {"pooling": "max"}, ValueError, r"pooling='max' only applies with include_top=False"),
        (REAL, {"classes": 1}, ValueError, r"classes must be an integer >= 2 \(a softmax over one class"),
        (REAL, {"classes": 10**9}, ValueError, r"beyond relu_ratio.models.MAX_CLASSES"),
        (REAL, {"include_top": False, "pooling": "mean"}, ValueError, r"None, 'avg' or 'max'"),
        (REAL, {"include_top": "yes"}, ValueError, r"include_top must be True or False"),
        (REAL, {"classes": 0}, ValueError, r"classes must be an integer >= 2"),
        (REAL, {"classes": True}, ValueError, r"classes must be an integer >= 2"),
        (REAL, {"weight_decay": -1}, ValueError, r"weight_decay must be a finite number >= 0"),
        # keras.applications' arguments that load does not take say what does it (was Python's bare TypeError)
        (REAL, {"weights": None}, TypeError, r"zoo.load takes no weights \(received weights=None\): it "
                                             rf"always loads .*untrained: relu_ratio.models.build\('{REAL}'"),
        (REAL, {"input_tensor": 0}, TypeError, rf"call the model on a tensor instead: zoo.load\('{REAL}'\)"),
        (REAL, {"classifier": 1}, TypeError, r"takes no classifier \(received classifier=1\): it takes name, "
                                             "include_top, classes, pooling, input_shape"),
        ("resnet8_99", {}, zoo.UnknownModelError, r"no zoo entry named 'resnet8_99'"),
        ("resnet9_21", {}, zoo.UnknownModelError, r"did you mean"),
        # the entry's network spelled another way names that entry, not the nearest spellings
        ("resnet8_type1", {}, zoo.UnknownModelError, r"is the network of 'resnet8_21': load it"),
        ("resnet8_type1.e30", {}, zoo.UnknownModelError, r"did you mean"),  # no entry with that tag
        (None, {}, zoo.UnknownModelError, r"no zoo entry named None"),
        (42, {}, zoo.UnknownModelError, r"no zoo entry named 42"),
    ],
)
def test_bad_zoo_load_arguments_raise_clear_errors(toy_zoo, name, kwargs, error, message, monkeypatch):
    monkeypatch.setattr(keras, "Input", lambda *args, **kwargs: pytest.fail("began to build the model"))
    with pytest.raises(error, match=message) as raised:  # before anything is built
        zoo.load(name, **kwargs)
    if "is the network of" in message:  # named as that entry, not among the nearest spellings
        assert "did you mean" not in str(raised.value)


@pytest.mark.backend
def test_zoo_load_at_another_input_size_without_the_registered_classifier(toy_zoo):
    features = zoo.load(REAL, include_top=False, input_shape=(64, 48, 3))
    assert features.input_shape == (None, 64, 48, 3) and features.output_shape == (None, 64)
    transfer = zoo.load(REAL, classes=5, input_shape=(48, 48, 3))
    assert transfer.output_shape == (None, 5)
    assert zoo.load(REAL, input_shape=SHAPE).output_shape == (None, 10)  # the registered shape is fine
    # ten classes of one's own at another size: a new classifier (the trained one at the registered size)
    ten = zoo.load(REAL, classes=10, input_shape=(48, 48, 3))
    trained = zoo.load(REAL, classes=10)
    assert ten.output_shape == trained.output_shape == (None, 10)
    assert not np.allclose(*[keras.ops.convert_to_numpy(m.layers[-1].kernel) for m in (ten, trained)])


def test_evaluate_without_the_data_says_how_to_give_it(shipped_zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELU_RATIO_DATA", os.fspath(tmp_path / "nowhere"))
    assert main(["evaluate", cheapest_entry(zoo.list())]) == 2
    message = "nowhere' ($RELU_RATIO_DATA) does not exist: pass --data or correct $RELU_RATIO_DATA"
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    monkeypatch.delenv("RELU_RATIO_DATA")
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")  # a clone without ../shared/data beside it
    assert main(["evaluate", cheapest_entry(zoo.list())]) == 2
    message = "'../shared/data' (the default: no $RELU_RATIO_DATA) does not exist: pass --data or set"
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_tensorflow_datasets_name_of_other_classes_is_refused_before_it_loads(
    toy_zoo, run, tmp_path, monkeypatch
):
    """Before, a first load of 'cifar100' downloaded it (3.5 minutes offline) to refuse its classes."""
    monkeypatch.setattr(data, "_load_tfds", lambda *args: pytest.fail("loaded the dataset"))
    classes = r"'cifar100' has 100 classes \(tensorflow-datasets\), but"
    with pytest.raises(zoo.ZooError, match=rf"{classes} 'resnet8_21' has 10: give data of 10"):
        zoo.evaluate(REAL, data="cifar100")
    with pytest.raises(zoo.ZooError, match=rf"{classes} the model of the run in .* has 3"):
        zoo.register(run["dir"], store=tmp_path / "store", data="cifar100")
    assert not (tmp_path / "store" / NAME).exists()


def test_evaluate_names_a_dataset_of_the_wrong_image_size(toy_zoo, tmp_path):
    folder = write_image_folder(tmp_path / "ds", classes=data.CIFAR10_CLASSES, per_class=1, size=(28, 28))
    with pytest.raises(zoo.ZooError, match=r"cannot be evaluated with 'resnet8_21'.*\(10, 28, 28, 3\)"):
        zoo.evaluate(REAL, data=folder)


def test_the_zoo_functions_name_an_argument_of_the_wrong_type(toy_zoo):
    with pytest.raises(ValueError, match=r"verbose must be one of 0, 1, 2, 'auto' \(Keras' progress "
                                         r"display\); received 'x'"):  # fmt: skip
        zoo.evaluate(REAL, verbose="x")
    calls = {"data": lambda: zoo.evaluate(REAL, data=5), "the export path": lambda: zoo.export(REAL, None),
             "page": lambda: zoo.registry.markdown_table(5)}  # fmt: skip
    for what, call in calls.items():
        with pytest.raises(TypeError, match=rf"{what} must be a path \(a str or os.PathLike\); received"):
            call()


# --- the SavedModel cache and exports: a full disk, a damaged cache, two processes at once --------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_full_saved_model_cache_is_named_and_leaves_no_temp_folder(toy_zoo, monkeypatch, capsys, tmp_path,
                                                                     code):
    def full(model, path):
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\0" * 4096)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(saved_model, "_write_saved_model", full)
    message = rf"cannot write the cache in .*saved_models.*{os.strerror(code)}.*RELU_RATIO_HOME"
    with pytest.raises(files.CacheError, match=message) as err:
        saved_model.saved_model_dir(REAL)
    assert err.value.errno == code
    assert list((toy_zoo / "saved_models").iterdir()) == []
    assert main(["export", REAL, os.fspath(tmp_path / "m")]) == 2  # the CLI: one error line, exit 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after the line that says what is being exported
    assert last.startswith("error: cannot write the cache in") and err.count("error:") == 1, err
    assert not (tmp_path / "m").exists() and list((toy_zoo / "saved_models").iterdir()) == []


@pytest.mark.tensorflow
def test_tensorflow_file_errors_become_cache_errors(toy_zoo, monkeypatch):
    import tensorflow as tf

    def full(self, *args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    archive = type(keras.export.ExportArchive())  # the backend's subclass, whose write_out is called
    monkeypatch.setattr(archive, "write_out", full)
    with pytest.raises(files.CacheError, match="No space left on device"):
        saved_model.saved_model_dir(REAL)
    assert list((toy_zoo / "saved_models").iterdir()) == []


def test_a_full_export_target_is_named_and_leaves_nothing(toy_zoo, tmp_path, monkeypatch):
    def fake_export(model, path):  # a cached SavedModel, without TensorFlow
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"pb")

    monkeypatch.setattr(saved_model, "_write_saved_model", fake_export)
    saved_model.saved_model_dir(REAL)

    def full_copy(source, target, **kwargs):
        Path(target).mkdir()
        (Path(target) / "saved_model.pb").write_bytes(b"p")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(saved_model.shutil, "copytree", full_copy)
    out = tmp_path / "exports"
    with pytest.raises(OSError, match=r"cannot export 'resnet8_21' to .*exports/m: No space left"):
        zoo.export(REAL, out / "m")
    assert list(out.iterdir()) == []


def test_export_names_a_bad_name_or_target_before_building_anything(toy_zoo, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(saved_model, "_write_saved_model", lambda *args: pytest.fail("built the SavedModel"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match=r"cannot write to the export folder .*a-file.* is not a folder"):
        zoo.export(REAL, tmp_path / "a-file" / "m")
    assert main(["export", REAL, os.fspath(tmp_path / "a-file" / "m")]) == 2  # the CLI: one line
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write to the export folder") and err.count("\n") == 1, err
    assert main(["export", "nope", os.fspath(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "no zoo entry named 'nope'" in err and "exporting" not in err and not (tmp_path / "m").exists()
    with pytest.raises(TypeError, match=r"takes a zoo entry's name; received the model .*: export a model "
                       r"of your own with model.export\(path\)"):  # fmt: skip
        zoo.export(zoo.load(REAL), tmp_path / "m")  # was "no zoo entry named <Functional name=...>"
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # an empty current folder: "" and "." failed late with Errno 22
    cases = (("", r"the export path is empty or blank \(''\); give a new folder"),
             ("  ", r"the export path is empty or blank \('  '\); give a new folder"),
             (".", r"\. is the current folder \("),
             ("x/..", r"x/\.\. is the current folder \(.*here\), which an export cannot"))  # fmt: skip
    for path, said in cases:
        with pytest.raises(ValueError, match=said):
            zoo.export(REAL, path)
        assert main(["export", REAL, path]) == 2
        err = capsys.readouterr().err
        assert re.search(said, err) and err.count("\n") == 1 and "exporting" not in err, err
    assert list((tmp_path / "here").iterdir()) == []


@pytest.mark.tensorflow
def test_a_damaged_saved_model_cache_is_exported_again_not_copied(toy_zoo, tmp_path):
    import tensorflow as tf

    cached = saved_model.saved_model_dir(REAL)
    variables = next((cached / "variables").glob("*.data-*"))
    variables.write_bytes(variables.read_bytes()[:100])  # damaged in the cache after it was written
    with pytest.warns(UserWarning, match="is damaged; exporting it again"):
        target = zoo.export(REAL, tmp_path / "exported")
    served = tf.saved_model.load(os.fspath(target))
    expected = zoo.load(REAL).predict(RAW, verbose=0)
    np.testing.assert_allclose(served.serve(RAW.astype("float32")).numpy(), expected, atol=1e-5)
    assert not (target / saved_model.DIGEST).exists()


EXPORT = (
    BARRIER
    + """
from relu_ratio.zoo import saved_model
write = saved_model._write_saved_model
def write_then_wait(model, path):
    write(model, path)
    wait_for_the_other()  # both have exported; both now rename into the same cache entry
saved_model._write_saved_model = write_then_wait
print("exported", saved_model.saved_model_dir(sys.argv[2]))
"""
)


@pytest.mark.tensorflow
def test_two_processes_export_the_same_zoo_entry_into_one_cache(tmp_path):
    import tensorflow as tf

    outputs = two_processes(EXPORT, REAL, tmp_path, backend="tensorflow")
    assert outputs[0] == outputs[1]
    (entry,) = (tmp_path / "home" / "saved_models").iterdir()  # one copy, no temporary folders
    served = tf.saved_model.load(os.fspath(entry))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELU_RATIO_ZOO", FIXTURE_ZOO)
        expected = zoo.load(REAL).predict(RAW, verbose=0)
    np.testing.assert_allclose(served.serve(RAW).numpy(), expected, atol=1e-5)
