"""Read side of the zoo: find the store, list and describe entries, load verified models, evaluate them."""

from __future__ import annotations

import fnmatch
import importlib.resources
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import h5py
import keras
import numpy as np

from relu_ratio import blocks, files, models, paths
from relu_ratio import data as data_lib
from relu_ratio.describe import describe
from relu_ratio.inputs import CheckedModel, ImageInputError
from relu_ratio.patterns import PatternSpec, ReLUPattern
from relu_ratio.train.devices import DEVICE_SEPARATOR, is_gpu
from relu_ratio.train.metrics import top_k_hits
from relu_ratio.user_warning import warn
from relu_ratio.validators import suggest
from relu_ratio.zoo import presets
from relu_ratio.zoo.entry import (
    CIFAR10_JPEG,
    METADATA_FILE,
    IntegrityError,
    MetadataError,
    UnknownModelError,
    WeightsNotStoredError,
    ZooEntry,
    ZooError,
    split_name,
)

STORE_PACKAGE = "relu_ratio.zoo_store"  # the repository's zoo/ directory, shipped inside the wheel
TOLERANCE = 0.3  # accuracy points: `evaluate` fails beyond this difference


def store_dir() -> Path:
    """The registry directory: ``$RELU_RATIO_ZOO`` (:func:`chosen_store`), else the shipped store
    (:func:`shipped_store`)."""
    chosen = chosen_store()
    return Path(chosen).expanduser() if chosen else shipped_store()


def chosen_store() -> str | None:
    """``$RELU_RATIO_ZOO``, a store of one's own; ``None`` where it is unset or blank, as every setting of
    the package (:func:`relu_ratio.paths.setting`)."""
    return paths.setting("RELU_RATIO_ZOO")


def missing_store(store: Path | None = None) -> str | None:
    """What is wrong with ``store`` (default: :func:`store_dir`), where it is no folder
    (``$RELU_RATIO_ZOO`` naming a wrong one, say); ``None`` where it is one."""
    chosen = " (chosen by $RELU_RATIO_ZOO)" if store is None and chosen_store() else ""
    store = store_dir() if store is None else store
    if store.is_dir():
        return None
    return f"the store {store}{chosen} {'is not a folder' if store.exists() else 'does not exist'}"


def none_registered() -> str:
    """What a message lists as the registered entries of a store that holds none."""
    missing = missing_store()
    return "none, the zoo is empty" if missing is None else f"none ({missing})"


def shipped_store() -> Path:
    """The store the package ships: the installed ``relu_ratio.zoo_store``, else the repository's ``zoo/``
    (editable installs and checkouts). Its weights are also checked against the package's
    ``presets.json`` (:mod:`relu_ratio.zoo.presets`)."""
    try:
        store = Path(str(importlib.resources.files(STORE_PACKAGE)))
        if store.is_dir():
            return store
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "zoo"


def is_shipped(store: Path) -> bool:
    """Whether the folder ``store`` is the store the package ships (:func:`shipped_store`)."""
    return store.resolve() == shipped_store().resolve()


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models; with ``pattern`` (fnmatch, ``"preact*"``) those matching it."""
    if pattern is not None and not isinstance(pattern, str):
        raise TypeError(f"pattern must be an fnmatch string such as 'preact*'; received {pattern!r}.")
    names = _entry_names(store_dir())
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def _entry_names(store: Path) -> list[str]:
    """Sorted names of the entries in the folder ``store`` (none where it is no folder)."""
    found = store.iterdir() if store.is_dir() else ()
    return sorted(p.name for p in found if not p.name.startswith(".") and (p / METADATA_FILE).is_file())


def entry_dir(name: str) -> Path:
    """``<store>/<name>``; raises :class:`UnknownModelError` with suggestions if there is no such entry."""
    names = list_models()
    if not isinstance(name, str) or name not in names:
        same = _same_network(name, names)
        if same:
            hint = f" ({name!r} is the network of {' and '.join(map(repr, same))}: load it by that name)"
        else:
            hint = suggest(name, names, n=3)
        missing = missing_store()
        where = f"No entries: {missing}" if missing else (
            f"Registered in {store_dir()}: {', '.join(names) or none_registered()}")  # fmt: skip
        raise UnknownModelError(f"no zoo entry named {name!r}{hint}. {where}.")
    return store_dir() / name


def _same_network(name: object, names: list[str]) -> list[str]:
    """The entries of ``names`` whose network ``name`` spells another way, with the same tag:
    ``preact164_type1`` is ``preact164_32``'s network (masks ``011``). None where ``name`` is no network's
    name or an entry's metadata cannot be read (the error that asks is about ``name``, not that entry)."""
    try:
        base, tag = split_name(name)
        family, depth, pattern = models.parse_name(base)
        wanted = _network_of(family, depth, pattern)
        listed = [_read_entry(store_dir() / n) for n in names]
    except (ValueError, OSError):  # ZooError is a ValueError
        return []
    return [e.name for e in listed if split_name(e.name)[1] == tag and _network(e) == wanted]


