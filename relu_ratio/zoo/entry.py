"""The metadata record of one registry entry (``zoo/<name>/metadata.json``) and the zoo's errors.

:class:`ZooEntry` is frozen and schema-checked on read (:meth:`ZooEntry.from_json`): a missing,
unknown or ill-typed key raises :class:`MetadataError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relu_ratio import models
from relu_ratio.train.record import METADATA_FILE, WEIGHTS_FILE
from relu_ratio.validators import is_finite_number, is_integer

FORMAT_VERSION = 1
TRAINING_KEYS = ("command", "config", "epochs", "wall_time_s", "device", "backend", "result")
# Optional: None where a run predates recording them (its config and result then say what is known).
PROVENANCE_KEYS = ("cpu_time_s", "precision", "commit")
TAG_PATTERN = re.compile(r"[a-z0-9_]+")  # a zoo name's optional ".tag"
GIT_OBJECT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?:.+")  # "<commit>:<path>", what `git show` takes
# The builders' weights= key for an entry's dataset (ZooEntry.weights_key); others: the name, slugged.
CIFAR10_JPEG = "CIFAR-10 (JPEG)"
# tfds/folder dataset name -> the name an entry records; its weights key is the short name without "_jpeg"
DATASET_NAMES = {"cifar10_jpeg": CIFAR10_JPEG, "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
WEIGHTS_KEYS = {shown: name.removesuffix("_jpeg") for name, shown in DATASET_NAMES.items()}


class ZooError(ValueError):
    """Anything wrong with a registry entry. Subclasses say what."""


class UnknownModelError(ZooError):
    """No entry of that name; the message suggests the closest names."""


class MetadataError(ZooError):
    """``metadata.json`` is missing, unreadable or does not follow the schema."""


class IntegrityError(ZooError):
    """The weights file is missing, truncated or tampered with, or does not fit the architecture."""


class WeightsNotStoredError(ZooError):
    """The entry was registered without its weights file (:attr:`ZooEntry.weights_git_object`), which has
    not been fetched into the store; the message says how to fetch it or train it again."""


def split_name(name: str) -> tuple[str, str | None]:
    """``"resnet20_21.fast"`` -> ``("resnet20_21", "fast")``; the plain name is the default tag (``None``).

    Raises:
        ZooError: if the base is not a model name that :func:`relu_ratio.models.parse_name` accepts,
            or the tag is not ``[a-z0-9_]+``.
    """
    if not isinstance(name, str):
        raise ZooError(f"zoo names are strings like 'resnet20_21' or 'resnet20_21.fast'; received {name!r}.")
    base, dot, tag = name.partition(".")
    try:
        models.parse_name(base)
    except ValueError as error:
        raise ZooError(f"invalid zoo name {name!r}: {error}") from None
    if dot and not TAG_PATTERN.fullmatch(tag):
        raise ZooError(f"invalid tag {tag!r} in zoo name {name!r}: use lower-case letters, digits and '_'.")
    return base, (tag if dot else None)


def _numbers(value: object, count: int | None = None) -> bool:
    ok = isinstance(value, (list, tuple)) and all(is_finite_number(v) for v in value)
    return ok and (count is None or len(value) == count)


def _pattern(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(stage, (list, tuple)) and all(isinstance(m, str) for m in stage) for stage in value
    )


def _architecture(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"builder_name", "kwargs"}
        and isinstance(value["builder_name"], str)
        and isinstance(value["kwargs"], dict)
    )


def _metrics(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"top1", "top5"}
        and all(is_finite_number(v) and 0 <= v <= 100 for v in value.values())
    )


def _training(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(TRAINING_KEYS) <= set(value) <= set(TRAINING_KEYS + PROVENANCE_KEYS)
        and isinstance(value["command"], str)
        and isinstance(value["config"], dict)
        and is_integer(value["epochs"])
        and is_finite_number(value["wall_time_s"])
        and isinstance(value["device"], str)
        and isinstance(value["backend"], str)
        and isinstance(value["result"], dict)
        and (value.get("cpu_time_s") is None or is_finite_number(value["cpu_time_s"]))
        and all(value.get(key) is None or isinstance(value[key], str) for key in ("precision", "commit"))
    )


def _git_object(value: object) -> bool:
    return isinstance(value, str) and GIT_OBJECT.fullmatch(value) is not None


def _reference_outputs(value: object) -> bool:
    if not (isinstance(value, dict) and set(value) == {"images", "classes", "probabilities"}):
        return False
    classes, probabilities = value["classes"], value["probabilities"]
    return (
        isinstance(value["images"], str)
        and isinstance(classes, list)
        and all(is_integer(c, 0) for c in classes)
        and _numbers(probabilities, len(classes))
        and len(classes) > 0
        and all(0 <= p <= 1 for p in probabilities)
    )


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format_version": (lambda v: v == FORMAT_VERSION, f"the integer {FORMAT_VERSION}"),
    "name": (lambda v: isinstance(v, str), "a zoo name"),
    "architecture": (_architecture, '{"builder_name": str, "kwargs": {...}}'),
    "relu_pattern": (_pattern, "a mask string or per-stage lists of masks"),
    "weights_file": (lambda v: v == WEIGHTS_FILE, repr(WEIGHTS_FILE)),
    "sha256": (
        lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
        "64 hex digits",
    ),
    "file_size": (lambda v: is_integer(v, 1), "a positive integer (bytes)"),
    "dataset": (lambda v: isinstance(v, str), "a string"),
    "data_source": (lambda v: isinstance(v, str), "a string"),
    "split": (lambda v: isinstance(v, str), "a string"),
    "num_images": (lambda v: is_integer(v, 1), "a positive integer"),
    "class_names": (
        lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(c, str) for c in v),
        "a non-empty list of strings",
    ),
    "mean": (_numbers, "a list of finite numbers"),
    "std": (_numbers, "a list of finite numbers"),
    "input_shape": (lambda v: _numbers(v, 3) and all(is_integer(d) for d in v), "[height, width, channels]"),
    "metrics": (_metrics, '{"top1": %, "top5": %}'),
    "params": (lambda v: is_integer(v, 1), "a positive integer"),
    "flops": (lambda v: is_integer(v, 1), "a positive integer"),
    "training": (
        _training,
        f"a dict with the keys {', '.join(TRAINING_KEYS)} and optionally {', '.join(PROVENANCE_KEYS)}",
    ),
    "package_version": (lambda v: isinstance(v, str), "a string"),
    "keras_version": (lambda v: isinstance(v, str), "a string"),
}
# Keys an entry may lack (registered before they were recorded): absent means None.
_OPTIONAL_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "reference_outputs": (
        _reference_outputs,
        '{"images": str, "classes": [ints], "probabilities": [numbers 0-1], as many} (zoo.reference)',
    ),
    "weights_git_object": (_git_object, "'<commit>:<path>', a git object of the store's repository"),
}


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """What is known about one pretrained model; every number was measured by :func:`zoo.register`.

    ``metrics`` are top-1/top-5 accuracy in percent on ``split`` of ``dataset`` (``num_images`` images);
    ``params`` (trainable) and ``flops`` (multiply-adds per image) come from :func:`relu_ratio.describe`;
    ``mean``/``std`` (0-255 scale) are baked into the model, which takes raw uint8 images.
    """

    format_version: int
    name: str
    architecture: dict  # {"builder_name": ..., "kwargs": {...}} for relu_ratio.models.build
    relu_pattern: str | list  # explicit mask(s), from ReLUPattern.explicit
    weights_file: str
    sha256: str
    file_size: int  # bytes
    dataset: str  # e.g. "CIFAR-10 (JPEG)"
    data_source: str  # what relu_ratio.data.load was given, e.g. "../shared/data"
    split: str
    num_images: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    metrics: dict  # {"top1": %, "top5": %}
    params: int
    flops: int
    training: dict  # command, config, epochs, wall_time_s, device, backend, result (result.json)
    package_version: str
    keras_version: str
    reference_outputs: dict | None = None  # relu_ratio.zoo.reference.record; None: registered before it
    # "<commit>:<path>": registered without its weights file, which is this git object of the repository
    # that holds the store (fetched with `git show`, then checked against sha256); None: the store holds it
    weights_git_object: str | None = None

    @property
    def builder_name(self) -> str:
        return self.architecture["builder_name"]

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def top1(self) -> float:
        return float(self.metrics["top1"])

    @property
    def weights_key(self) -> str:
        """What a builder's ``weights=`` names these weights by: the dataset's short name (``"cifar10"``),
        with the entry's tag (``"cifar10.long"`` for ``resnet20_21.long``)."""
        key = WEIGHTS_KEYS.get(self.dataset) or re.sub(r"[^a-z0-9]+", "_", self.dataset.lower()).strip("_")
        tag = split_name(self.name)[1]
        return f"{key}.{tag}" if tag else key

    def to_json(self) -> dict:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
            if not (f.name in _OPTIONAL_CHECKS and getattr(self, f.name) is None)
        }

    @classmethod
    def from_json(cls, data: object, where: str = "metadata") -> ZooEntry:
        """Check ``data`` against the schema and build the entry.

        Raises:
            MetadataError: naming ``where`` and every missing, unknown or ill-typed key.
        """
        if not isinstance(data, dict):
            raise MetadataError(f"{where}: expected a JSON object; found {type(data).__name__}.")
        missing = sorted(set(_CHECKS) - set(data))
        unknown = sorted(set(data) - set(_CHECKS) - set(_OPTIONAL_CHECKS))
        bad = [
            f"{key} (expected {what})"
            for key, (ok, what) in {**_CHECKS, **_OPTIONAL_CHECKS}.items()
            if key in data and not ok(data[key])
        ]
        problems = [f"missing keys {missing}"] * bool(missing) + [f"unknown keys {unknown}"] * bool(unknown)
        if bad:
            problems.append("ill-typed: " + "; ".join(bad))
        if not problems:
            base, _ = _name_or_problem(data["name"], problems)
            builder = data["architecture"]["builder_name"]
            if base is not None and base != builder:
                problems.append(f"name {data['name']!r} does not match builder_name {builder!r}")
        if problems:
            raise MetadataError(f"{where} does not follow the zoo schema: {', '.join(problems)}.")
        values = dict(data)
        for key in ("class_names", "mean", "std", "input_shape"):
            values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def read(cls, folder: str | os.PathLike) -> ZooEntry:
        """The entry whose ``metadata.json`` lies in ``folder`` (a store's ``<name>/``, or a copy of it),
        schema-checked (:meth:`from_json`).

        Raises:
            MetadataError: naming the file, where it is missing or unreadable or does not follow the schema.
        """
        path = Path(folder) / METADATA_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MetadataError(f"cannot read {path}: {error}") from error
        except RecursionError:
            raise MetadataError(f"cannot read {path}: nested deeper than JSON's reader goes (not a file this "
                                "package wrote)") from None  # fmt: skip
        return cls.from_json(raw, where=str(path))


def _name_or_problem(name: str, problems: list[str]) -> tuple[str | None, str | None]:
    try:
        return split_name(name)
    except ZooError as error:
        problems.append(str(error))
        return None, None
