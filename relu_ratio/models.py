"""Builders for the paper's CIFAR networks, in the style of ``keras.applications``.

Five families, one generic assembly (:func:`_assemble`): a stem, three stages of blocks (widths
16/32/64, the first block of stages 2 and 3 has stride 2), a head. Each family only says which
block it uses and how a depth maps to blocks per stage:

- ``plain`` (:func:`plain`): conv-BN(-ReLU) layers; fusenet split of ``depth - 2`` layers; depth >= 5.
- ``postresnet`` (:func:`resnet` with ``preact=False``): post-activation building blocks; depth 6n+2.
- ``resnet`` (:func:`resnet`): pre-activation building blocks; depth 6n+2.
- ``preact`` (:func:`preact_bottleneck`): pre-activation bottleneck blocks; depth 9n+2.
- ``dfnmr`` (:func:`dfn_mr`): merge-and-run blocks; fusenet split of ``(depth - 2) / 4`` blocks;
  depth 4n+2, at least 14.

The fusenet split (``used = 2; n[i] = (depth - used) // (block_depth * (3 - i))``) gives plain 38/62/84
-> [12]*3, [20]*3, [27, 27, 28] and DFN-MR 110 -> [9, 9, 9]; ``depth`` there is the depth of the
corresponding plain network.

Registry-style names ``{family}{depth}_{pattern}`` (:func:`build`): the pattern token is two digits
``NM`` for the ratio ``N:M`` (``preact164_32`` = bottleneck ResNet-164 at 3:2, i.e. Type 1) or a preset
name (``dfnmr110_type2``, ``resnet56_erase_last``).

Example:
    >>> from relu_ratio import models
    >>> model = models.build("preact164_32")
    >>> model.count_params() > 1_700_000
    True
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import layers

from relu_ratio import blocks, patterns
from relu_ratio.blocks import batch_norm, check_weight_decay, conv2d, global_pooling, l2
from relu_ratio.patterns import BlockKind, PatternSpec, ReLUPattern
from relu_ratio.user_warning import give_again, warn
from relu_ratio.validators import check_bool, is_finite_number, is_integer, plain_number, suggest

WIDTHS = (16, 32, 64)
DEFAULT_INPUT_SHAPE = (32, 32, 3)
# Sizes beyond these cannot be meant (ResNet-1202 is the deepest CIFAR network published) and would fill the
# memory before failing; someone who truly means one raises the limit: relu_ratio.models.MAX_DEPTH = 5000.
MAX_DEPTH = 2000
MAX_CLASSES = 100_000
MAX_WIDTH_MULTIPLIER = 64.0


def fusenet_split(depth: int, block_depth: int) -> list[int]:
    """Blocks per stage for a plain-equivalent ``depth`` (fusenet's rule, see module docstring)."""
    used, blocks = 2, []
    for i in range(3):
        n = (depth - used) // (block_depth * (3 - i))
        blocks.append(n)
        used += n * block_depth
    return blocks


def _residual_split(per_block: int) -> Callable[[int], list[int] | None]:
    def split(depth: int) -> list[int] | None:
        n, rest = divmod(depth - 2, 3 * per_block)
        return [n] * 3 if rest == 0 and n >= 1 else None

    return split


def _fusenet_exact(block_depth: int) -> Callable[[int], list[int] | None]:
    def split(depth: int) -> list[int] | None:
        blocks = fusenet_split(depth, block_depth)
        exact = 2 + block_depth * sum(blocks) == depth
        return blocks if exact and min(blocks) >= 1 else None

    return split


@dataclasses.dataclass(frozen=True)
class Family:
    """How one network family is laid out; everything else is shared."""

    name: str
    title: str
    kind: BlockKind
    split: Callable[[int], list[int] | None]
    block: Callable[..., object]  # a function of :mod:`relu_ratio.blocks`
    stem_bn_relu: bool  # conv-BN-ReLU stem (post-activation nets) or a bare conv (pre-activation)
    final_bn_relu: bool  # BN-ReLU before pooling (pre-activation nets)
    two_paths: bool = False  # merge-and-run: blocks carry two tensors

    def blocks_per_stage(self, depth: int) -> list[int]:
        depth = plain_number(depth)  # e.g. from a numpy array of depths
        if not is_integer(depth):
            raise ValueError(f"depth must be an integer; received {depth!r}.")
        if depth > MAX_DEPTH:
            raise ValueError(
                f"depth {depth} is beyond relu_ratio.models.MAX_DEPTH = {MAX_DEPTH} (ResNet-1202 is the "
                "deepest CIFAR network published; larger ones fill the memory before they fail). If you mean "
                f"it, raise the limit first: relu_ratio.models.MAX_DEPTH = {depth}."
            )
        blocks = self.split(depth) if depth >= 1 else None
        if blocks is None:
            below = next((d for d in range(min(depth - 1, MAX_DEPTH), 0, -1) if self.split(d)), None)
            start = max(depth + 1, 1)
            above = next((d for d in range(start, start + 1000) if self.split(d)), None)
            nearest = ", ".join(str(d) for d in (below, above) if d is not None)
            raise ValueError(
                f"depth {depth} is not valid for {self.title}. Nearest valid depths: {nearest}."
            )
        return blocks

    @property
    def fixed_relus(self) -> int:
        """The ReLUs outside the blocks: the stem's (post-activation) and the final one (pre-activation)."""
        return int(self.stem_bn_relu) + int(self.final_bn_relu)

    def block_relus(self, mask: patterns.Mask, stage: int, block: int, per_stage: Sequence[int]) -> int:
        """The ReLU layers of block ``block`` of ``stage`` (0-based) with ``mask``: the network's last
        merge-and-run block merges its two outputs into one ReLU (:func:`relu_ratio.patterns.block_relus`).
        ``per_stage``: the network's blocks per stage (:meth:`blocks_per_stage`)."""
        last = stage == len(per_stage) - 1 and block == per_stage[-1] - 1
        return patterns.block_relus(self.kind, mask, merged_output=self.two_paths and last)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "plain", "plain networks", patterns.PLAIN, _fusenet_exact(1), blocks.plain_layer, True, False
        ),
        Family(
            "postresnet",
            "post-activation ResNets (depth 6n+2)",
            patterns.BASIC_POSTACT,
            _residual_split(2),
            blocks.postact_block,
            True,
            False,
        ),
        Family(
            "resnet",
            "pre-activation ResNets with building blocks (depth 6n+2)",
            patterns.BASIC_PREACT,
            _residual_split(2),
            blocks.preact_block,
            False,
            True,
        ),
        Family(
            "preact",
            "pre-activation bottleneck ResNets (depth 9n+2)",
            patterns.BOTTLENECK,
            _residual_split(3),
            blocks.bottleneck_block,
            False,
            True,
        ),
        Family(
            "dfnmr",
            "DFN-MR networks (depth 4n+2, at least 14)",
            patterns.MERGE_AND_RUN,
            _fusenet_exact(4),
            blocks.merge_and_run,
            True,
            False,
            two_paths=True,
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class Counts:
    """Convolutions on the main path, shortcut projections and ReLU layers of a network."""

    convs: int
    projections: int
    relus: int


def counts(family: str, depth: int, relu_pattern: PatternSpec = "paired") -> Counts:
    """What :func:`relu_ratio.describe` would count in ``build_family(family, depth, relu_pattern)``, without
    building it (for searches over many patterns).

    Example:
        >>> counts("preact", 164, "3:2")
        Counts(convs=163, projections=3, relus=109)
    """
    spec = family_spec(family)
    per_stage = spec.blocks_per_stage(depth)
    masks = ReLUPattern(relu_pattern).resolve(spec.kind, per_stage)
    relus = spec.fixed_relus + sum(
        spec.block_relus(mask, s, b, per_stage)
        for s, stage in enumerate(masks)
        for b, mask in enumerate(stage)
    )
    projections, channels = 0, WIDTHS[0]  # the stem's
    for s, (width, n) in enumerate(zip(WIDTHS, per_stage)):
        for b in range(n):
            projections += blocks.projections(spec.kind, _strides(s, b), channels, width)
            channels = blocks.output_channels(spec.kind, width)
    return Counts(1 + sum(per_stage) * spec.kind.convs, projections, relus)


def _strides(stage: int, block: int) -> int:
    """The first block of stages 2 and 3 halves the resolution."""
    return 2 if (stage > 0 and block == 0) else 1


def plain(depth: int = 38, relu_pattern: PatternSpec = "paired", **kwargs) -> keras.Model:
    """Plain CNN of conv-BN(-ReLU) layers (paper Table I; depths 38, 62, 84).

    A ratio ``N:M`` is a period laid over the layers after the stem: ``"2:1"`` removes the ReLU after
    the 1st, 3rd, 5th ... of them. Other arguments: see :func:`build_family`.
    """
    return build_family("plain", depth, relu_pattern, **kwargs)


def resnet(
    depth: int = 110, relu_pattern: PatternSpec = "paired", preact: bool = True, **kwargs
) -> keras.Model:
    """ResNet of building blocks, pre-activation (default; paper Table II) or post-activation.

    ``"2:1"`` removes the first ReLU of each block. Other arguments: see :func:`build_family`.
    """
    check_bool(preact, "preact (True: pre-activation, False: post-activation)")
    return build_family("resnet" if preact else "postresnet", depth, relu_pattern, **kwargs)


def preact_bottleneck(depth: int = 164, relu_pattern: PatternSpec = "paired", **kwargs) -> keras.Model:
    """Pre-activation bottleneck ResNet (paper Figs. 7-8). ``"3:2"`` = ``"type1"`` = mask ``"011"``."""
    return build_family("preact", depth, relu_pattern, **kwargs)


def dfn_mr(depth: int = 110, relu_pattern: PatternSpec = "paired", **kwargs) -> keras.Model:
    """Merge-and-run deep fusion network (paper Table III). ``"4:3"`` = ``"type1"`` = mask ``"1011"``.

    Mask slots: branch1_inner, branch1_out, branch2_inner, branch2_out.
    """
    return build_family("dfnmr", depth, relu_pattern, **kwargs)


def build_family(
    family: str,
    depth: int,
    relu_pattern: PatternSpec = "paired",
    *,
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: str | Callable | None = "softmax",
    width_multiplier: float = 1.0,
    weight_decay: float = 0.0,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Build one network of ``family`` (a key of :data:`FAMILIES`).

    Args:
        family: ``"plain"``, ``"postresnet"``, ``"resnet"``, ``"preact"`` or ``"dfnmr"``.
        depth: network depth; invalid depths raise a ``ValueError`` naming the nearest valid ones.
        relu_pattern: where ReLUs go; see :mod:`relu_ratio.patterns`.
        include_top: end in a dense classifier (else the last feature map, or pooled features).
        weights: ``None`` (random init); a pretrained preset, ``"cifar10"``: the zoo's verified weights for
            this network (family, depth, pattern, width), with a new classifier for other ``classes`` and
            the normalization they were trained with built in (:func:`relu_ratio.zoo.registry.from_preset`;
            a network without them raises, listing those with); or the path of a ``.weights.h5`` file
            for this architecture.
        input_shape: ``(height, width, channels)``, default ``(32, 32, 3)``; height and width may be ``None``
            (images of any size).
        pooling: with ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classes: classifier outputs (with ``include_top=True`` only); default 10.
        classifier_activation: activation of the classifier; ``None`` returns logits.
        width_multiplier: scales the stage widths 16/32/64.
        weight_decay: coupled L2 weight decay on convolution and dense kernels (the ``paper`` recipe's 1e-4,
            the ``fast`` recipe's 5e-4: ``train.TrainConfig(recipe=...).resolved().weight_decay``).
        normalization: ``(mean, std)`` per channel on the 0-255 scale; if given, the model starts with
            a ``Normalization`` layer and takes raw images (uint8 or float 0-255).
        name: model name; default: the name :func:`build` takes for this network where the pattern has
            one (:func:`default_name`: ``"resnet20_21"`` for ``("resnet", 20, "2:1")``), else
            ``{family}{depth}``; with a preset, the zoo entry's builder name.

    Example:
        >>> model = build_family("resnet", 20, "2:1", weights="cifar10")   # doctest: +SKIP
    """
    depth, classes, width_multiplier, weight_decay = map(plain_number, (depth, classes, width_multiplier,
                                                                       weight_decay))  # fmt: skip
    if isinstance(input_shape, (list, tuple, np.ndarray)):  # e.g. images.shape[1:] or np.array([32, 32, 3])
        input_shape = tuple(map(plain_number, input_shape))
    spec = family_spec(family)
    blocks = spec.blocks_per_stage(depth)
    masks = ReLUPattern(relu_pattern).resolve(spec.kind, blocks)
    preset = _is_preset(weights)
    shape = check_input_shape(input_shape)
    check_head(include_top, pooling, classes, classifier_activation)
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise ValueError(f"name must be a non-empty string (the model's name) or None; received {name!r}.")
    check_width_multiplier(width_multiplier)
    check_weight_decay(weight_decay)
    if preset:
        from relu_ratio.zoo import registry  # the zoo imports this module: the presets' one place, when used

        overrides = {"classifier_activation": classifier_activation, "weight_decay": weight_decay}
        return registry.from_preset(
            family,
            depth,
            relu_pattern,
            weights,
            include_top=include_top,
            classes=classes,
            pooling=pooling,
            input_shape=None if input_shape is None else shape,
            width_multiplier=width_multiplier,
            normalization=normalization,
            overrides={**overrides, "name": name} if name else overrides,
        )
    classes = 10 if classes is None else classes
    widths = [round(w * width_multiplier) for w in WIDTHS]

    inputs = keras.Input(shape, name="images")
    x = inputs
    if normalization is not None:
        x = _normalization_layer(normalization, shape[-1])(x)
    x = _assemble(spec, masks, widths, x, weight_decay)
    if include_top:
        x = global_pooling("avg")(x)
        x = classifier(classes, classifier_activation, weight_decay)(x)
    elif pooling is not None:
        x = global_pooling(pooling)(x)
    model = keras.Model(inputs, x, name=name or default_name(family, depth, relu_pattern))
    if weights is not None:
        _load_weights(model, weights)
    return model


def classifier(
    classes: int, activation: str | Callable | None = "softmax", weight_decay: float = 0.0
) -> layers.Dense:
    """The dense classifier on the pooled features (float32 even under mixed precision)."""
    return layers.Dense(
        classes,
        activation=activation,
        kernel_regularizer=l2(weight_decay),
        name="predictions",
        dtype="float32",
    )


def _assemble(spec: Family, masks, widths: list[int], inputs, weight_decay: float):
    """Stem, three stages of blocks, optional final BN-ReLU."""
    x = conv2d(widths[0], 3, 1, "stem_conv", weight_decay)(inputs)
    if spec.stem_bn_relu:
        x = layers.ReLU(name="stem_relu")(batch_norm("stem_bn")(x))
    if spec.two_paths:
        x = [x, x]
    last = (len(masks) - 1, len(masks[-1]) - 1)
    for s, (width, stage) in enumerate(zip(widths, masks)):
        for b, mask in enumerate(stage):
            extra = {"merge_output": (s, b) == last} if spec.two_paths else {}
            x = spec.block(
                x,
                width,
                strides=_strides(s, b),
                relu_mask=mask,
                weight_decay=weight_decay,
                name=f"stage{s + 1}_block{b + 1}",
                **extra,
            )
    if spec.final_bn_relu:
        x = layers.ReLU(name="final_relu")(batch_norm("final_bn")(x))
    return x


def _normalization_layer(normalization, channels: int) -> layers.Normalization:
    pair = _ordered(normalization) and len(normalization) == 2
    mean, std = map(_finite_numbers, normalization) if pair else ((), ())
    if len(mean) != channels or len(std) != channels or min(std, default=0) <= 0:
        raise ValueError(
            f"normalization must be (mean, std) with {channels} finite values each and std > 0; "
            f"received {normalization!r}."
        )
    if max(mean) <= 1 and max(std) <= 1:  # raw images have means of about 100 and spreads of about 60
        warn(
            f"normalization {normalization!r} looks like the statistics of images scaled to [0, 1], but the "
            "model normalises raw 0-255 images itself: unless the images really are that dark, give the mean "
            "and std on the 0-255 scale (multiply both by 255).",
        )
    return layers.Normalization(mean=mean, variance=[s * s for s in std], name="normalize", dtype="float32")


def _ordered(value: object) -> bool:
    """Whether ``value`` is a list of items in order: a list, tuple or array, not a string or a mapping."""
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def _finite_numbers(part: object) -> tuple[float, ...]:
    """``part`` as floats where it is a list of finite numbers (numpy's too), else ``()`` (``"123"`` is
    no list of three numbers)."""
    values = tuple(map(plain_number, part)) if _ordered(part) else ()
    return tuple(map(float, values)) if all(map(is_finite_number, values)) else ()


def family_spec(family: str) -> Family:
    """The :class:`Family` called ``family``; an unknown name raises a ``ValueError`` with a suggestion."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise ValueError(
            f"unknown family {family!r}{suggest(family, FAMILIES)}. Valid: {', '.join(FAMILIES)}."
        )
    return FAMILIES[family]


def check_input_shape(input_shape) -> tuple[int | None, int | None, int]:
    """``input_shape`` as ``(height, width, channels)`` (default ``(32, 32, 3)``); raises if unusable. Height
    and width may be ``None``: a network for images of any size (the layers are convolutions and a global
    pooling), as in ``keras.applications``.

    >>> check_input_shape([None, None, 3])
    (None, None, 3)
    """
    if input_shape is None:
        return DEFAULT_INPUT_SHAPE
    if isinstance(input_shape, (str, bytes, dict, set, frozenset)) or not hasattr(input_shape, "__iter__"):
        raise ValueError(f"input_shape must be (height, width, channels); received {input_shape!r}.")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(is_integer(d) or (d is None and i < 2) for i, d in enumerate(shape)):
        raise ValueError(
            f"input_shape must be (height, width, channels) of integers, height and width may be None (any "
            f"size); received {input_shape!r}."
        )
    if min(d for d in (*shape[:2], 4) if d is not None) < 4 or shape[2] < 1:
        raise ValueError(
            f"input_shape {shape} is too small: height and width must be at least 4 (two stride-2 "
            "stages) and channels at least 1, e.g. (32, 32, 3)."
        )
    return shape


def check_width_multiplier(width_multiplier) -> None:
    """Raise ``ValueError`` unless ``width_multiplier`` is a finite number in (0, MAX_WIDTH_MULTIPLIER] that
    leaves every stage a channel at least (its width, ``WIDTHS`` scaled, rounds to 1 or more)."""
    if not is_finite_number(width_multiplier) or not 0 < width_multiplier <= MAX_WIDTH_MULTIPLIER:
        raise ValueError(
            f"width_multiplier must be a finite number in (0, {MAX_WIDTH_MULTIPLIER:g}] (relu_ratio.models."
            f"MAX_WIDTH_MULTIPLIER); received {width_multiplier!r}."
        )
    narrowest = min(WIDTHS)
    if round(narrowest * width_multiplier) < 1:
        raise ValueError(
            f"width_multiplier {width_multiplier!r} leaves the {narrowest}-channel stage no channel "
            f"({narrowest} x {width_multiplier:g} rounds to 0); give more than 1/{2 * narrowest} "
            f"(e.g. {1 / narrowest:g}: one channel)."
        )


def check_head(include_top, pooling, classes, classifier_activation) -> None:
    """The head arguments of every path that builds a network (the builders, :func:`relu_ratio.zoo.load`),
    checked in one place: ``include_top`` a bool, ``classifier_activation`` a known activation (a misspelt
    one is refused without a top too); with the top, ``pooling`` unset (the top average-pools) and
    ``classes`` an integer in [2, :data:`MAX_CLASSES`]; without it, ``pooling`` ``None``, ``"avg"`` or
    ``"max"`` and no ``classes``. Raises ``ValueError`` naming the value."""
    check_bool(include_top, "include_top")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'; received {pooling!r}.")
    if classifier_activation is not None and not callable(classifier_activation):  # with or without a top
        try:
            keras.activations.get(classifier_activation)
        except ValueError:
            known = ("softmax", "sigmoid", "linear")
            raise ValueError(
                f"classifier_activation {classifier_activation!r} is not a Keras activation"
                f"{suggest(str(classifier_activation), known)}; e.g. {', '.join(map(repr, known))} "
                "or None (logits)."
            ) from None
    if include_top:
        if pooling is not None:
            raise ValueError(
                f"pooling={pooling!r} only applies with include_top=False (the top already "
                "average-pools). Pass pooling=None, or include_top=False."
            )
        if classes is not None and not is_integer(classes, 2):
            raise ValueError(
                f"classes must be an integer >= 2 (a softmax over one class always says 1.0; for one "
                f"score use classes=2 or include_top=False with your own head); received {classes!r}."
            )
        if classes is not None and classes > MAX_CLASSES:
            raise ValueError(
                f"classes={classes:,} is beyond relu_ratio.models.MAX_CLASSES = {MAX_CLASSES:,} (its "
                "classifier would not fit in memory); if you mean it, raise the limit: "
                f"relu_ratio.models.MAX_CLASSES = {classes}."
            )
    elif classes is not None:
        raise ValueError(
            f"classes={classes!r} only applies with include_top=True (include_top=False has no "
            "classifier). Drop classes, or pass include_top=True."
        )


# A pretrained preset's name (ZooEntry.weights_key): a dataset, with a zoo tag ("cifar10", "cifar10.long").
_PRESET = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)?", re.ASCII)


def _is_preset(weights) -> bool:
    """Whether ``weights`` names a preset (``"cifar10"``) rather than a ``.weights.h5`` file or ``None``;
    anything else raises a ``ValueError`` naming what is valid."""
    if weights is None:
        return False
    if isinstance(weights, (str, os.PathLike)) and str(os.fspath(weights)).endswith(".weights.h5"):
        return False
    if isinstance(weights, str) and _PRESET.fullmatch(weights) and not weights.endswith((".h5", ".keras")):
        return True
    raise ValueError(
        f"weights must be None, a pretrained preset such as 'cifar10' (the zoo's weights for this network) "
        f"or the path of a '.weights.h5' file; received {weights!r}."
    )


def _load_weights(model: keras.Model, weights) -> None:
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist.")
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} is a folder, not a '.weights.h5' file.")
    _refuse_a_shipped_zoo_file(path)
    try:
        load_weights_file(model, path)
    except (ValueError, OSError, KeyError) as error:
        raise ValueError(
            f"weights file {path!r} cannot be loaded into {model.name} (built with these arguments): "
            f"{_load_error(error)} Check that it was saved from the same architecture, classes and "
            "input_shape."
        ) from error
    check_normalization(model, path)  # once the shapes fit: a file of another network is said as such