def info(name: str) -> ZooEntry:
    """The schema-checked metadata of entry ``name``."""
    return _read_entry(entry_dir(name))


def entries() -> list[ZooEntry]:
    """The schema-checked metadata of every entry, in name order (the store listed once, not per entry);
    :class:`ZooError` where the store is no folder (:func:`stored_names`)."""
    return [_read_entry(store_dir() / name) for name in stored_names()]


def readable_entries(store: Path | None = None) -> tuple[list[ZooEntry], list[str]]:
    """:func:`entries` of ``store`` (default: :func:`store_dir`), except that an entry whose metadata cannot
    be read is left out: ``(entries, what was left out)``, the second as ``"<name>: <why>"``. For a lookup
    among the entries, which one damaged entry should not stop (:func:`preset_entry`, the training queue's
    :func:`relu_ratio.queue.registered`); the tables, which show every entry, use :func:`entries`."""
    folder = store_dir() if store is None else store
    readable, damaged = [], []
    for name in stored_names(store):
        try:
            readable.append(_read_entry(folder / name))
        except ZooError as error:
            damaged.append(f"{name}: {error}")
    return readable, damaged


def stored_names(store: Path | None = None) -> list[str]:
    """:func:`list_models` of a store that must be there (default: :func:`store_dir`): :class:`ZooError`
    where it is no folder (a mistyped ``$RELU_RATIO_ZOO``), so that no table or card is written or checked,
    and no preset looked up, from a store that is not there (an empty list would pass)."""
    missing = missing_store(store)
    if missing:
        raise ZooError(f"no zoo entries: {missing}.")
    return _entry_names(store_dir() if store is None else store)


def _read_entry(folder: Path) -> ZooEntry:
    """:meth:`ZooEntry.read` of the store's folder ``folder``, which must describe the entry it is named
    after (:class:`MetadataError`)."""
    entry = ZooEntry.read(folder)
    if entry.name != folder.name:
        raise MetadataError(f"{folder / METADATA_FILE} describes {entry.name!r}, but lies in the folder of "
                            f"{folder.name!r}.")  # fmt: skip
    return entry


def verified_weights(entry: ZooEntry) -> Path:
    """The entry's weights file, after checking that it exists and has the registered size and sha256
    (:class:`WeightsNotStoredError` for an entry registered without it, not fetched yet)."""
    path = entry_dir(entry.name) / entry.weights_file
    if not has_weights(entry):
        raise WeightsNotStoredError(not_stored(entry, path))
    if not path.is_file():
        raise IntegrityError(f"weights file of {entry.name!r} is missing: {path}.")
    in_git = entry.weights_git_object is not None
    mend = f" Fetch it again: python -m relu_ratio.zoo fetch {entry.name}." if in_git else ""
    size = path.stat().st_size
    if size != entry.file_size:
        raise IntegrityError(
            f"weights file {path} is {size:,} bytes, expected {entry.file_size:,} (truncated or "
            f"replaced).{mend}"
        )
    actual = files.sha256(path)
    if actual != entry.sha256:
        raise IntegrityError(
            f"weights file {path} does not match its registered hash (tampered or corrupt): "
            f"expected sha256 {entry.sha256}, actual {actual}.{mend}"
        )
    if store_dir().resolve() == shipped_store().resolve():
        shipped = presets.read().get(entry.name)
        expected = (f"{entry.name}/{entry.weights_file}", actual)
        if shipped is None or (shipped.file, shipped.sha256) != expected:
            recorded = f"{shipped.file}, sha256 {shipped.sha256}" if shipped else "no such entry"
            raise IntegrityError(
                f"weights file {path} (sha256 {actual}) is not the one this package ships for {entry.name!r} "
                f"({presets.PRESETS_FILE}: {recorded}): the file and its metadata were replaced together, "
                "or the presets file was edited. Reinstall the package, or register models in your own "
                "store ($RELU_RATIO_ZOO)."
            )
    return path


