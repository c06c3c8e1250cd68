"""The top-k accuracy training records (``top5`` in ``metrics.csv``, ``test_top5`` in ``result.json``),
and the zoo's top-1 and top-5 figures (:func:`relu_ratio.zoo.registry.scored_accuracy`): one definition.

An image's true class is in the top k where fewer than k classes rank before it, classes of equal score
ranked by class index (lower first), as a stable sort of the scores ranks them. Keras'
``TopKCategoricalAccuracy`` counts every class tied with the k-th score as in the top k, so a collapsed
network (saturated softmax outputs: one class at 1.0, nine tied at 0.0) scored a top-5 of 100 %; here it
scores what a ranking of its outputs gives (50 %: the true class among the first five by index).

The rank is counted with comparisons alone (``keras.ops``), not with ``keras.ops.top_k``, whose order of tied
values PyTorch does not fix (``torch.topk``: "the indices of tied elements are not guaranteed to be
stable"), so every backend gives the same answer, in any float precision (bfloat16 outputs included).

Example:
    >>> import numpy as np
    >>> collapsed = np.eye(10, dtype="float32")[[0] * 10]   # every image scored 1.0 for class 0, 0.0 else
    >>> labels = np.eye(10, dtype="float32")                  # one image of each class
    >>> metric = TopKAccuracy(5)
    >>> _ = metric.update_state(labels, collapsed)
    >>> float(metric.result())
    0.5
"""

from __future__ import annotations

import keras
from keras import ops


def top_k_hits(y_true, y_pred, k: int = 5):
    """Per image, 1.0 where the true class (the index of the largest of ``y_true``: one-hot labels, as the
    recipe trains on) is among the ``k`` best-ranked of ``y_pred``'s scores (``(images, classes)``, any
    float dtype), ties ranked by class index; else 0.0 (a NaN score of the true class included)."""
    y_pred = ops.convert_to_tensor(y_pred)
    labels = ops.expand_dims(ops.cast(ops.argmax(ops.convert_to_tensor(y_true), axis=-1), "int32"), -1)
    true_score = ops.take_along_axis(y_pred, labels, axis=-1)
    classes = ops.expand_dims(ops.arange(ops.shape(y_pred)[-1], dtype="int32"), 0)
    tied_before = ops.logical_and(ops.equal(y_pred, true_score), ops.less(classes, labels))
    ahead = ops.logical_or(ops.greater(y_pred, true_score), tied_before)
    rank = ops.sum(ops.cast(ahead, "int32"), axis=-1)
    hit = ops.logical_and(ops.less(rank, k), ops.logical_not(ops.isnan(true_score[..., 0])))
    return ops.cast(hit, "float32")


@keras.saving.register_keras_serializable(package="relu_ratio")
class TopKAccuracy(keras.metrics.MeanMetricWrapper):
    """How often the true class is among the ``k`` best-ranked scores, ties ranked by class index
    (:func:`top_k_hits`); one-hot labels. With fewer than ``k`` classes every image counts."""

    def __init__(self, k: int = 5, name: str = "top5", dtype=None):
        super().__init__(fn=top_k_hits, name=name, dtype=dtype, k=k)
        self.k = k
        self._direction = "up"  # an accuracy: the higher the better (for callbacks that watch it)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}
