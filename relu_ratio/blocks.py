"""The paper's blocks as functions that wire stock Keras layers, in the style of ``keras.applications``.

Every block is ``block(x, filters, strides, relu_mask, name, weight_decay) -> tensor``: it calls
``Conv2D`` / ``BatchNormalization`` / ``ReLU`` / ``Add`` / ``Average`` layers on a symbolic tensor, and
``relu_mask`` (one boolean per ReLU slot of the block's :class:`~relu_ratio.patterns.BlockKind`, or a string
of 0s and 1s such as ``"011"``: :func:`check_block`) decides whether a ``ReLU`` layer is inserted at a
slot. A built model therefore holds stock layers only: ``model.summary()`` and ``keras.utils.plot_model``
show every ReLU, and a saved ``.keras`` file loads without this package.

Layer names are the weights contract (stable; ``zoo`` entries and ``fuse`` rely on them). A block called
``name`` (the builders use ``stage{s}_block{b}``) creates:

=====================  ==========================================================================
block                  layers, in order
=====================  ==========================================================================
:func:`plain_layer`    ``{name}_conv``, ``{name}_bn``, ``{name}_relu``
:func:`postact_block`  ``{name}_conv1``, ``_bn1``, ``_relu_inner``, ``_conv2``, ``_bn2``,
                       [``_projection``, ``_projection_bn``], ``_add``, ``_relu_after_add``
:func:`preact_block`   ``{name}_bn1``, ``_relu_preact1``, ``_conv1``, ``_bn2``, ``_relu_preact2``,
                       ``_conv2`` (bottleneck: ``_bn3``, ``_relu_preact3``, ``_conv3``),
                       [``_projection``], ``_add``
:func:`merge_and_run`  per branch ``b``: ``{name}_branch{b}_conv1``, ``_bn1``, ``_relu_branch{b}_inner``,
                       ``_conv2``, ``_bn2``; [``{name}_line{b}_projection``, ``_projection_bn``];
                       ``{name}_merge`` (``Average``); ``{name}_add{b}``, ``{name}_relu_branch{b}_out``
                       (the last block: ``{name}_add``, ``{name}_relu_merged_out``)
=====================  ==========================================================================

A ReLU whose slot is off is simply absent. A shortcut convolution's name ends in ``projection``
(:func:`is_projection`), which is how :func:`relu_ratio.describe` tells it from the main path.

Example:
    >>> import keras
    >>> from relu_ratio.blocks import preact_block
    >>> x = keras.Input((8, 8, 64))
    >>> y = preact_block(x, 16, relu_mask=(False, True, True), name="b", bottleneck=True)  # Type 1
    >>> [layer.name for layer in keras.Model(x, y).layers if "relu" in layer.name]
    ['b_relu_preact2', 'b_relu_preact3']
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from relu_ratio import patterns
from relu_ratio.patterns import BlockKind
from relu_ratio.validators import check_bool, is_finite_number, is_integer, plain_number

BN_MOMENTUM = 0.99  # fusenet's BatchNorm settings (see shared REFERENCE.md)
BN_EPSILON = 2e-5
BOTTLENECK_EXPANSION = 4
# Every model's layout, whatever keras.config.image_data_format() says: BatchNormalization normalises the
# last axis, and a channels_first conv would read 32x32x3 images as 32 channels of 32x3.
CHANNELS_LAST = "channels_last"


def conv2d(filters: int, kernel: int, strides: int, name: str, weight_decay: float = 0.0) -> layers.Conv2D:
    """A bias-free, He-normal initialised ``same``-padded convolution (the paper's only conv)."""
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        data_format=CHANNELS_LAST,
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=l2(weight_decay),
        name=name,
    )


def global_pooling(kind: str) -> layers.Layer:
    """The head's global pooling: ``"avg"`` (the layer ``avg_pool``) or ``"max"`` (``max_pool``)."""
    if kind == "avg":
        return layers.GlobalAveragePooling2D(data_format=CHANNELS_LAST, name="avg_pool")
    return layers.GlobalMaxPooling2D(data_format=CHANNELS_LAST, name="max_pool")


def batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def l2(weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Coupled weight decay ``wd`` as an L2 penalty ``wd/2 * ||w||^2`` (gradient ``wd * w``)."""
    return keras.regularizers.L2(weight_decay / 2) if weight_decay else None


def check_weight_decay(weight_decay: float) -> None:
    """Raise ``ValueError`` unless ``weight_decay`` (what :func:`l2` turns into a penalty) is a finite number
    >= 0: the blocks' and the builders' check."""
    if not is_finite_number(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0; received {weight_decay!r}.")


def is_projection(layer: layers.Layer) -> bool:
    """Whether ``layer`` is a shortcut projection (a 1x1 convolution off the main path)."""
    return isinstance(layer, layers.Conv2D) and layer.name.endswith("projection")


def needs_projection(strides: int, channels: int, out_channels: int) -> bool:
    """Whether a block's shortcut is a 1x1 projection: where the block changes the resolution or the channels.

    >>> needs_projection(2, 16, 32), needs_projection(1, 16, 64), needs_projection(1, 64, 64)
    (True, True, False)
    """
    return strides != 1 or channels != out_channels


def output_channels(kind: BlockKind, filters: int) -> int:
    """The channels a block of ``kind`` called with ``filters`` puts out (a bottleneck expands them 4x)."""
    return BOTTLENECK_EXPANSION * filters if kind is patterns.BOTTLENECK else filters


def projections(kind: BlockKind, strides: int, channels: int, filters: int) -> int:
    """The shortcut projections a block of ``kind`` makes on ``channels`` input channels: none in a plain
    layer (no shortcut), one per shortcut line (merge-and-run has two) where :func:`needs_projection`.

    >>> projections(patterns.BOTTLENECK, 1, 16, 16), projections(patterns.MERGE_AND_RUN, 2, 16, 32)
    (1, 2)
    """
    if kind is patterns.PLAIN:
        return 0
    lines = 2 if kind is patterns.MERGE_AND_RUN else 1
    return lines * needs_projection(strides, channels, output_channels(kind, filters))


def check_block(
    kind: BlockKind, filters: int, strides: int, relu_mask: Sequence[bool] | str | None, weight_decay: float
) -> tuple[int, int, float, tuple[bool, ...]]:
    """A block's arguments checked, as ``(filters, strides, weight_decay, mask)`` with numpy numbers made
    Python's; a ``ValueError`` naming the one that does not fit. ``relu_mask``: one entry per ReLU slot of
    ``kind``, each ``True``/``False`` or ``0``/``1``, or a string of 0s and 1s as the package writes masks
    (``"011"``); ``None``: every slot keeps its ReLU.

    >>> check_block(patterns.BOTTLENECK, 16, 2, "011", 1e-4)
    (16, 2, 0.0001, (False, True, True))
    >>> check_block(patterns.PLAIN, 16, 1, "3:2", 0.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: relu_mask must hold 1 entry, True/False or 0/1, ...; received '3:2'.
    """
    filters, strides, weight_decay = map(plain_number, (filters, strides, weight_decay))
    if not is_integer(filters, 1):
        raise ValueError(f"filters must be an integer >= 1; received {filters!r}.")
    if not is_integer(strides) or strides not in (1, 2):
        raise ValueError(f"strides must be 1 or 2; received {strides!r}.")
    check_weight_decay(weight_decay)
    slots = kind.slots
    if relu_mask is None:
        return filters, strides, weight_decay, (True,) * len(slots)
    mask = patterns.list_mask(relu_mask)
    if mask is None or len(mask) != len(slots):
        entries = f"{len(slots)} entr{'y' if len(slots) == 1 else 'ies'}"
        raise ValueError(
            f"relu_mask must hold {entries}, True/False or 0/1, one per ReLU slot of a {kind.name} "
            f"({', '.join(slots)}), or be a string of 0s and 1s such as {'1' * len(slots)!r}; "
            f"received {relu_mask!r}."
        )
    return filters, strides, weight_decay, mask


def relu(x, keep: bool, name: str):
    """A ``ReLU`` layer called ``name`` on ``x`` if ``keep``, else ``x`` itself."""
    return layers.ReLU(name=name)(x) if keep else x


def plain_layer(
    x, filters: int, strides: int = 1, relu_mask: Sequence[bool] | None = None, name: str = "block",
    weight_decay: float = 0.0,
):  # fmt: skip
    """conv3x3-BN(-ReLU): the plain network's module (paper Fig. 1)."""
    kind = patterns.PLAIN
    filters, strides, weight_decay, (keep,) = check_block(kind, filters, strides, relu_mask, weight_decay)
    x = conv2d(filters, 3, strides, f"{name}_conv", weight_decay)(x)
    return relu(batch_norm(f"{name}_bn")(x), keep, f"{name}_relu")


def postact_block(
    x, filters: int, strides: int = 1, relu_mask: Sequence[bool] | None = None, name: str = "block",
    weight_decay: float = 0.0,
):  # fmt: skip
    """Post-activation building block (paper Fig. 3): conv-BN-ReLU-conv-BN, add, ReLU.

    The shortcut is the identity, or a 1x1 conv-BN projection where the shape changes.
    """
    filters, strides, weight_decay, (inner, after_add) = check_block(
        patterns.BASIC_POSTACT, filters, strides, relu_mask, weight_decay
    )
    y = batch_norm(f"{name}_bn1")(conv2d(filters, 3, strides, f"{name}_conv1", weight_decay)(x))
    y = relu(y, inner, f"{name}_relu_inner")
    y = batch_norm(f"{name}_bn2")(conv2d(filters, 3, 1, f"{name}_conv2", weight_decay)(y))
    shortcut = x
    if needs_projection(strides, x.shape[-1], filters):
        shortcut = conv2d(filters, 1, strides, f"{name}_projection", weight_decay)(x)
        shortcut = batch_norm(f"{name}_projection_bn")(shortcut)
    return relu(layers.Add(name=f"{name}_add")([y, shortcut]), after_add, f"{name}_relu_after_add")


def preact_block(
    x, filters: int, strides: int = 1, relu_mask: Sequence[bool] | None = None, name: str = "block",
    weight_decay: float = 0.0, bottleneck: bool = False,
):  # fmt: skip
    """Pre-activation residual block (He et al., Identity Mappings; paper Fig. 4).

    Building block: BN-ReLU-conv3x3, BN-ReLU-conv3x3. Bottleneck: BN-ReLU-conv1x1(c), BN-ReLU-conv3x3(c),
    BN-ReLU-conv1x1(4c); the stride sits on the 3x3 convolution. Where the shape changes, the shortcut
    is a 1x1 projection of the pre-activated input.
    """
    check_bool(bottleneck, "bottleneck")
    kind = patterns.BOTTLENECK if bottleneck else patterns.BASIC_PREACT
    filters, strides, weight_decay, mask = check_block(kind, filters, strides, relu_mask, weight_decay)
    if bottleneck:
        spec = [(1, filters, 1), (3, filters, strides), (1, output_channels(kind, filters), 1)]
    else:
        spec = [(3, filters, strides), (3, filters, 1)]
    y = x
    for i, (slot, keep, (kernel, width, stride)) in enumerate(zip(kind.slots, mask, spec), start=1):
        y = relu(batch_norm(f"{name}_bn{i}")(y), keep, f"{name}_relu_{slot}")
        if i == 1:
            preactivated = y
        y = conv2d(width, kernel, stride, f"{name}_conv{i}", weight_decay)(y)
    out_filters = spec[-1][1]
    shortcut = x
    if needs_projection(strides, x.shape[-1], out_filters):
        shortcut = conv2d(out_filters, 1, strides, f"{name}_projection", weight_decay)(preactivated)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def bottleneck_block(x, filters: int, **kwargs):
    """:func:`preact_block` with ``bottleneck=True`` (the ``preact`` family's block)."""
    return preact_block(x, filters, bottleneck=True, **kwargs)


def merge_and_run(
    inputs, filters: int, strides: int = 1, relu_mask: Sequence[bool] | None = None, name: str = "block",
    weight_decay: float = 0.0, merge_output: bool = False,
):  # fmt: skip
    """Merge-and-run block of DFN-MR (paper Fig. 5), called on ``[x1, x2]``.

    Branch i: conv-BN-ReLU-conv-BN = d_i; line i: x_i or a 1x1 conv-BN projection where the shape
    changes; m = 0.5 * (line1 + line2) (just ``x`` where both inputs are the same tensor, as in the
    first block); outputs ``[ReLU(m + d1), ReLU(m + d2)]``. With ``merge_output=True`` (the network's
    last block) the output is the single ``ReLU(m + d1 + d2)``, whose ReLU is kept unless both
    ``branch*_out`` slots are removed.
    """
    if not (isinstance(inputs, (list, tuple)) and len(inputs) == 2):
        raise ValueError(f"merge_and_run is called on [x1, x2], its two lines (the same tensor twice for the "
                         f"first block); received {inputs!r:.80}.")  # fmt: skip
    kind = patterns.MERGE_AND_RUN
    filters, strides, weight_decay, mask = check_block(kind, filters, strides, relu_mask, weight_decay)
    mask = dict(zip(kind.slots, mask))
    x1, x2 = inputs
    project = needs_projection(strides, x1.shape[-1], filters)
    residuals, lines = [], []
    for b, x in enumerate(inputs, start=1):
        prefix = f"{name}_branch{b}"
        y = batch_norm(f"{prefix}_bn1")(conv2d(filters, 3, strides, f"{prefix}_conv1", weight_decay)(x))
        y = relu(y, mask[f"branch{b}_inner"], f"{name}_relu_branch{b}_inner")
        y = conv2d(filters, 3, 1, f"{prefix}_conv2", weight_decay)(y)
        residuals.append(batch_norm(f"{prefix}_bn2")(y))
        if project:
            x = conv2d(filters, 1, strides, f"{name}_line{b}_projection", weight_decay)(x)
            x = batch_norm(f"{name}_line{b}_projection_bn")(x)
        lines.append(x)
    same = not project and x1 is x2
    merged = lines[0] if same else layers.Average(name=f"{name}_merge")(lines)
    if merge_output:
        keep = mask["branch1_out"] or mask["branch2_out"]
        return relu(layers.Add(name=f"{name}_add")([merged, *residuals]), keep, f"{name}_relu_merged_out")
    outputs = [layers.Add(name=f"{name}_add{b}")([merged, r]) for b, r in enumerate(residuals, start=1)]
    return [relu(y, mask[f"branch{b}_out"], f"{name}_relu_branch{b}_out") for b, y in enumerate(outputs, 1)]
