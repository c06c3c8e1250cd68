"""Check images before a zoo model sees them: shape, dtype, range, and the [0, 1]-scaling pitfall.

Zoo models (and every model built with ``normalization=``) include their normalisation and take **raw**
images: uint8, or floats on the 0-255 scale. Images already scaled to [0, 1] (``images / 255``) or
standardised would still give an answer, just a wrong one, so :func:`check_images` refuses them with a
message that says what was wrong and what is valid. :class:`CheckedModel` runs the check wherever it is
given images (``predict``, ``evaluate``, ``fit`` and its ``validation_data``, ``__call__`` and the
``*_on_batch`` methods) on concrete arrays (never on the symbolic tensors of a traced step, nor inside a step
of JAX's trainer when it runs as a layer of another model), and on each
batch of a ``tf.data`` dataset, a ``keras.utils.PyDataset``, a PyTorch ``DataLoader`` or a Python generator
as it streams; it is what :func:`relu_ratio.zoo.load` returns.

Example:
    >>> import numpy as np
    >>> from relu_ratio.inputs import check_images
    >>> check_images(np.zeros((2, 32, 32, 3), np.uint8), (32, 32, 3)).shape
    (2, 32, 32, 3)
    >>> check_images(np.full((2, 32, 32, 3), 0.5), (32, 32, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    relu_ratio.inputs.ImageInputError: images look scaled to [0, 1] ...
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Iterator, Sequence

import keras
import ml_dtypes
import numpy as np

from relu_ratio.validators import check_bool

RAW = "raw images: uint8, or floats on the 0-255 scale (the model normalises them itself)"
SCALED_SHARE = 0.01  # float images with fewer values above 1 than this share look scaled to [0, 1]
ROUNDING = 1e-3  # float32 interpolation (a random rotation or zoom of 0-255 images) overshoots by ~3e-5;
# a coarser dtype is allowed 2 * 255 * its epsilon (float16: 0.5, four of its steps at 255)


class ImageInputError(ValueError):
    """Images a model cannot take as they are: wrong shape, dtype or value range."""


def check_images(images, input_shape: Sequence[int | None]) -> np.ndarray:
    """Return ``images`` as a numpy array after checking it is a batch of raw images of ``input_shape``.

    Checked: a batch axis and ``(height, width, channels) == input_shape`` (``None`` matches any size), a real
    numeric dtype (bfloat16, JAX's and PyTorch's, too; not bool, strings or objects), finite values in
    [0, 255] (give or take an interpolation's rounding: 2 * 255 * the float dtype's epsilon, at least
    :data:`ROUNDING`), and, for floats, not scaled to [0, 1] (the ``images / 255`` pitfall): that is, fewer
    than 1 % of the values above 1 (:data:`SCALED_SHARE`) while some are above 0. A share rather than the
    maximum, so that a few outlier pixels (a hot pixel, an annotation at 2.0) cannot make scaled images pass;
    raw 0-255 images have far more values above 1 unless nearly black (an all-zero batch is allowed; set
    ``model.check_inputs = False`` for really dark images).

    Raises:
        ImageInputError: naming what was wrong and what is valid.
    """
    array = np.asarray(images)
    values = array.astype(np.float32) if array.dtype == ml_dtypes.bfloat16 else array  # JAX's, PyTorch's
    expected = tuple(input_shape)
    want = f"(batch, {', '.join('any' if d is None else str(d) for d in expected)})"
    numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    if array.dtype == bool or not numeric:
        raise ImageInputError(f"images have dtype {array.dtype}; expected {RAW}.")
    if array.ndim == len(expected) and _fits(array.shape, expected):
        raise ImageInputError(
            f"images have shape {array.shape}, a single image without a batch axis; expected {want}. "
            "Use images[None] for one image."
        )
    if array.ndim != len(expected) + 1 or not _fits(array.shape[1:], expected):
        hint = ""
        if array.ndim == len(expected) and expected[-1] == 3:
            hint = " Grayscale? Stack it to RGB: np.repeat(images[..., None], 3, axis=-1)."
        elif array.ndim == len(expected) + 1 and array.shape[-1] != expected[-1]:
            hint = f" The model takes {expected[-1]} channel(s), channels last."
            if array.shape[-1] == 1 and expected[-1] == 3:
                hint += " Grayscale? Stack it to RGB: np.repeat(images, 3, axis=-1)."
        elif array.ndim == len(expected) + 1:
            hint = " Resize the images (e.g. keras.layers.Resizing) to the model's input size."
        raise ImageInputError(f"images have shape {array.shape}; expected {want}.{hint}")
    if array.size == 0:
        return array
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        if not finite.all():
            raise ImageInputError(
                f"images contain {int(array.size - finite.sum()):,} NaN or infinite value(s); expected {RAW}."
            )
    low, high = float(values.min()), float(values.max())
    floating = values.dtype.kind == "f"
    rounding = max(ROUNDING, 2 * 255 * float(ml_dtypes.finfo(array.dtype).eps)) if floating else 0
    if low < -rounding or high > 255 + rounding:
        standardised = low < -rounding and high < 10
        hint = " They look standardised (mean 0): pass the raw images." if standardised else ""
        span = f"[{low:.8g}, {high:.8g}]"  # not rounded into [0, 255]
        raise ImageInputError(f"image values span {span}; expected {RAW}, in [0, 255].{hint}")
    above = np.count_nonzero(values > 1) / values.size if np.issubdtype(values.dtype, np.floating) else 1.0
    if high > 0 and above < SCALED_SHARE:
        raise ImageInputError(
            f"images look scaled to [0, 1] ({100 * above:.2g} % of the values are above 1; they span "
            f"[{low:g}, {high:g}]); expected {RAW}. Pass the raw 0-255 images (e.g. images * 255), or set "
            "model.check_inputs = False if they really are that dark."
        )
    return array


def _fits(shape: Sequence[int], expected: Sequence[int | None]) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _is_tf_dataset(x) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec") and hasattr(x, "map")


def _checked_dataset(dataset, input_shape: tuple):
    """``dataset`` with :func:`check_images` run on the images of every batch as it streams (elements
    ``images`` or ``(images, labels[, weights])``; dict elements go through unchanged)."""
    import tensorflow as tf

    def check(images):
        return check_images(images, input_shape)

    def checked(images, *rest):
        if isinstance(images, dict):
            return (images, *rest) if rest else images
        out = tf.ensure_shape(tf.numpy_function(check, [images], images.dtype, stateful=False), images.shape)
        return (out, *rest) if rest else out

    return dataset.map(checked)


REFUSED = " of the dataset was refused: "  # how a streamed batch's ImageInputError begins


def _refused(message: object, index: int | None = None) -> ImageInputError:
    """The error for a batch of a dataset refused with ``message`` (``index``: which batch, where known)."""
    return ImageInputError(f"{'a batch' if index is None else f'batch {index}'}{REFUSED}{message}")


class _CheckedPyDataset(keras.utils.PyDataset):
    """``dataset`` (a ``keras.utils.PyDataset``) with its batches' images checked as Keras draws them; its
    workers, ``num_batches`` and epoch hooks are the dataset's own (picklable for multiprocessing workers
    where the dataset is: it holds no model)."""

    def __init__(self, dataset: keras.utils.PyDataset, input_shape: tuple):
        super().__init__(dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size)
        self.dataset, self.input_shape = dataset, input_shape

    @property
    def num_batches(self) -> int | None:
        return self.dataset.num_batches

    def __getitem__(self, index: int):
        return _checked_batch(self.dataset[index], self.input_shape, index)

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()


def _is_torch_loader(x) -> bool:
    """Whether ``x`` is a PyTorch ``DataLoader`` (or a subclass), found as Keras finds it: without importing
    PyTorch."""
    classes = type(x).__mro__
    return any(c.__name__ == "DataLoader" and c.__module__.startswith("torch.utils.data") for c in classes)


@functools.cache
def _checked_loader_class() -> type:
    """The ``DataLoader`` subclass :func:`_checked_loader` makes (defined on first use: PyTorch is
    optional)."""
    from torch.utils.data import DataLoader

    class CheckedLoader(DataLoader):
        """``loader``'s batches, each one's images checked as Keras draws it; the same ``dataset`` and
        ``batch_size`` (what Keras reads), while ``loader`` itself (its sampler, workers, collation) makes
        the batches."""

        def __init__(self, loader: DataLoader, input_shape: tuple):
            super().__init__(loader.dataset, batch_size=loader.batch_size)
            self.loader, self.input_shape = loader, input_shape

        def __len__(self) -> int:
            return len(self.loader)

        def __iter__(self) -> Iterator:
            for index, batch in enumerate(self.loader):
                yield _checked_batch(batch, self.input_shape, index)

    return CheckedLoader


def _checked_loader(loader, input_shape: tuple):
    """The PyTorch ``DataLoader`` ``loader`` with its batches' images checked as they stream."""
    return _checked_loader_class()(loader, input_shape)