def has_weights(entry: ZooEntry) -> bool:
    """Whether the store holds ``entry``'s weights file, or should: false only for an entry registered
    without it (:attr:`ZooEntry.weights_git_object`) whose file has not been fetched (``zoo fetch``). A
    missing file of another entry is damage, which :func:`load` reports."""
    return not entry.weights_git_object or (store_dir() / entry.name / entry.weights_file).is_file()


def with_weights(names: list[str]) -> list[str]:
    """The entries of ``names`` whose weights the store holds (:func:`has_weights`), e.g. to load each."""
    return [name for name in names if has_weights(info(name))]


def not_stored(entry: ZooEntry, path: Path) -> str:
    """What :class:`WeightsNotStoredError` says of ``entry``, whose weights file ``path`` is not there."""
    store, shipped = path.parent.parent, is_shipped(path.parent.parent)
    why = ", to keep the package small" if shipped else ""
    where = ("--store <folder>, then set RELU_RATIO_ZOO to that folder" if shipped
             else f"--store {store} --force")  # fmt: skip
    register = (f"register the run {'in a store of your own' if shipped else 'here again'} (python -m "
                f"relu_ratio.zoo register <run folder> --name {entry.name} {where})")  # fmt: skip
    return (
        f"the weights of zoo entry {entry.name!r} ({entry.training['epochs']} epochs, {entry.top1:.2f} % "
        f"top-1) are not in the store {store}: it holds the entry's metadata and model card, not its weights "
        f"file{why}. Fetch the file from the history of the repository that holds the store (checked against "
        f"its sha256): python -m relu_ratio.zoo fetch {entry.name}. Or train it again "
        f"({entry.training['command']}) and {register}."
    )


def explicit_pattern(builder_name: str) -> str | list[list[str]]:
    """The explicit ReLU mask(s) that :func:`relu_ratio.models.build` gives ``builder_name``."""
    family, depth, pattern = models.parse_name(builder_name)
    spec = models.FAMILIES[family]
    return ReLUPattern(pattern).explicit(spec.kind, spec.blocks_per_stage(depth))


def build_with_weights(
    architecture: dict, weights: str | os.PathLike, label: str, *, named: str | os.PathLike | None = None
) -> keras.Model:
    """Rebuild ``architecture`` and load ``weights`` into it; any misfit raises :class:`IntegrityError`,
    naming the file ``named`` (default ``weights``: ``named`` is the user's file where ``weights`` is a
    copy of it)."""
    named = weights if named is None else named
    try:
        model = models.build(architecture["builder_name"], **architecture["kwargs"])
    except (TypeError, ValueError) as error:
        raise ZooError(f"{label}: cannot rebuild architecture {architecture}: {error}") from error
    try:
        with h5py.File(weights, "r") as file:
            stored = _arrays(file)
    except OSError as error:
        raise IntegrityError(f"{label}: cannot read weights file {named}: {error}") from error
    expected = sorted((tuple(w.shape), _kind(w.dtype)) for w in model.weights)
    if sorted(stored) != expected:
        raise IntegrityError(
            f"{label}: weights file {named} does not fit {architecture['builder_name']} "
            f"({len(stored)} arrays stored, {len(expected)} expected; shapes and kinds (float, int) must "
            "match)."
        )
    try:
        models.load_weights_file(model, weights)
        models.check_normalization(model, weights)  # which the file cannot hold: its presence it can
    except (ValueError, OSError, KeyError) as error:
        raise IntegrityError(
            f"{label}: weights file {named} does not fit {architecture['builder_name']}: {error}"
        ) from error
    return model


def _kind(dtype) -> str:
    """``"float"`` for any floating dtype (weights are stored in float16 and loaded into float32), else the
    dtype's name."""
    return "float" if np.dtype(dtype).kind == "f" else np.dtype(dtype).name


def _arrays(group: h5py.Group) -> list[tuple[tuple[int, ...], str]]:
    arrays = []
    for item in group.values():
        if isinstance(item, h5py.Dataset):
            arrays.append((tuple(item.shape), _kind(item.dtype)))
        else:
            arrays.extend(_arrays(item))
    return arrays


