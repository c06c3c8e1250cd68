"""Training-time ``Conv2D`` for PyTorch: Keras' channels-last tensors given to PyTorch's kernel, no copies.

Keras 3.15's PyTorch convolution turns each NHWC input into a contiguous NCHW tensor and then back into
PyTorch's channels-last layout: two copies of every input forward and two more in the backward pass. A
``torch.profiler`` profile of ``preact56_32``'s training step on 2 cores with the instruction set capped at
AVX2 put 27 % of the ops' time in ``aten::copy_`` with Keras' stock layers, 1 % with this one and the fused
BatchNorm (``benchmarks/profile_step.py``, docs/BENCHMARKS.md). An NHWC tensor *is* an NCHW tensor in
PyTorch's channels-last memory format, so a permuted view is all ``conv2d`` needs; its output comes back in
the same layout and is permuted back, again as a view. Keras fixed half of it upstream
(keras-team/keras#23199) after 3.15.1.

:func:`relu_ratio.train.kernels.with_fast_kernels` puts this layer in place of the stock one under PyTorch.
It keeps the stock class's name (a ``.weights.h5`` file addresses a layer's weights by it), its variables
and its ``padding="same"`` rule (PyTorch's symmetric padding where Keras' is symmetric, an explicit pad
where it is not: a stride-2 convolution of an even-sized image pads one pixel at the end). Other backends
and ``channels_first`` run the stock computation.

Example (PyTorch backend):
    >>> import keras
    >>> from relu_ratio.train.torch_conv import Conv2D
    >>> Conv2D(8, 3, padding="same")(keras.ops.ones((2, 32, 32, 3))).shape  # doctest: +SKIP
    torch.Size([2, 32, 32, 8])
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="relu_ratio")  # a saved .keras model loads back
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` on PyTorch's kernel without the layout copies (see the module's docstring)."""

    def convolution_op(self, inputs, kernel):
        if keras.backend.backend() != "torch" or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        import torch

        nchw = inputs.permute(0, 3, 1, 2)  # a view: channels-last NCHW, PyTorch's own layout for it
        weights = keras.ops.convert_to_tensor(kernel).permute(3, 2, 0, 1)  # HWIO -> OIHW, a view
        pads = [
            same_padding(size, kernel_size, stride, dilation) if self.padding == "same" else (0, 0)
            for size, kernel_size, stride, dilation in zip(
                nchw.shape[2:], self.kernel_size, self.strides, self.dilation_rate
            )
        ]
        if all(before == after for before, after in pads):
            padding = [before for before, _ in pads]
        else:  # PyTorch's convolution pads both sides alike: pad (width, then height) first
            nchw, padding = torch.nn.functional.pad(nchw, [p for pair in reversed(pads) for p in pair]), 0
        outputs = torch.nn.functional.conv2d(
            nchw, weights, stride=self.strides, padding=padding, dilation=self.dilation_rate,
            groups=self.groups,
        )  # fmt: skip
        return outputs.permute(0, 2, 3, 1)


def same_padding(size: int, kernel_size: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras' (and TensorFlow's) ``padding="same"``: (before, after) along one axis, the extra pixel after.

    >>> same_padding(32, 3, 1), same_padding(32, 3, 2), same_padding(32, 1, 2), same_padding(7, 3, 1, 2)
    ((1, 1), (0, 1), (0, 0), (2, 2))
    """
    reach = (kernel_size - 1) * dilation + 1
    total = max(0, (-(-size // stride) - 1) * stride + reach - size)
    return total // 2, total - total // 2