def _checked_generator(batches: Iterator, input_shape: tuple) -> Iterator:
    """The batches of the generator ``batches``, each one's images checked as Keras draws it."""
    for index, batch in enumerate(batches):
        yield _checked_batch(batch, input_shape, index)


def _checked_batch(batch, input_shape: tuple, index: int):
    """``batch`` (``images`` or ``(images, labels[, weights])``, a list as a tuple, as Keras takes it) with
    its images checked; an :class:`ImageInputError` names the batch."""
    try:
        return _checked_input(tuple(batch) if isinstance(batch, list) else batch, input_shape)
    except ImageInputError as error:
        raise _refused(error, index) from None


@contextlib.contextmanager
def _dataset_errors(model: keras.Model, streamed: bool) -> Iterator[None]:
    """Around ``model``'s ``predict``/``evaluate``/``fit`` loop: an :class:`ImageInputError` raised inside a
    ``tf.data`` pipeline reaches Keras as a TensorFlow error, so give it back its own type and message; and
    on JAX, where Keras detaches the variables' values for the loop and attaches them at its end (``fit``
    in a ``finally``, ``predict`` and ``evaluate`` not), a ``streamed`` batch refused mid-loop would leave
    them detached (read as their initial values): attach them again."""
    saved = None
    if streamed and keras.backend.backend() == "jax":
        saved = {id(v): v.value for v in _loop_variables(model)}
        before = getattr(model, "_jax_state", None)  # e.g. left by train_on_batch: not this loop's state
    try:
        yield
    except Exception as error:
        if saved is not None:
            after = getattr(model, "_jax_state", None)  # absent before a model's first loop
            _attach(model, saved, synced=after is not before)
        text = str(error)
        if isinstance(error, ImageInputError) or "ImageInputError: " not in text:
            raise
        message = text.split("ImageInputError: ", 1)[1].splitlines()[0]
        raise (ImageInputError(message) if REFUSED in message else _refused(message)) from None