def load(
    name: str,
    include_top: bool = True,
    classes: int | None = None,
    pooling: str | None = "avg",
    input_shape: tuple[int | None, int | None, int] | None = None,
    weight_decay: float = 0.0,
    classifier_activation: str | Callable | None = "softmax",
    **others: object,
) -> keras.Model:
    """Load pretrained model ``name``, verifying its weights' size and sha256 first, on every call.

    The one-line spelling of ``models.build(entry.builder_name, weights=entry.weights_key, ...)``
    (``zoo.load("resnet20_21")`` is ``models.build("resnet20_21", weights="cifar10")``), which it calls.
    The model takes raw images (uint8 or float 0-255; the normalisation is built in) and outputs class
    probabilities. It is a :class:`relu_ratio.inputs.CheckedModel`, a functional ``keras.Model`` whose
    ``predict``/``evaluate``/``fit``/``__call__`` refuse numpy images of the wrong shape or dtype, with
    NaNs, outside 0-255, or scaled to [0, 1] (``model.check_inputs = False`` turns that off). Like
    ``keras.applications`` it is returned **uncompiled**: call ``model.compile(...)`` before
    ``fit``/``evaluate``; ``predict`` works as is.

    Args:
        name: a name from :func:`list_models`.
        include_top: keep the classifier; ``False`` returns a feature extractor.
        classes: with ``include_top=True``, a new, randomly initialised classifier on top of the
            pretrained features (transfer learning: compile and fit), unless it is the entry's number of
            classes at its registered ``input_shape``: that keeps the trained classifier.
        pooling: with ``include_top=False``: ``"avg"`` (the model's own pooled features), ``"max"`` or
            ``None`` (the last feature map). The top always average-pools (``"avg"`` or ``None`` with it).
        input_shape: ``(height, width, channels)``; other sizes than the registered one (the networks are
            fully convolutional) need ``include_top=False`` or ``classes=`` (a new classifier, for any
            number of classes), as in ``keras.applications``; the channels must match.
        weight_decay: coupled L2 on the kernels, for fine-tuning (the builders' argument: the recipes'
            weight decay is set where the model is built, not by the optimizer); 0 by default.
        classifier_activation: the activation of the classifier, as in ``keras.applications``: ``None``
            gives logits (for a loss with ``from_logits=True``).

    Raises:
        UnknownModelError, MetadataError, IntegrityError: the entry is unknown, its metadata is broken, or
            its weights are missing, tampered with or do not fit. A wrong model is never returned.
        WeightsNotStoredError: the entry was registered without its weights file; the message says how to
            fetch it from the repository's history (``zoo fetch``), or train it again.
        ValueError: an argument, or a combination of them, that does not apply.
        TypeError: an argument ``load`` does not take (``keras.applications``' ``weights`` and
            ``input_tensor`` say what to do instead).

    Example:
        >>> model = zoo.load("resnet20_21", classes=100, weight_decay=5e-4)  # doctest: +SKIP
    """
    if others:
        raise TypeError(_not_taken(name, *next(iter(others.items()))))
    entry = info(name)
    kwargs = entry.architecture["kwargs"]
    return models.build(
        entry.builder_name,
        weights=entry.weights_key,
        include_top=include_top,
        classes=classes,
        pooling=None if include_top and pooling == "avg" else pooling,  # the top average-pools anyway
        input_shape=input_shape,
        classifier_activation=classifier_activation,
        width_multiplier=kwargs.get("width_multiplier", 1.0),
        weight_decay=weight_decay,
    )


def _not_taken(name: str, argument: str, value: object) -> str:
    """Why :func:`load` refuses ``argument=value``, and what does that instead."""
    instead = {
        "weights": f"it always loads the entry's trained weights; for the network untrained: "
                   f"relu_ratio.models.build({name!r}), whose weights are None by default",
        "input_tensor": f"it builds its own input; call the model on a tensor instead: "
                        f"zoo.load({name!r})(tensor)",
    }  # fmt: skip
    takes = ", ".join(parameter for parameter in inspect.signature(load).parameters if parameter != "others")
    return (f"zoo.load takes no {argument} (received {argument}={value!r}): "
            f"{instead.get(argument, f'it takes {takes}')}.")  # fmt: skip


