"""Training recipes: their settings (:data:`RECIPES`), the learning-rate schedule and the compiled optimizer.

Example:
    >>> from relu_ratio.train import recipes
    >>> sorted(recipes.RECIPES)
    ['fast', 'paper']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from relu_ratio.train.metrics import TopKAccuracy
from relu_ratio.user_warning import warn
from relu_ratio.validators import is_integer, plain_number

if TYPE_CHECKING:
    from relu_ratio.train.config import TrainConfig

HOLDOUT_SEED = 0  # --holdout takes the same training images out for every run and seed

RECIPES: dict[str, dict] = {
    "paper": {"epochs": 400, "batch_size": 64, "lr": 0.1, "weight_decay": 1e-4, "label_smoothing": 0.0,
              "schedule": "step", "warmup_epochs": 0.0},
    # fast: chosen on 10-epoch resnet20_21 proxies scored on 5,000 held-out training images (see training/)
    "fast": {"epochs": 30, "batch_size": 128, "lr": 0.1, "weight_decay": 5e-4, "label_smoothing": 0.0,
             "schedule": "cosine", "warmup_epochs": 1.0},
}  # fmt: skip


SCHEDULES = ("step", "cosine", "linear")


@keras.saving.register_keras_serializable(package="relu_ratio")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from ``peak / 10`` to ``peak`` over ``warmup_steps``, then a straight line to zero at
    ``total_steps`` (Keras' ``PolynomialDecay`` has no warm-up; the warm-up matches ``CosineDecay``'s).

    Example:
        >>> schedule = LinearDecay(0.1, total_steps=100, warmup_steps=10)
        >>> [round(float(schedule(step)), 3) for step in (0, 10, 55, 100)]
        [0.01, 0.1, 0.05, 0.0]
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup, total = float(self.warmup_steps), float(self.total_steps)
        rising = self.peak / 10 + (self.peak - self.peak / 10) * step / max(warmup, 1.0)
        falling = self.peak * keras.ops.maximum(0.0, (total - step) / max(total - warmup, 1.0))
        return keras.ops.where(step < warmup, rising, falling)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def learning_rate(
    config: TrainConfig, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The recipe's schedule as a Keras ``LearningRateSchedule`` over optimizer steps."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        # PiecewiseConstantDecay switches after a boundary: the step with index total*f gets the new lr
        bounds = sorted({max(0, int(total * f) - 1) for f in (1 / 2, 3 / 4, 7 / 8)})
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [config.lr * 0.1**i for i in range(len(bounds) + 1)]
        )
    # a warm-up asked for lasts at least one step (not none: 0.001 epochs of 391 steps is 0.391 of a step)
    warmup_steps = int(config.warmup_epochs * steps_per_epoch) or int(config.warmup_epochs > 0)
    warmup = min(warmup_steps, total - 1)
    if config.schedule == "linear":
        return LinearDecay(config.lr, total_steps=total, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.lr / 10 if warmup else config.lr,
        decay_steps=max(1, total - warmup),
        warmup_target=config.lr if warmup else None,
        warmup_steps=warmup,
    )


def outputs_logits(model: keras.Model) -> bool:
    """Whether ``model``'s classifier outputs logits (its last layer has no activation) rather than softmax
    probabilities; anything else (a sigmoid head, features without a classifier) is refused, since the
    recipe's loss is the softmax cross-entropy.

    >>> from relu_ratio import models
    >>> outputs_logits(models.build("resnet8_21")), outputs_logits(models.build("resnet8_21", classifier_activation=None))
    (False, True)
    """  # noqa: E501
    last = model.layers[-1] if model.layers else None
    while isinstance(last, keras.Model) and last.layers:  # a model around the network (the device path's)
        last = last.layers[-1]
    name = getattr(getattr(last, "activation", None), "__name__", None)
    name = "softmax" if isinstance(last, keras.layers.Softmax) else name
    if len(model.outputs or ()) == 1 and len(model.outputs[0].shape) == 2 and name in ("softmax", "linear"):
        return name == "linear"
    raise ValueError(
        f"the recipe trains a softmax classifier (categorical cross-entropy), but {model.name!r} ends in "
        f"{type(last).__name__}{f' with activation {name!r}' if name else ''} and outputs "
        f"{[tuple(o.shape) for o in model.outputs or ()]}: give it a head of (batch, classes) whose last "
        "layer applies softmax or no activation (logits), e.g. keras.layers.Dense(classes, "
        "activation='softmax'), or build it with include_top=True."
    )


def compile_for(
    model: keras.Model, config: TrainConfig, steps_per_epoch: int, steps_per_execution: int | None = None
) -> keras.Model:
    """Compile ``model`` with the recipe's optimizer, schedule, loss and metrics (one-hot labels: top-1 as
    ``accuracy``, top-5 as ``top5``, :class:`~relu_ratio.train.metrics.TopKAccuracy`), running
    ``steps_per_execution`` training steps per compiled call (default: ``config.steps_per_execution``, else
    1). The weight decay is the model's own (coupled L2 on its kernels): build it with
    ``weight_decay=config.weight_decay``, as the training CLI does; so is the precision: build it after
    ``keras.mixed_precision.set_global_policy(...)`` (a ``config.mixed_precision`` the model was not built
    with is named in a warning).

    With ``config.ema`` the optimizer keeps an exponential moving average of the trainable weights (Keras'
    ``use_ema``; BatchNorm's moving statistics are not averaged), which ``fit`` writes into the model when
    training ends. The config's recipe fills in what it leaves unset, and its values are checked
    (:meth:`~relu_ratio.train.TrainConfig.with_recipe`); its model name, folder and data settings are not
    used here (your own network needs none).
    """
    from relu_ratio.train import config as config_module  # it imports this module's recipes

    config_module.check_config(config, "compile_for")
    config = config.with_recipe()
    if steps_per_execution is None:
        steps_per_execution = config.steps_per_execution or 1
    steps = (("steps_per_epoch", steps_per_epoch, " (e.g. len(batches))"),
             ("steps_per_execution", steps_per_execution, ""))  # fmt: skip
    for name, value, example in steps:
        if not is_integer(plain_number(value), 1):
            raise ValueError(f"{name} must be an integer >= 1{example}; received {value!r}.")
    steps_per_epoch = int(steps_per_epoch)
    steps_per_execution = check_steps_per_execution(int(steps_per_execution))
    _warn_of_another_precision(model, config.mixed_precision)
    ema = {} if config.ema is None else {"use_ema": True, "ema_momentum": config.ema}
    optimizer = keras.optimizers.SGD(
        learning_rate(config, steps_per_epoch), momentum=config.momentum, nesterov=config.nesterov, **ema
    )
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing,
                                                from_logits=outputs_logits(model))  # fmt: skip
    # top-5 ranks tied scores by class index, as the zoo does (Keras' TopKCategoricalAccuracy counted every
    # class tied with the fifth as in the top 5: a collapsed network scored 100 %)
    metrics = [keras.metrics.CategoricalAccuracy("accuracy"), TopKAccuracy(5, "top5")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, steps_per_execution=steps_per_execution)
    return model


def check_steps_per_execution(steps: int) -> int:
    """``steps`` training steps per compiled call, which must be 1 on the torch backend (Keras runs one step
    per call there and refuses more only once ``fit`` starts)."""
    if keras.backend.backend() == "torch" and steps != 1:
        raise ValueError(f"steps_per_execution must be 1 on the torch backend (Keras runs one step per call "
                         f"there); received {steps}. Leave it out, or train under KERAS_BACKEND=jax or "
                         "tensorflow.")  # fmt: skip
    return int(steps)


def _warn_of_another_precision(model: keras.Model, mixed_precision: str) -> None:
    """Warn where ``mixed_precision`` (a :class:`TrainConfig` setting other than ``auto``) is the precision of
    none of ``model``'s layers with weights (a model loaded from a file keeps its layers' precision), which
    compiling cannot change."""
    wanted = {"off": "float32"}.get(mixed_precision, mixed_precision)
    policies = {layer.dtype_policy.name for layer in model.layers if layer.weights}
    policies = policies or {model.dtype_policy.name}
    built = " and ".join(sorted(policies))
    if mixed_precision != "auto" and wanted not in policies:
        warn(
            f"mixed_precision={mixed_precision!r} is not applied by compile_for: the model was built in "
            f"{built!r}. Build it after keras.mixed_precision.set_global_policy({wanted!r}), as the training "
            "CLI does.",
        )
