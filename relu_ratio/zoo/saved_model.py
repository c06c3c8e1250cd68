"""TensorFlow SavedModel export of zoo entries. TensorFlow is imported here only, and only when called.

The SavedModel has one serving signature, ``serve``: uint8 images ``[None, H, W, C]`` in, class
probabilities out. It is built from the verified stored weights and cached, per weights hash, under
``$RELU_RATIO_HOME/saved_models/<name>-<sha256[:12]>`` (default ``~/.cache/relu_ratio``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import keras

from relu_ratio import files, paths
from relu_ratio.user_warning import warn
from relu_ratio.zoo import registry

SIGNATURE = "serve"
DIGEST = "relu_ratio-sha256.json"  # beside a cached SavedModel: the sha256 of each of its files


def cache_dir() -> Path:
    """Where exported SavedModels are cached: ``saved_models`` in the package's cache home
    (``$RELU_RATIO_HOME``, :func:`relu_ratio.paths.home`)."""
    return paths.home() / "saved_models"


def saved_model_dir(name: str) -> Path:
    """The cached SavedModel of ``name``, exporting it first if needed (the weights are verified either way).

    Writes are atomic (:func:`relu_ratio.files.atomic_folder`): if another process got there first, its
    copy is kept. A write that fails (disk full, no permission) leaves no temporary folder and raises
    :class:`relu_ratio.files.CacheError` naming the cache directory. A cached copy is reused only if every
    file still has the sha256 recorded when it was written; a damaged one is exported again, with a warning.
    """
    entry = registry.info(name)
    final = cache_dir() / f"{name}-{entry.sha256[:12]}"
    if (final / "saved_model.pb").is_file():
        registry.verified_weights(entry)
        if _intact(final):
            return final
        warn(f"the cached SavedModel {final} is damaged; exporting it again.")
        shutil.rmtree(final, ignore_errors=True)
    model = registry.load(name)
    try:
        with files.atomic_folder(final) as staging:
            _write_saved_model(model, staging)
            files.write_json(staging / DIGEST, files.folder_digest(staging))
    except OSError as error:
        raise files.cache_write_error(final.parent, error) from error
    return final


def _intact(folder: Path) -> bool:
    """Whether every file of the cached SavedModel ``folder`` matches the digest written with it."""
    try:
        recorded = json.loads((folder / DIGEST).read_text())
    except (OSError, ValueError):
        return False
    return {**files.folder_digest(folder), DIGEST: None} == {**recorded, DIGEST: None}


def _write_saved_model(model: keras.Model, path: Path) -> None:
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        return model(keras.ops.cast(images, "float32"), training=False)

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.uint8, name="images")
    archive.add_endpoint(SIGNATURE, serve, input_signature=[spec])
    try:
        archive.write_out(os.fspath(path), verbose=False)
    except tf.errors.OpError as error:  # TensorFlow's own file system reports a full disk this way
        raise OSError(errno.EIO, f"TensorFlow could not write {path}: {error.message}") from error


def check_export_target(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if :func:`export` can write there (a new or empty folder, writable, not
    the current folder, which the export would replace); checked before the SavedModel is built.

    Raises:
        ValueError: ``path`` is empty or blank, the current folder, under a file or in an unwritable folder.
        FileExistsError: ``path`` exists and is not an empty folder.
    """
    new = "give a new folder, e.g. ./saved_model"
    files.check_path(path, "the export path")
    if files.names_nothing(path):
        raise ValueError(f"the export path is empty or blank ({os.fspath(path)!r}); {new}.")
    target = Path(path)
    if target.resolve() == Path.cwd().resolve():
        raise ValueError(f"{target} is the current folder ({Path.cwd()}), which an export cannot replace; "
                         f"{new}.")  # fmt: skip
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder; choose a new path.")
    files.check_writable(target, "export folder")
    return target


def export(name: str, path: str | os.PathLike) -> Path:
    """Write the SavedModel of ``name`` to ``path`` (which must not exist, or be an empty folder)."""
    if isinstance(name, keras.Model):  # a model of one's own, e.g. a fine-tuned zoo model
        raise TypeError(f"zoo.export takes a zoo entry's name; received the model {name.name!r}: export a "
                        "model of your own with model.export(path) (a TensorFlow SavedModel).")  # fmt: skip
    target = check_export_target(path)
    source = saved_model_dir(name)
    try:
        if target.exists():
            target.rmdir()
        with files.atomic_folder(target) as staging:
            shutil.copytree(source, staging, ignore=shutil.ignore_patterns(DIGEST))
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise OSError(error.errno, f"cannot export {name!r} to {target}: {reason} ({error}).") from error
    return target


def load_saved_model(name: str):
    """``tf.saved_model.load`` of the cached SavedModel of ``name`` (exported from the verified weights on
    first use); call ``.serve(uint8_images)`` for probabilities. :func:`relu_ratio.zoo.load` gives Keras
    models; this is the TensorFlow-serving form of the same entry.

    Example:
        >>> served = zoo.load_saved_model("resnet20_11")         # doctest: +SKIP
        >>> probabilities = served.serve(uint8_images)            # doctest: +SKIP
    """
    path = saved_model_dir(name)
    import tensorflow as tf

    return tf.saved_model.load(os.fspath(path))