def from_preset(
    family: str,
    depth: int,
    relu_pattern: PatternSpec,
    weights: str,
    *,
    include_top: bool,
    classes: int | None,
    pooling: str | None,
    input_shape: tuple[int | None, int | None, int] | None,
    width_multiplier: float,
    normalization: object,
    overrides: dict,
) -> CheckedModel:
    """What a builder returns for ``weights="cifar10"`` (a :attr:`ZooEntry.weights_key`): the store's entry
    for that network (family, depth, ReLU masks, width) with those weights, verified and loaded, with the
    head asked for. :func:`relu_ratio.models.build_family` has checked the arguments (one head check:
    :func:`relu_ratio.models.check_head`); ``overrides`` are its arguments that no weight depends on
    (``classifier_activation``, ``weight_decay``, ``name``).

    Example:
        >>> from relu_ratio import models
        >>> model = models.resnet(20, "2:1", weights="cifar10")          # doctest: +SKIP
    """
    if normalization is not None:
        raise ValueError(
            f"weights={weights!r} come with the normalization they were trained with (built in: the model "
            f"takes raw 0-255 images); drop normalization={normalization!r}."
        )
    entry = preset_entry(family, depth, relu_pattern, weights, width_multiplier)
    shape = _input_shape(entry, input_shape, include_top and classes is None)
    kwargs = {**entry.architecture["kwargs"], **overrides}
    if shape is not None:
        kwargs["input_shape"] = shape
    model = _verified_model(entry, kwargs)
    features = model.get_layer("avg_pool")
    if not include_top:
        out = features.output if pooling == "avg" else features.input
        if pooling == "max":
            out = blocks.global_pooling("max")(out)
        return CheckedModel(model.input, out, name=model.name)  # the entry's name or name=, whatever the head
    if classes is None or (classes == entry.classes and shape is None):  # the classifier that was measured
        return CheckedModel.from_model(model)
    activation = kwargs.get("classifier_activation", "softmax")
    head = models.classifier(classes, activation, kwargs.get("weight_decay", 0.0))
    return CheckedModel(model.input, head(features.output), name=model.name)


def preset_entry(
    family: str, depth: int, relu_pattern: PatternSpec, weights: str, width_multiplier: float = 1.0
) -> ZooEntry:
    """The entry with ``weights`` (a :attr:`ZooEntry.weights_key`) for the network ``family``/``depth``/
    ``relu_pattern``/``width_multiplier`` (matched by its explicit ReLU masks, so ``"3:2"``, ``"type1"``
    and ``"011"`` find the same entry; where two entries have that network, the one spelled alike).

    An entry whose metadata cannot be read is left out of the search, with a warning that names it (it
    may have been the one wanted, or a second one with that network).

    Raises:
        ZooError: no such entry, naming the networks that have weights and their keys.
    """
    wanted = _network_of(family, depth, relu_pattern, width_multiplier)
    listed, damaged = readable_entries()
    found = [e for e in listed if e.weights_key == weights and _network(e) == wanted]
    spelled = f"{family}{depth}_{relu_pattern.replace(':', '')}" if isinstance(relu_pattern, str) else None
    found = [e for e in found if e.builder_name == spelled] or found
    call = f"{family}{depth} with relu_pattern {relu_pattern!r}"
    if width_multiplier != 1.0:
        call += f" and width_multiplier {width_multiplier!r}"
    if damaged:
        warn(f"looking up weights={weights!r} for {call}, the zoo entries that cannot be read were left "
             f"out: {'; '.join(damaged)}")  # fmt: skip
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(e.name for e in found)
        raise ZooError(f"weights={weights!r} for {call} is ambiguous: {names}; load one with zoo.load(name).")
    keys = sorted({e.weights_key for e in listed})
    have = "; ".join(
        f"{key!r}: " + ", ".join(sorted(e.builder_name for e in listed if e.weights_key == key))
        for key in keys
    )
    raise ZooError(
        f"no {weights!r} weights for {call} in the zoo ({store_dir()}). Trained networks by weights: "
        f"{have or none_registered()}. Build one of those (e.g. models.build(name, weights=key)), or "
        "pass weights=None (random) or the path of a '.weights.h5' file."
    )


def _network_of(family: str, depth: int, relu_pattern: PatternSpec, width_multiplier: float = 1.0) -> tuple:
    """``(family, depth, explicit ReLU masks, width_multiplier)``: one network however its pattern is
    spelled (``"3:2"``, ``"type1"``, ``"011"``)."""
    spec = models.family_spec(family)
    masks = ReLUPattern(relu_pattern).explicit(spec.kind, spec.blocks_per_stage(depth))
    return family, depth, masks, width_multiplier


