"""Training-time BatchNormalization on TensorFlow's fused kernel: one op forward, one op backward.

Keras 3's ``BatchNormalization`` computes its moments and the normalisation as a dozen separate
TensorFlow ops, and under mixed precision it casts its input to float32 and back. On a CPU that is the
largest item of a training step: profiled on 2 cores (``benchmarks/profile_step.py``, docs/BENCHMARKS.md),
its ops took 19 to 37 % of the ops' time in float32 and 39 to 51 % in bfloat16, where bfloat16 then gained
only 1.7x (``resnet20_21``) and 2.4x (``preact164_32``) and lost on ``preact56_32``.
``tf.raw_ops.FusedBatchNormV3`` does the same maths in one oneDNN kernel and takes bfloat16 input as is.

:func:`with_fused_batch_norm` gives a copy of a built model whose stock ``BatchNormalization`` layers are
this module's :class:`BatchNormalization`: the same layer names, variables and weight order. The class keeps
the stock class's name on purpose: Keras addresses a layer's weights in a ``.weights.h5`` file by its class
name, so files written from either model (backups, ``best.weights.h5``) load into the other. Training
uses the copy (its validation passes too); :func:`relu_ratio.train.save_model_weights` saves into a stock
model, so what the zoo ships holds stock layers only. On other backends and for settings the fused kernel
does not cover (a mask, renorm, synchronized statistics, an axis other than the last of a 4-D input) the
layer is the stock one.

Example (TensorFlow backend):
    >>> from relu_ratio import models
    >>> from relu_ratio.train.fused_norm import with_fused_batch_norm
    >>> fast = with_fused_batch_norm(models.build("resnet8_21"))
    >>> type(fast.get_layer("stage1_block1_bn1")).__module__  # doctest: +SKIP
    'relu_ratio.train.fused_norm'
"""

from __future__ import annotations

import keras


class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by TensorFlow's ``FusedBatchNormV3`` (training and
    inference)."""

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = self.gamma if self.scale else keras.ops.ones((channels,))
        offset = self.beta if self.center else keras.ops.zeros((channels,))
        learning = bool(training and self.trainable)
        empty = tf.constant([], dtype="float32")
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(scale, "float32"), offset=tf.cast(offset, "float32"),
            mean=empty if learning else tf.cast(self.moving_mean, "float32"),
            variance=empty if learning else tf.cast(self.moving_variance, "float32"),
            epsilon=self.epsilon, data_format="NHWC", is_training=learning,
        )  # fmt: skip
        if not learning:  # inference (the validation passes): the moving statistics, left as they are
            return tf.cast(outputs, self.compute_dtype)
        # The kernel returns the unbiased batch variance; the stock moving average uses the biased one.
        count = tf.cast(tf.size(inputs) // channels, "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return tf.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16")
        )


def with_fused_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of functional ``model`` (same weights) whose ``BatchNormalization`` layers are fused ones.

    Other layers are recreated from their configs, nested models included; the copy is uncompiled. On
    backends other than TensorFlow, or without stock ``BatchNormalization`` layers, ``model`` itself comes
    back.
    """
    stock = [layer for layer in model._flatten_layers() if type(layer) is keras.layers.BatchNormalization]
    if keras.backend.backend() != "tensorflow" or not stock:
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        kind = BatchNormalization if type(layer) is keras.layers.BatchNormalization else type(layer)
        return kind.from_config(layer.get_config())

    fused = keras.models.clone_model(model, clone_function=clone, recursive=True)
    fused.set_weights(model.get_weights())
    return fused
