"""Training-time layers on faster kernels: a copy of a model whose stock layers compute the same on the
backend's fast path.

Which layers, by backend (:data:`SUBSTITUTES`): the fused ``BatchNormalization`` of
:mod:`relu_ratio.train.fused_norm` under TensorFlow and PyTorch, and the copy-free ``Conv2D`` of
:mod:`relu_ratio.train.torch_conv` under PyTorch. Under JAX, XLA fuses and lays out the stock layers' ops
itself and the model is kept.

A substitute keeps the stock class's name on purpose: Keras addresses a layer's weights in a ``.weights.h5``
file by its class name, so files written from either model (backups, ``best.weights.h5``) load into the
other. The training CLI trains the copy (its validation passes too);
:func:`relu_ratio.train.save_model_weights` saves into a stock model, so what the zoo ships holds stock
layers only.

Example:
    >>> from relu_ratio import models
    >>> from relu_ratio.train.kernels import with_fast_kernels
    >>> model = models.build("resnet8_21")
    >>> fast = with_fast_kernels(model)
    >>> [w.shape for w in fast.weights] == [w.shape for w in model.weights]
    True
"""

from __future__ import annotations

import keras

from relu_ratio.train import fused_norm, torch_conv

SUBSTITUTES: dict[str, dict[type, type]] = {  # backend -> {stock layer class: its substitute}
    backend: {
        keras.layers.BatchNormalization: fused_norm.BatchNormalization,
        **({keras.layers.Conv2D: torch_conv.Conv2D} if backend == "torch" else {}),
    }
    for backend in fused_norm.FUSED_BACKENDS
}


def with_fast_kernels(model: keras.Model) -> keras.Model:
    """A copy of functional ``model`` (same weights) whose stock layers are this backend's
    :data:`SUBSTITUTES` for them.

    Other layers are recreated from their configs, nested models included; the copy is uncompiled. Where
    the backend has no substitute for any of the model's layers (always under JAX), ``model`` itself comes
    back. ``TypeError`` for anything but a ``keras.Model``.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"with_fast_kernels takes a keras.Model (e.g. models.build('resnet20_21')); received "
                        f"{type(model).__name__}.")  # fmt: skip
    substitutes = SUBSTITUTES.get(keras.backend.backend(), {})
    if not any(type(layer) in substitutes for layer in model._flatten_layers()):
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        return substitutes.get(type(layer), type(layer)).from_config(layer.get_config())

    fast = keras.models.clone_model(model, clone_function=clone, recursive=True)
    fast.set_weights(model.get_weights())
    return fast