def _network(entry: ZooEntry) -> tuple:
    """``(family, depth, explicit ReLU masks, width_multiplier)`` of ``entry``, as :func:`preset_entry`
    matches them."""
    family, depth, _ = models.parse_name(entry.builder_name)
    return family, depth, entry.relu_pattern, entry.architecture["kwargs"].get("width_multiplier", 1.0)


def _input_shape(entry: ZooEntry, shape, registered_head: bool) -> tuple[int | None, int | None, int] | None:
    """``None`` for the registered shape, else the (checked) ``shape``."""
    if shape is None or tuple(shape) == tuple(entry.input_shape):
        return None
    if shape[-1] != entry.input_shape[-1]:
        raise ValueError(
            f"zoo entry {entry.name!r} takes {entry.input_shape[-1]} channel(s), so input_shape "
            f"{shape} cannot work; keep {entry.input_shape[-1]} channels (e.g. convert images to RGB)."
        )
    if registered_head:
        raise ValueError(
            f"zoo entry {entry.name!r} was trained on {tuple(entry.input_shape)} images; a classifier "
            f"at input_shape {shape} is not what was measured. Resize the images, or pass "
            "include_top=False or a new classifier (classes=...) for other sizes."
        )
    return tuple(shape)


def _verified_model(entry: ZooEntry, kwargs: dict) -> keras.Model:
    """``entry``'s network built with ``kwargs`` (its own, some replaced) and its verified weights."""
    weights = verified_weights(entry)
    label = f"zoo entry {entry.name!r}"
    current = explicit_pattern(entry.builder_name)
    if current != entry.relu_pattern:
        raise IntegrityError(
            f"{label}: relu_ratio.models now builds {entry.builder_name} with ReLU pattern {current!r}, "
            f"but the weights were trained with {entry.relu_pattern!r}."
        )
    model = build_with_weights({"builder_name": entry.builder_name, "kwargs": kwargs}, weights, label)
    params = describe(model).params
    if params != entry.params:
        raise IntegrityError(
            f"{label}: rebuilt model has {params:,} parameters, registered {entry.params:,}."
        )
    return model


def accuracy(
    model: keras.Model, split: data_lib.Split, batch_size: int = 256, verbose: int | str = 0
) -> dict[str, float]:
    """Top-1 and top-5 accuracy in percent of a probability-outputting ``model`` on ``split`` (``verbose``:
    :meth:`keras.Model.predict`'s progress display), by :func:`scored_accuracy`."""
    scores = np.asarray(model.predict(data_lib.batches(split, batch_size), verbose=verbose))
    return scored_accuracy(scores, np.asarray(split.labels))