def _loop_variables(model: keras.Model) -> list:
    """The variables Keras' JAX trainer detaches during a loop: the model's, its optimizer's, its metrics'."""
    optimizer = getattr(model, "optimizer", None)
    return [*model.variables, *(optimizer.variables if optimizer else ()), *model.metrics_variables]


def _attach(model: keras.Model, saved: dict, synced: bool) -> None:
    """After a JAX loop stopped by an error: the state of the last batch it ran (Keras' own sync, where the
    loop ``synced`` one), then, for a variable still detached (no batch ran), its value before the loop
    (``saved``, by ``id``). (Variables the loop made, an optimizer's or metrics' built for it, are built from
    a first batch Keras draws before the loop, so a refused first batch stops it before they exist.)
    Keras has no public way to do this: it reads ``Model._jax_state`` and ``Variable._value`` (Keras
    3.15), and ``test_inputs`` pins the behaviour."""
    if synced:
        model.jax_state_sync()
    model._jax_state = None  # as at the end of Keras' own loop: never synced again
    for variable in _loop_variables(model):
        if variable._value is None and id(variable) in saved:  # Keras' attribute: detached
            variable.assign(saved[id(variable)])


def _streamed(x) -> bool:
    """Whether ``predict``/``evaluate``/``fit``'s checked ``x`` streams its batches through a check."""
    return isinstance(x, (_CheckedPyDataset, types.GeneratorType)) or _is_tf_dataset(x) or _is_torch_loader(x)


def _concrete(x) -> np.ndarray | None:
    """``x`` as numpy if it is a concrete (eager) tensor, ``None`` for symbolic tensors and anything else."""
    if isinstance(x, keras.KerasTensor) or not hasattr(x, "__array__") or not hasattr(x, "shape"):
        return None
    try:  # the backend's own conversion copies a GPU tensor to the host (numpy cannot)
        return keras.ops.convert_to_numpy(x) if keras.ops.is_tensor(x) else np.asarray(x)
    except Exception:  # a symbolic TensorFlow tensor or a JAX tracer inside a traced step
        return None


def _is_loss(loss: object, name: str, loss_class: type) -> bool:
    """Whether a model compiled with ``loss`` computes the Keras loss ``name``, however it was given: its
    name, an instance of ``loss_class``, or the function ``keras.losses.<name>``."""
    return loss == name or isinstance(loss, loss_class) or loss is getattr(keras.losses, name)


