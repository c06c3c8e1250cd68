"""The pretrained weights the package ships, as data: ``relu_ratio/zoo/presets.json`` (package data).

One preset per entry of the shipped store (``zoo/<name>/``): the builders' ``weights=`` key
(``"cifar10"``), the builder name, the weights file (relative to the store), its sha256, its measured
metrics and a one-line description; like ``keras.applications``' ``WEIGHTS_HASHES`` or keras-hub's
``*_presets.py``, but JSON read by the package and written (atomically) only by ``zoo register``.

Each entry's ``metadata.json`` holds its weights' sha256 too, which catches a corrupt file but not a swapped
file whose metadata was re-hashed with it. :func:`relu_ratio.zoo.load` (and a builder's ``weights="cifar10"``)
also checks the shipped store's weights against this file, so that a changed weights file must come with a
changed package file. ``tests/test_zoo.py`` checks the file against the store.

Example:
    >>> from relu_ratio.zoo import presets
    >>> presets.read()["resnet20_21"].weights                          # doctest: +SKIP
    'cifar10'
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from relu_ratio import files, models
from relu_ratio.zoo.entry import MetadataError, ZooEntry

PRESETS_FILE = Path(__file__).with_name("presets.json")
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Preset:
    """One shipped entry's weights, as the package records them."""

    weights: str  # the builders' weights= key, e.g. "cifar10" (ZooEntry.weights_key)
    builder_name: str  # e.g. "resnet20_21", for relu_ratio.models.build
    file: str  # the weights file, relative to the store: "<name>/model.weights.h5"
    sha256: str
    metrics: dict  # {"top1": %, "top5": %}
    description: str  # one line


def of_entry(entry: ZooEntry) -> Preset:
    """The preset that records ``entry``: what ``zoo register`` writes for the shipped store."""
    family, depth, pattern = models.parse_name(entry.builder_name)
    title = models.FAMILIES[family].title.split(" (")[0]
    epochs = entry.training["epochs"]
    description = (
        f"one of the {title}: depth {depth}, ReLU pattern {pattern}, {epochs} epoch{'s' * (epochs != 1)} on "
        f"{entry.dataset}, {entry.top1:.2f} % top-1, {entry.params / 1e6:.2f} M parameters"
    )
    file = f"{entry.name}/{entry.weights_file}"
    return Preset(entry.weights_key, entry.builder_name, file, entry.sha256, dict(entry.metrics), description)


def read(path: str | os.PathLike | None = None) -> dict[str, Preset]:
    """The presets in ``path`` (default :data:`PRESETS_FILE`, the package's ``presets.json``), by zoo name.

    Raises:
        MetadataError: the file is missing, unreadable or does not hold presets (naming it).
    """
    path = Path(path) if path is not None else PRESETS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw["format_version"] != FORMAT_VERSION:
            raise ValueError(f"format_version {raw['format_version']!r}, expected {FORMAT_VERSION}")
        return {name: Preset(**fields) for name, fields in raw["presets"].items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise MetadataError(
            f"cannot read the package's presets {path}: {error!r}. Reinstall the package."
        ) from error


def write(presets: dict[str, Preset], path: str | os.PathLike | None = None) -> None:
    """Replace ``path`` (default :data:`PRESETS_FILE`) atomically with ``presets``, sorted by name."""
    body = {name: dataclasses.asdict(presets[name]) for name in sorted(presets)}
    payload = {"format_version": FORMAT_VERSION, "presets": body}
    files.write_json(path if path is not None else PRESETS_FILE, payload)