def scored_accuracy(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 and top-5 accuracy in percent of ``scores`` (images x classes) against the class indices
    ``labels``, counted as training counts them (:func:`relu_ratio.train.metrics.top_k_hits`: tied scores
    rank by class index, as a stable sort ranks them; Keras' own top-k counted every class tied with the
    fifth as in the top 5).

    >>> scored_accuracy(np.eye(10)[[0] * 10], np.arange(10))   # collapsed: class 0 at 1.0, the rest tied
    {'top1': 10.0, 'top5': 50.0}
    """
    labels = np.asarray(labels)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"predictions have shape {scores.shape}; expected ({len(labels)}, classes).")
    classes = scores.shape[1]
    data_lib.check_class_indices(labels, len(scores), classes, "the scores")
    one_hot = np.eye(classes, dtype="float32")[labels]

    def percent(k: int) -> float:
        hits = keras.ops.convert_to_numpy(top_k_hits(one_hot, scores, k))
        return round(float(100.0 * np.mean(hits, dtype="float64")), 4)

    return {"top1": percent(1), "top5": percent(5)}


def default_data(entry: ZooEntry) -> str:
    """Where :func:`evaluate` reads ``entry``'s test split: ``$RELU_RATIO_DATA`` or ``../shared/data`` for
    CIFAR-10 (JPEG) (``ValueError`` naming ``--data`` where it does not exist), else the source it was
    registered with."""
    if entry.dataset == CIFAR10_JPEG:
        return data_lib.existing_default_source("--data")
    return entry.data_source


def check_class_count(source: str, classes: int, reader: str) -> None:
    """:func:`relu_ratio.data.check_class_count`, refusing with a :class:`ZooError` as the zoo does."""
    try:
        data_lib.check_class_count(source, classes, reader)
    except ValueError as error:
        raise ZooError(str(error)) from None


VERBOSE = (0, 1, 2, "auto")  # keras.Model.predict's progress displays


def evaluate(name: str, data: str | os.PathLike | None = None, verbose: int | str = 0) -> dict:
    """Measure ``name`` again on its split and compare with the registered metrics (``verbose``: the
    progress display of :meth:`keras.Model.predict`, 0 for none).

    Returns a dict: ``name``, ``data``, ``split``, ``num_images``, ``top1``/``top5`` (measured, %),
    ``registered_top1``/``registered_top5`` and ``diff_top1``/``diff_top5`` (measured - registered), and
    ``registered_num_images``/``registered_data`` (the images the registered figures are of).
    """
    if data is not None:
        files.check_path(data, "data")
    if verbose not in VERBOSE:
        raise ValueError(f"verbose must be one of {', '.join(map(repr, VERBOSE))} (Keras' progress "
                         f"display); received {verbose!r}.")  # fmt: skip
    entry = info(name)
    source = os.fspath(data) if data is not None else default_data(entry)
    check_class_count(source, len(entry.class_names), repr(name))
    split = data_lib.load(source, split=entry.split)
    if tuple(split.info.class_names) != entry.class_names:
        raise ZooError(
            f"{source} ({entry.split}) has classes {split.info.class_names}, but {name!r} was trained on "
            f"{entry.class_names}."
        )
    try:  # the loaded model checks the images itself (CheckedModel); say which dataset did not fit
        measured = accuracy(load(name), split, verbose=verbose)
    except ImageInputError as error:
        raise ZooError(f"{source} ({entry.split}) cannot be evaluated with {name!r}: {error}") from None
    result = {"name": name, "data": source, "split": entry.split, "num_images": len(split),
              "registered_num_images": entry.num_images, "registered_data": entry.data_source}  # fmt: skip
    for key in ("top1", "top5"):
        result[key] = measured[key]
        result[f"registered_{key}"] = float(entry.metrics[key])
        result[f"diff_{key}"] = measured[key] - float(entry.metrics[key])
    return result


def markdown_table(page: str | os.PathLike | None = None) -> str:
    """The README "Model zoo" table, rendered from the registry: one row per entry, its name linking to the
    entry's model card (``zoo/<name>/README.md`` from the repository's README; for a store of one's own,
    ``$RELU_RATIO_ZOO``, relative to the folder of ``page``, the file the table goes into, default: the
    current folder); an entry registered without its weights file says so (its card says how to fetch it).
    The dataset and split stand in the top-1 column's header when every entry shares them, else beside each
    accuracy."""
    if page is not None:
        files.check_path(page, "page")
    listed = entries()
    links_from = Path(page).parent if page is not None else Path.cwd()
    measured_on = {(entry.dataset, entry.split, entry.num_images) for entry in listed}
    shared = next(iter(measured_on)) if len(measured_on) == 1 else None
    top1 = f"top-1, {shared[0]} {shared[1]}" if shared else "top-1"
    header = f"| model | ReLU pattern | {top1} | params | FLOPs / image | epochs |\n" + "| --- " * 6 + "|"
    rows = []
    for entry in listed:
        where = "" if shared else f" ({entry.dataset}, {entry.split}, {entry.num_images:,} images)"
        not_shipped = " (weights not shipped: see its card)" if entry.weights_git_object else ""
        rows.append(
            f"| [`{entry.name}`]({_card_link(entry.name, links_from)}){not_shipped} | "
            f"{pattern_text(entry)} | "
            f"{entry.top1:.2f} %{where} | {entry.params / 1e6:.2f} M | {entry.flops / 1e6:.1f} M | "
            f"{entry.training['epochs']} |"
        )
    if not rows:
        rows.append("| (no entries yet) |" + " |" * 5)
    return "\n".join([header, *rows])


def _card_link(name: str, links_from: Path) -> str:
    """The path of ``name``'s model card: ``zoo/<name>/README.md`` for the shipped store (from the
    repository's README), else from the folder ``links_from`` (absolute where none is: another drive)."""
    store = store_dir()
    if is_shipped(store):
        return f"zoo/{name}/README.md"
    card = (store / name / "README.md").resolve()
    try:
        return Path(os.path.relpath(card, links_from.resolve())).as_posix()
    except ValueError:
        return card.as_posix()


