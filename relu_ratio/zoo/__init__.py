"""The registry of pretrained models: ``list``, ``info``, ``load``, ``verify``, ``evaluate``, ``export``,
``register``, ``fetch``.

Each entry is a folder ``zoo/<name>/`` holding ``metadata.json`` (a :class:`ZooEntry`: architecture,
explicit ReLU pattern, weights sha256 and size, dataset, class names, mean/std, measured top-1/top-5,
params, FLOPs, training command/config/epochs/wall time/device/backend, versions, and the outputs on 40
fixed images that :func:`verify` compares with) and ``model.weights.h5`` (float16, loaded into float32
models), and its model card ``README.md`` (:mod:`card`, generated from the metadata); an entry registered
without its weights file names the git object that keeps it, and :func:`fetch` writes it there
(:mod:`git_weights`). Names are ``{family}{depth}_{pattern}`` with an optional ``.tag`` (``resnet20_21``,
``resnet20_21.fast``); the plain name is the default tag.

The store is ``$RELU_RATIO_ZOO`` if set, else the ``relu_ratio.zoo_store`` package shipped in the wheel,
else the repository's ``zoo/``. Every :func:`load` checks the weights file's size and sha256 before
loading (for the shipped store also against the package's ``presets.json``, :mod:`presets`), and a file
that does not fit the architecture raises: a wrong model is never returned. ``zoo.load(name)`` is the
one-line spelling of the builders' ``weights=`` (``models.build("resnet20_21", weights="cifar10")``).
TensorFlow is needed only for the SavedModel functions (:func:`export`, :func:`load_saved_model`).

Example:
    >>> from relu_ratio import zoo
    >>> zoo.list("resnet56*")                                     # doctest: +SKIP
    ['resnet56_11', 'resnet56_21']
    >>> model = zoo.load("resnet20_11")                           # doctest: +SKIP
    >>> probabilities = model.predict(uint8_images)               # doctest: +SKIP
"""


from relu_ratio.zoo import card, presets, reference, registry
from relu_ratio.zoo.entry import (
    IntegrityError,
    MetadataError,
    UnknownModelError,
    WeightsNotStoredError,
    ZooEntry,
    ZooError,
)
from relu_ratio.zoo.git_weights import fetch
from relu_ratio.zoo.publish import register
from relu_ratio.zoo.reference import verify
from relu_ratio.zoo.registry import (
    evaluate,
    info,
    list_models,
    load,
    markdown_table,
    store_dir,
    update_table,
)
from relu_ratio.zoo.saved_model import export, load_saved_model

# `zoo.list`, the registry verb (like torch.hub.list); left out of __all__ so `import *` keeps the builtin.
list = list_models

__all__ = [
    "IntegrityError",
    "MetadataError",
    "UnknownModelError",
    "WeightsNotStoredError",
    "ZooEntry",
    "ZooError",
    "card",
    "evaluate",
    "export",
    "fetch",
    "info",
    "list_models",
    "load",
    "load_saved_model",
    "markdown_table",
    "presets",
    "reference",
    "register",
    "registry",
    "store_dir",
    "update_table",
    "verify",
]
