"""Weights saved in the first layout (subclassed blocks, up to commit 7906d8f) load into today's models.

A ``.weights.h5`` file names its arrays by position, not by layer name: the old file holds one group per
block class (``layers/pre_act_block_2/convs/conv2d_1``), today's one group per stock layer. This module
maps every layer of a freshly built model (by its stable name, see :mod:`relu_ratio.blocks`) to the old
group that held its arrays. :func:`relu_ratio.models.build_family` calls it for any old file it is given,
so a run trained before the change loads with ``weights=``; :func:`convert` rewrites a file once.

Example:
    >>> from relu_ratio import legacy
    >>> legacy.convert("old/model.weights.h5", "model.weights.h5", "resnet20_21")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re

import h5py
import keras
import numpy as np

BLOCK_GROUPS = {  # family -> the old block class's group name
    "plain": "plain_layer",
    "postresnet": "post_act_block",
    "resnet": "pre_act_block",
    "preact": "pre_act_block",
    "dfnmr": "merge_and_run",
}
_TOP_LEVEL = {"stem_conv": "conv2d", "stem_bn": "batch_normalization", "final_bn": "batch_normalization",
              "predictions": "dense", "normalize": "normalization"}  # fmt: skip
_BLOCK_LAYER = re.compile(r"^stage(\d+)_block(\d+)_(.+)$")


def is_legacy(path: str | os.PathLike) -> bool:
    """Whether the ``.weights.h5`` file at ``path`` holds the old subclassed-block layout."""
    with h5py.File(path, "r") as file:
        names = set(file["layers"]) if "layers" in file else set()
    return any(re.sub(r"_\d+$", "", name) in BLOCK_GROUPS.values() for name in names)


def load_weights(model: keras.Model, family: str, path: str | os.PathLike) -> None:
    """Set ``model``'s weights (a model of ``family`` built by :mod:`relu_ratio.models`) from an old file.

    Raises:
        ValueError: if an array the model needs is missing or has another shape.
    """
    blocks = sorted({m.groups()[:2] for m in map(_BLOCK_LAYER.match, _names(model)) if m},
                    key=lambda sb: (int(sb[0]), int(sb[1])))  # fmt: skip
    block_index = {sb: i for i, sb in enumerate(blocks)}
    with h5py.File(path, "r") as file:
        for layer in model.layers:
            if not layer.weights:
                continue
            group = _old_group(layer.name, family, block_index)
            if group not in file:
                raise ValueError(f"the old weights file {os.fspath(path)!r} lacks {group} ({layer.name!r}).")
            stored = file[group]["vars"]
            arrays = [np.asarray(stored[str(i)]) for i in range(len(stored))]
            expected = [tuple(w.shape) for w in layer.weights]
            if [a.shape for a in arrays] != expected:
                raise ValueError(
                    f"the old weights file {os.fspath(path)!r} holds shapes {[a.shape for a in arrays]} for "
                    f"{layer.name!r}, which needs {expected}: it was saved from another architecture."
                )
            layer.set_weights(arrays)


def convert(src: str | os.PathLike, dst: str | os.PathLike, name: str, **build_kwargs) -> keras.Model:
    """Rewrite the old-layout ``src`` as a ``.weights.h5`` of today's layout at ``dst``; returns the model.

    ``name`` and ``build_kwargs`` are those the weights were trained with (``classes``,
    ``normalization``...), as in :func:`relu_ratio.models.build`.
    """
    from relu_ratio import models

    model = models.build(name, **build_kwargs)
    load_weights(model, models.parse_name(name)[0], src)
    model.save_weights(dst)
    return model


def _names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def _nth(base: str, index: int) -> str:
    """Keras' name for the ``index``-th (0-based) object of one class in a container."""
    return base if index == 0 else f"{base}_{index}"


def _old_group(name: str, family: str, block_index: dict) -> str:
    if name in _TOP_LEVEL:
        return f"layers/{_TOP_LEVEL[name]}"
    match = _BLOCK_LAYER.match(name)
    if match is None:
        raise ValueError(f"layer {name!r} has no counterpart in the old layout.")
    stage, block, part = match.groups()
    prefix = f"layers/{_nth(BLOCK_GROUPS[family], block_index[(stage, block)])}"
    return f"{prefix}/{_old_part(part, family)}"


def _old_part(part: str, family: str) -> str:
    if family == "plain":
        return {"conv": "conv1", "bn": "bn1"}[part]
    if family == "postresnet":
        return part  # conv1, bn1, conv2, bn2, projection, projection_bn: the old attribute names
    if family in ("resnet", "preact"):
        if part == "projection":
            return part
        kind, number = re.fullmatch(r"(bn|conv)(\d)", part).groups()
        container, base = ("bns", "batch_normalization") if kind == "bn" else ("convs", "conv2d")
        return f"{container}/{_nth(base, int(number) - 1)}"
    branch = re.fullmatch(r"(branch|line)(\d)_(.+)", part)
    line, number, rest = branch.groups()
    layer = {"conv1": "conv2d", "bn1": "batch_normalization", "conv2": "conv2d_1",
             "bn2": "batch_normalization_1", "projection": "conv2d",
             "projection_bn": "batch_normalization"}[rest]  # fmt: skip
    return f"{'branches' if line == 'branch' else 'projections'}/{_nth('container', int(number) - 1)}/{layer}"