def training_table() -> str:
    """How each entry was trained (docs/TRAINING.md), rendered from the registry: recipe, epochs, seed,
    precision, device and training time, then the recorded command of every entry."""
    header = "| model | recipe | epochs | seed | precision | trained on | training time |\n"
    header += "| --- " * 7 + "|"
    rows, commands = [], []
    for entry in entries():
        name = entry.name
        training = entry.training
        config = training.get("config") or {}
        precision = training.get("precision") or "not recorded"
        rows.append(
            f"| `{name}` | {config.get('recipe', 'not recorded')} | {training['epochs']} | "
            f"{config.get('seed', 'not recorded')} | {precision} | {training['device']} | "
            f"{training_time(entry)} |"
        )
        if training.get("command"):
            commands.append(f"# {name}\n{training['command']}")
    if not rows:
        rows.append("| (no entries yet) |" + " |" * 6)
    text = "\n".join([header, *rows])
    if commands:
        text += ("\n\nThe command each entry was trained with, as recorded in its `metadata.json` "
                 "(`--dataset` is where the data lay on the training machine, `--out` where the run was "
                 "written: give your own):\n\n")  # fmt: skip
        text += "```bash\n" + "\n".join(commands) + "\n```"
    return text


def pattern_text(entry: ZooEntry) -> str:
    """The entry's ReLU pattern as the zoo table, its card and ``zoo info`` write it: the ratio, and the
    pattern as recorded where that is a string.

    >>> pattern_text(info("resnet20_21"))
    '2:1 (`01`)'
    """
    ratio = models.parse_name(entry.builder_name)[2]
    return ratio + (f" (`{entry.relu_pattern}`)" if isinstance(entry.relu_pattern, str) else "")


def training_time(entry: ZooEntry) -> str:
    """Wall-clock hours on the GPU for a run on a GPU (which other runs may have shared), else the
    training process's CPU-hours; for a run resumed on another device, each device's part."""
    training = entry.training
    devices = (training.get("result") or {}).get("devices") or {
        training["device"]: {
            "wall_time_s": training.get("wall_time_s"),
            "cpu_time_s": training.get("cpu_time_s"),
        }
    }
    return DEVICE_SEPARATOR.join(_time_on(device, spent) for device, spent in devices.items())


def _time_on(device: str, spent: dict) -> str:
    if is_gpu(device):
        wall = spent.get("wall_time_s")
        return f"{wall / 3600:.2f} h on the GPU (wall clock)" if wall is not None else "not recorded"
    cpu = spent.get("cpu_time_s")
    return f"{cpu / 3600:.2f} CPU h" if cpu is not None else "CPU time not recorded"


TABLE_START, TABLE_END = "<!-- zoo:table:start -->", "<!-- zoo:table:end -->"
TRAINING_START, TRAINING_END = "<!-- zoo:training:start -->", "<!-- zoo:training:end -->"
CLAIMS_START, CLAIMS_END = "<!-- results:claims:start -->", "<!-- results:claims:end -->"


def claims() -> str:
    """The README's verdicts on the paper's claims: :func:`relu_ratio.experiments.results.claims`."""
    from relu_ratio.experiments import results  # imports this module: imported when asked for

    return results.claims()


TABLES = {  # each a function of the page it goes into
    (TABLE_START, TABLE_END): markdown_table,
    (TRAINING_START, TRAINING_END): lambda page: training_table(),
    (CLAIMS_START, CLAIMS_END): lambda page: claims(),
}


def update_table(path: str | Path, check: bool = False) -> bool:
    """Replace the text between each pair of zoo markers in ``path`` by its table: :func:`markdown_table`
    between ``TABLE_START``/``TABLE_END`` and :func:`claims` between ``CLAIMS_START``/``CLAIMS_END`` (the
    README), :func:`training_table` between ``TRAINING_START``/``TRAINING_END`` (docs/TRAINING.md).

    Returns whether the file was already up to date; with ``check`` the file is never written.
    """
    try:
        text = files.read_text(path)
        present = [(start, end) for start, end in TABLES if start in text]
        if not present:
            raise ValueError(f"{path} lacks the lines {TABLE_START} ... {TABLE_END} (or {TRAINING_START} ... "
                             f"{TRAINING_END}) around the generated text.")  # fmt: skip
        return files.replace_blocks(path, {pair: TABLES[pair](path) for pair in present}, check)
    except OSError as error:
        raise ZooError(f"cannot {'check' if check else 'update'} the zoo table in {path}: "
                       f"{error.strerror or error}") from None  # fmt: skip
    except ValueError as error:
        raise ZooError(f"cannot {'check' if check else 'update'} the zoo table: {error}") from None