def _is_pil_image(x) -> bool:
    return type(x).__module__.startswith("PIL.")


def _plain_numbers(x) -> bool:
    """A (nested) list of numbers or numpy arrays, as opposed to a list of (symbolic) tensors."""
    if isinstance(x, list):
        return all(_plain_numbers(v) for v in x[:2])
    return isinstance(x, (np.ndarray, np.generic, int, float))


def _checked_input(x, input_shape: tuple):
    """``x`` with its images checked against ``input_shape`` (a model's, without the batch axis).

    Concrete images are checked: numpy arrays, lists, eager TensorFlow/JAX tensors, relu_ratio ``Batches``,
    and the images inside a tuple ``(x,)``/``(x, y)`` or a one-key dict; a ``tf.data`` dataset, a
    ``keras.utils.PyDataset``, a PyTorch ``DataLoader`` and a Python generator are checked batch by batch as
    they stream. Symbolic tensors (a traced training or serving step) go through unchanged."""
    from relu_ratio.data import Batches

    if _is_tf_dataset(x):
        return _checked_dataset(x, input_shape)
    if isinstance(x, Batches):
        check_images(x.split.images, input_shape)
    elif isinstance(x, keras.utils.PyDataset):
        return _CheckedPyDataset(x, input_shape)
    elif isinstance(x, types.GeneratorType):
        return _checked_generator(x, input_shape)
    elif _is_torch_loader(x):
        return _checked_loader(x, input_shape)
    elif isinstance(x, tuple) and x:
        return (_checked_input(x[0], input_shape), *x[1:])
    elif isinstance(x, dict) and len(x) == 1:
        ((key, value),) = x.items()
        return {key: _checked_input(value, input_shape)}
    elif isinstance(x, np.ndarray) or (isinstance(x, list) and _plain_numbers(x)):
        return check_images(x, input_shape)
    elif _is_pil_image(x) or (isinstance(x, list) and x and _is_pil_image(x[0])):
        given = f"a list of {len(x)} PIL images" if isinstance(x, list) else "a PIL image"
        raise ImageInputError(
            f"the model takes an array of images, not {given}: resize them to {tuple(input_shape[:2])} "
            "and stack them into one uint8 array first, e.g. np.stack([np.asarray(image.convert('RGB')) "
            "for image in images])."
        )
    else:  # no `:=` here: TensorFlow's AutoGraph, tracing this function in an export, cannot convert it
        array = _concrete(x)
        if array is not None:
            check_images(array, input_shape)  # the tensor itself goes on (gradients still flow)
    return x


IMAGE_ARGUMENTS = {  # the arguments of keras.Model's methods that carry images, which CheckedModel checks
    "fit": ("x", "validation_data"), "evaluate": ("x",), "predict": ("x",), "predict_on_batch": ("x",),
    "train_on_batch": ("x",), "test_on_batch": ("x",),
}  # fmt: skip


def _inside_a_layer_call() -> bool:
    """Whether another layer's call is under way, i.e. a checked model runs as a layer of another model, whose
    layers before it may have moved the values (Keras' call context, ``keras.src``, Keras 3.15: there is no
    public way)."""
    from keras.src.backend.common import global_state

    return global_state.get_global_attribute("current_call_ctx") is not None


def _in_stateless_scope() -> bool:
    """Whether a stateless call is under way: how JAX's trainer runs a step of ``fit``, ``evaluate`` or
    ``predict`` (compiled or not), whose variables it has taken out of the model until the step returns
    (``keras.src``, Keras 3.15: there is no public way)."""
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    return in_stateless_scope()