def load_weights_file(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.load_weights(path)``, without the warnings Keras gives on its way to refusing a file that does
    not fit (one per layer, blaming the Keras version and saying the layers keep fresh weights, before the
    error says the file was not loaded); the warnings of a load that succeeds are given as they were."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    for warning in caught:
        give_again(warning)


def check_normalization(model: keras.Model, path: str) -> None:
    """Refuse ``path``, loaded into ``model``, where its model and ``model`` differ in input normalization,
    which has no weights: Keras loads it, and the outputs are wrong. The file names each layer's group after
    its class (``layers/normalization``), weights or not, a nested model's in its own: that tells."""
    import h5py  # Keras' own dependency for .weights.h5

    with h5py.File(path, "r") as file:
        names = []
        file.visit(names.append)
    saved = any(re.fullmatch(r"normalization(_\d+)?", name.rsplit("/", 1)[-1]) for name in names)
    here = any(isinstance(layer, layers.Normalization) for layer in model.layers)  # a builder's: flat
    if saved and not here:
        raise ValueError(
            f"weights file {path!r} was saved from a model that normalises its images (a zoo model, or one "
            f"built with normalization=), and {model.name} built here does not: it loads, and computes "
            "something else. Build it with the same normalization=(mean, std) (a zoo entry's: "
            "zoo.info(name).architecture['kwargs']['normalization']), or save a '.keras' file (it keeps it)."
        )
    if here and not saved:
        raise ValueError(
            f"weights file {path!r} was saved from a model without normalization (it took images "
            f"standardised beforehand), and {model.name} built here normalises them: build it without "
            "normalization=."
        )


_SHAPES = re.compile(  # Keras' assign error; PyTorch's value shape is a torch.Size
    r"variable\.shape=\((.*?)\), Received: value\.shape=(?:torch\.Size\(\[(.*?)\]\)|\((.*?)\))"
)


def _load_error(error: Exception) -> str:
    """Keras' load error in a line: its first, and the variable whose shape differs, where one does (Keras
    puts that after the variable's values, dozens of lines down), else the next line where the first ends in
    a colon."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    shapes = _SHAPES.search(text)
    if shapes is None:  # "Example error message for object <Dense ...>:", then what it was on the next line
        return f"{first} {lines[1].rstrip('.')}." if first.endswith(":") and len(lines) > 1 else first
    variable = re.search(r"Target variable: <Variable path=([^,>]+)", text)
    name = variable[1] if variable else "a variable"
    return f"{first} {name} is ({shapes[1]}) here, ({shapes[2] or shapes[3]}) in the file."


def _refuse_a_shipped_zoo_file(path: str) -> None:
    """A zoo entry's weights file given by path would load without the normalization it was trained with
    (that comes from the entry's metadata) and into any network of the same shapes, whatever its ReLU
    pattern: a wrong model, silently. Its sha256 names the entry, and the error says how to load it."""
    from relu_ratio import files
    from relu_ratio.zoo import presets  # the zoo imports this module: its presets only when a file is given

    digest = files.sha256(path)
    for name, preset in presets.read().items():
        if preset.sha256 == digest:
            raise ValueError(
                f"weights file {path!r} holds zoo entry {name!r}'s weights, which need the normalization "
                f"and network they were trained with: load them with zoo.load({name!r}) or "
                f"models.build({preset.builder_name!r}, weights={preset.weights!r})."
            )


# --- registry-style names -------------------------------------------------------------------

# One spelling per network: ASCII only, matched whole (re.match with "$" would accept a trailing newline, and
# "\d" any Unicode digit); the depth's leading zeros are refused by parse_name.
_NAME = re.compile(r"(?P<family>[a-z]+?)(?P<depth>[0-9]+)_(?P<pattern>[a-z0-9_]+)", re.ASCII)


def parse_name(name: str) -> tuple[str, int, str]:
    """``"preact164_32"`` -> ``("preact", 164, "3:2")``; raises ``ValueError`` with a suggestion.

    Only the canonical spelling is accepted (lower-case ASCII, no leading zeros, no surrounding spaces), so
    one network has one name: ``"resnet008_21"``, or the name written with a full-width digit, is refused
    with a message naming ``"resnet8_21"``.
    """
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None or match["depth"] != str(int(match["depth"])):
        canonical = _canonical_name(name)
        hint = f" Did you mean {canonical!r}?" if canonical is not None else ""
        raise ValueError(
            f"model name {name!r} does not follow '{{family}}{{depth}}_{{pattern}}' in lower-case ASCII, "
            f"no leading zeros, e.g. 'preact164_32' or 'resnet110_21'.{hint} "
            f"Families: {', '.join(FAMILIES)}."
        )
    family, depth, token = match["family"], int(match["depth"]), match["pattern"]
    family_spec(family)
    mask = bool(re.fullmatch(r"[01]+", token)) and "1" in token and token != "11"
    call = f"models.build_family({family!r}, {depth}, {token!r})"
    hint = f" A mask such as {token!r} goes in relu_pattern: {call}." if mask else ""
    if re.fullmatch(r"[0-9]{2}", token) and not (mask and int(token[0]) < int(token[1])):
        if token[1] == "0":
            raise ValueError(f"pattern {token!r} in model name {name!r} reads as the ratio {token[0]}:0, "
                             f"which keeps no ReLU (a ratio N:M needs N >= M >= 1).{hint}")  # fmt: skip
        return family, depth, f"{token[0]}:{token[1]}"
    if token not in patterns.PRESETS:
        raise ValueError(
            f"pattern {token!r} in model name {name!r} is neither two digits 'NM' (ratio N:M, N >= M) "
            f"nor a preset{suggest(token, patterns.PRESETS)}. Presets: {', '.join(patterns.PRESETS)}.{hint}"
        )
    return family, depth, token


def _canonical_name(name: object) -> str | None:
    """The canonical spelling of a name written another way (full-width or upper-case characters, spaces or
    a newline around it, leading zeros), if that spelling is a valid name; else ``None``."""
    if not isinstance(name, str):
        return None
    match = _NAME.fullmatch(unicodedata.normalize("NFKC", name).strip().lower())
    if match is None:
        return None
    canonical = f"{match['family']}{int(match['depth'])}_{match['pattern']}"
    try:
        parse_name(canonical)
    except ValueError:
        return None
    return canonical if canonical != name else None


def default_name(family: str, depth: int, relu_pattern: PatternSpec) -> str:
    """A built model's name when none is given: the registry-style name of the network where the pattern, as
    given, is one a name can spell (a ratio of one-digit numbers, or a preset; ``"paired"``, the default,
    as the zoo spells it: ``_11``), as :func:`build` names its models; else ``{family}{depth}`` (a mask, one
    pattern per stage, a function).

    >>> default_name("resnet", 20, "2:1"), default_name("preact", 164, "type1")
    ('resnet20_21', 'preact164_type1')
    >>> default_name("plain", 38, None)  # the default: paired
    'plain38_11'
    >>> default_name("resnet", 8, "01")  # a mask
    'resnet8'
    """
    spec = ReLUPattern(relu_pattern).spec
    spec = "1:1" if spec == "paired" else spec  # every family's paired mask is all ones: 1:1
    if isinstance(spec, str):
        name = f"{family}{depth}_{spec.replace(':', '')}"
        try:
            if parse_name(name)[2] == spec:  # not a mask that reads as a ratio (mask "11" as 1:1)
                return name
        except ValueError:  # a mask, or a ratio of numbers above 9
            pass
    return f"{family}{depth}"


def check_name(name: str) -> tuple[str, int, str]:
    """Like :func:`parse_name`, and also check that the depth and pattern are valid, without building."""
    network_of(name)
    return parse_name(name)


def network_of(name: str) -> tuple[str, int, patterns.Masks]:
    """What ``name`` builds, without building it: family, depth and ReLU masks (two names of one network, a
    ratio and the preset it equals, give the same).

    >>> network_of("resnet8_11") == network_of("resnet8_paired") != network_of("resnet8_21")
    True
    """
    family, depth, pattern = parse_name(name)
    spec = FAMILIES[family]
    return family, depth, ReLUPattern(pattern).resolve(spec.kind, spec.blocks_per_stage(depth))


def build(name: str, /, **kwargs) -> keras.Model:
    """Build a network from its registry-style name, e.g. ``build("preact164_32", classes=100)``.

    Keyword arguments are those of :func:`build_family`.
    """
    family, depth, pattern = parse_name(name)
    fixed = sorted({"family", "depth", "relu_pattern"} & set(kwargs))
    if fixed:
        given = ", ".join(f"{key}={kwargs[key]!r}" for key in fixed)
        raise ValueError(f"build({name!r}, {given}): the name fixes the family, depth and ReLU pattern; name "
                         f"the network you want, or call build_family({family!r}, depth=..., "
                         "relu_pattern=...).")  # fmt: skip
    kwargs.setdefault("name", name)  # the model's name; build("resnet8_21", name="x") renames it
    return build_family(family, depth, pattern, **kwargs)
