"""Training-time BatchNormalization on one fused kernel: one op forward, one op backward.

Keras 3's ``BatchNormalization`` computes its moments and the normalisation as a dozen separate ops, and
under mixed precision it casts its input to float32 and back. On a CPU that is the largest item of a
training step: profiled on 2 cores under TensorFlow (``benchmarks/profile_step.py``, docs/BENCHMARKS.md),
its ops took 19 to 37 % of the ops' time in float32 and 39 to 51 % in bfloat16, where bfloat16 then gained
only 1.7x (``resnet20_21``) and 2.4x (``preact164_32``) and lost on ``preact56_32``.
``tf.raw_ops.FusedBatchNormV3`` does the same maths in one oneDNN kernel and takes bfloat16 input as is;
under PyTorch, ``native_batch_norm`` does, on a channels-last view of Keras' NHWC tensors (no copy).
Under JAX, XLA fuses the stock layer's ops itself and the stock layer is kept.

:func:`relu_ratio.train.kernels.with_fast_kernels` puts this module's :class:`BatchNormalization` in place
of the stock layer under TensorFlow and PyTorch (same name, variables and weight order). For settings the
fused kernels do not cover (a mask, renorm, synchronized statistics, an axis other than the last of a 4-D
input) it computes what the stock layer does, the stock way.

Example (TensorFlow or PyTorch backend):
    >>> from relu_ratio import models
    >>> from relu_ratio.train.kernels import with_fast_kernels
    >>> fast = with_fast_kernels(models.build("resnet8_21"))
    >>> type(fast.get_layer("stage1_block1_bn1")).__module__  # doctest: +SKIP
    'relu_ratio.train.fused_norm'
"""

from __future__ import annotations

import keras

FUSED_BACKENDS = ("tensorflow", "torch")


@keras.saving.register_keras_serializable(package="relu_ratio")  # a saved .keras model loads back
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by one fused kernel (training and inference):
    TensorFlow's ``FusedBatchNormV3``, PyTorch's ``native_batch_norm``."""

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        learning = bool(training and self.trainable)
        kernel = _tensorflow_kernel if keras.backend.backend() == "tensorflow" else _torch_kernel
        outputs, mean, variance = kernel(self, inputs, learning)
        if learning:  # the stock moving averages, of the batch mean and the biased batch variance
            momentum = self.momentum
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving * momentum + keras.ops.cast(batch, moving.dtype) * (1.0 - momentum))
        return keras.ops.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() in FUSED_BACKENDS
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16")
        )

    def _affine(self, channels: int) -> tuple:
        scale = self.gamma if self.scale else keras.ops.ones((channels,))
        offset = self.beta if self.center else keras.ops.zeros((channels,))
        return keras.ops.cast(scale, "float32"), keras.ops.cast(offset, "float32")


def _tensorflow_kernel(layer: BatchNormalization, inputs, learning: bool) -> tuple:
    """(outputs, batch mean, biased batch variance) by ``FusedBatchNormV3`` on the NHWC input; the
    moving statistics normalise and the batch's are ``None`` when not ``learning``."""
    import tensorflow as tf

    scale, offset = layer._affine(inputs.shape[-1])
    empty = tf.constant([], dtype="float32")
    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=scale, offset=offset,
        mean=empty if learning else tf.cast(layer.moving_mean, "float32"),
        variance=empty if learning else tf.cast(layer.moving_variance, "float32"),
        epsilon=layer.epsilon, data_format="NHWC", is_training=learning,
    )  # fmt: skip
    if not learning:
        return outputs, None, None
    # The kernel returns the unbiased batch variance; the stock moving average uses the biased one.
    count = tf.cast(tf.size(inputs) // inputs.shape[-1], "float32")
    return outputs, mean, variance * (count - 1.0) / tf.maximum(count, 1.0)


def _torch_kernel(layer: BatchNormalization, inputs, learning: bool) -> tuple:
    """The same by PyTorch's ``native_batch_norm``, on an NCHW view of the NHWC input (PyTorch's
    channels-last layout: no copy, where Keras' stock layer runs a dozen element-wise ops)."""
    import torch

    nchw = inputs.permute(0, 3, 1, 2)
    scale, offset = layer._affine(inputs.shape[-1])
    if not learning:
        moving = [keras.ops.cast(v, "float32") for v in (layer.moving_mean, layer.moving_variance)]
        outputs = torch.nn.functional.batch_norm(nchw, *moving, scale, offset, False, 0.0, layer.epsilon)
        return outputs.permute(0, 2, 3, 1), None, None
    # Statistics buffers that momentum 1 overwrites with the batch's: its mean and unbiased variance.
    mean, variance = (torch.zeros_like(scale, requires_grad=False) for _ in range(2))
    kernel = torch.ops.aten.native_batch_norm
    outputs, *_ = kernel(nchw, scale, offset, mean, variance, True, 1.0, layer.epsilon)
    count = inputs.numel() // inputs.shape[-1]
    return outputs.permute(0, 2, 3, 1), mean, variance * (count - 1) / max(count, 1)