@keras.saving.register_keras_serializable(package="relu_ratio")
class CheckedModel(keras.Model):
    """A functional ``keras.Model`` that checks concrete numpy images with :func:`check_images`.

    Build it like a functional model (``CheckedModel(inputs, outputs)``) or from one
    (:meth:`from_model`, sharing its layers and weights). It saves (``.keras``), exports (SavedModel) and
    fine-tunes like any other; ``model.check_inputs = False`` turns the check off.
    """

    _check_inputs = True

    @property
    def check_inputs(self) -> bool:
        """Whether concrete numpy images are checked (``True`` unless set ``False``)."""
        return self._check_inputs

    @check_inputs.setter
    def check_inputs(self, value: bool) -> None:
        check_bool(value, f"{self.name}.check_inputs")  # a string "False" would read as true
        self._check_inputs = bool(value)

    @classmethod
    def from_model(cls, model: keras.Model, name: str | None = None) -> CheckedModel:
        return cls(model.input, model.output, name=name or model.name)

    def _check(self, x):
        """``x`` with its images checked by :func:`_checked_input` (unless ``check_inputs`` is off or the
        model has more than one input)."""
        if not self.check_inputs or len(self.inputs) != 1:
            return x
        return _checked_input(x, tuple(self.input_shape[1:]))

    def _checked(self, method: str, args: tuple, kwargs: dict) -> tuple[tuple, dict, object]:
        """``args``/``kwargs`` of ``keras.Model.<method>`` with the images among them checked
        (:data:`IMAGE_ARGUMENTS`), however they were passed (by position or by name); and ``x`` as checked."""
        bound = inspect.signature(getattr(keras.Model, method)).bind(self, *args, **kwargs)
        for name in IMAGE_ARGUMENTS[method]:
            if bound.arguments.get(name) is not None:
                if method in ("fit", "evaluate"):  # what takes labels
                    self._check_labels(bound.arguments[name], name, bound.arguments.get("y"))
                bound.arguments[name] = self._check(bound.arguments[name])
        return bound.args[1:], bound.kwargs, bound.arguments.get("x")

    def _check_labels(self, x, name: str, y=None) -> None:
        """Labels that would fail deep inside Keras or train silently, given as relu_ratio ``Batches`` or as
        concrete arrays (numpy, or a tensor: a JAX array, a PyTorch or eager TensorFlow tensor): under a
        categorical cross-entropy (what :func:`relu_ratio.train.compile_for` compiles) one value per image
        (class indices: "too many indices" on PyTorch; a TensorFlow model then also fails its next ``fit``),
        one-hot rows of another width than the model's classes, or NaN; under a sparse categorical
        cross-entropy one-hot rows (a TensorFlow model then also fails its next ``fit``) and a class index
        that is no whole number within the model's classes (JAX trains on it without an error; the loss's
        ``ignore_class`` aside); under either, text and ``Batches`` of another number of classes than the
        model's. The loss is recognised by its name, its class or its function (``keras.losses.<name>``).
        Say what to pass."""
        from relu_ratio.data import Batches

        classifier = len(self.outputs) == 1 and len(self.output_shape) == 2  # (images, classes)
        classes = self.output_shape[-1] if classifier else None
        loss = getattr(self, "loss", None)
        one_hot = _is_loss(loss, "categorical_crossentropy", keras.losses.CategoricalCrossentropy)
        sparse = _is_loss(loss, "sparse_categorical_crossentropy", keras.losses.SparseCategoricalCrossentropy)
        if not (self.check_inputs and classes is not None and classes > 1 and (one_hot or sparse)):
            return
        compiled = "the model was compiled for one-hot labels (categorical cross-entropy, as by compile_for)"
        indices = "the model was compiled for class indices (sparse categorical cross-entropy)"
        if isinstance(x, Batches):
            if one_hot and not x.one_hot:
                raise ValueError(f"{compiled}, but the batches given as {name} hold class indices: make them "
                                 "with data.batches(..., one_hot=True).")  # fmt: skip
            if sparse and x.one_hot:
                raise ValueError(f"{indices}, but the batches given as {name} hold one-hot labels: make them "
                                 "with data.batches(..., one_hot=False), or compile with a categorical "
                                 "cross-entropy.")  # fmt: skip
            if x.split.info.num_classes != classes:
                raise ValueError(
                    f"the batches given as {name} are of {x.split.info.num_classes} classes and {self.name} "
                    f"has {classes}: build or load the model with classes= the data's number of classes."
                )
            return  # a Split's labels are class indices of its classes (data.Split checks them)
        if name == "x":
            labels, given = _concrete(y), "y"
        else:
            labels, given = _concrete(x[1] if isinstance(x, tuple) and len(x) > 1 else None), f"{name}[1]"
        if labels is not None and labels.dtype.kind in "US":  # Keras said "Invalid dtype: str128"
            wanted = f"one-hot rows of {classes} values" if one_hot else f"class indices 0 to {classes - 1}"
            raise ValueError(f"{given} holds text (dtype {labels.dtype}); labels are numbers: {wanted} (by "
                             "each class's position in the list of class names).")  # fmt: skip
        if labels is None or labels.ndim == 0 or labels.dtype.kind not in "iuf":
            return
        per_image = labels.ndim == 1 or labels.shape[1:] == (1,)
        if one_hot:
            if per_image:
                raise ValueError(
                    f"{compiled}, but {given} holds class indices (shape {labels.shape}): give keras.utils."
                    f"to_categorical({given}, {classes}), or compile with a sparse loss and metrics."
                )
            if labels.shape[1:] != (classes,):
                raise ValueError(
                    f"{compiled}, but {given} has shape {labels.shape} and {self.name} has {classes} "
                    f"classes: give one-hot rows of {classes} values, or build or load the model with "
                    "classes= the data's number of classes."
                )
            if not np.isfinite(labels).all():
                row = int(np.argwhere(~np.isfinite(labels))[0, 0])
                raise ValueError(f"{given} holds NaN or infinite values (row {row}): one-hot labels are "
                                 "finite.")  # fmt: skip
            return
        if not per_image and labels.ndim == 2:
            raise ValueError(f"{indices}, but {given} holds one-hot rows (shape {labels.shape}): give "
                             f"{given}.argmax(axis=1), or compile with a categorical "
                             "cross-entropy.")  # fmt: skip
        if not per_image:
            raise ValueError(f"{indices}, but {given} has shape {labels.shape}: give one class index per "
                             "image.")  # fmt: skip
        values = labels.reshape(-1)
        refused = ~np.isfinite(values) | (values < 0) | (values >= classes) | (values != np.floor(values))
        if getattr(loss, "ignore_class", None) is not None:
            refused &= values != loss.ignore_class
        if refused.any():
            index = values[refused][0]
            if not float(index).is_integer():
                raise ValueError(f"{given} holds class index {index}, which is not a whole number: "
                                 f"{self.name}'s class indices are 0 to {classes - 1}.")  # fmt: skip
            raise ValueError(
                f"{given} holds class index {int(index)}, but {self.name} has {classes} classes (indices 0 "
                f"to {classes - 1}): build or load it with classes= the data's number of classes."
            )

    def __call__(self, inputs, *args, **kwargs):
        if keras.backend.backend() == "jax" and _in_stateless_scope():  # a step of JAX's trainer through an
            return super().__call__(inputs, *args, **kwargs)  # outer model: raising would purge its variables
        try:
            checked = self._check(inputs)
        except ImageInputError as error:
            if not _inside_a_layer_call():
                raise
            raise ImageInputError(
                f"{error} {self.name} runs inside another model: if that model's layers before it (a resize, "
                f"an augmentation) move the values out of [0, 255], set {self.name}.check_inputs = False."
            ) from None
        return super().__call__(checked, *args, **kwargs)

    def predict(self, *args, **kwargs):
        args, kwargs, x = self._checked("predict", args, kwargs)
        if isinstance(x, np.ndarray) and len(x) == 0 and len(self.outputs) == 1:  # Keras fails on it
            return np.zeros((0, *self.output_shape[1:]), dtype=np.float32)
        with _dataset_errors(self, _streamed(x)):
            return super().predict(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        args, kwargs, x = self._checked("evaluate", args, kwargs)
        with _dataset_errors(self, _streamed(x)):
            return super().evaluate(*args, **kwargs)

    def fit(self, *args, **kwargs):
        args, kwargs, x = self._checked("fit", args, kwargs)
        with _dataset_errors(self, _streamed(x)):
            return super().fit(*args, **kwargs)

    def predict_on_batch(self, *args, **kwargs):
        args, kwargs, _ = self._checked("predict_on_batch", args, kwargs)
        return super().predict_on_batch(*args, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        args, kwargs, _ = self._checked("train_on_batch", args, kwargs)
        return super().train_on_batch(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        args, kwargs, _ = self._checked("test_on_batch", args, kwargs)
        return super().test_on_batch(*args, **kwargs)

    def save(self, filepath, *args, **kwargs):
        """Save as a plain functional ``keras.Model`` (layers, weights, compile state and optimizer), so the
        ``.keras`` file loads with ``keras.saving.load_model`` where relu_ratio is not installed. The input
        check is not part of the file; ``relu_ratio.zoo.load`` or :meth:`from_model` gives it back. The
        compile state is handed over as it is, not rebuilt from its config, so a custom loss or metric saves
        as a plain model's does (rebuilding it needs the function by name: a ``ModelCheckpoint`` failed on
        it). Keras has no public way to do this: the file's compile config is ``Model._compile_config``
        (Keras 3.15)."""
        plain = keras.Model(self.input, self.output, name=self.name)  # as built: one input is no list
        if self.compiled:
            plain.optimizer = self.optimizer
            plain._compile_config = self._compile_config
            plain.compiled = True
        return plain.save(filepath, *args, **kwargs)
