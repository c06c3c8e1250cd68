"""relu_ratio.train.metrics: the top-k accuracy training records and the zoo's figures count (ties ranked by
class index, as a stable sort ranks them), on every backend and in bfloat16."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from relu_ratio.train.metrics import TopKAccuracy, top_k_hits
from relu_ratio.zoo.registry import scored_accuracy

pytestmark = pytest.mark.backend  # the metric runs inside every backend's compiled step


def _hits(scores: np.ndarray, labels: np.ndarray, k: int, dtype: str = "float32") -> np.ndarray:
    one_hot = np.eye(scores.shape[1], dtype="float32")[labels]
    return keras.ops.convert_to_numpy(top_k_hits(one_hot, keras.ops.cast(scores, dtype), k))


def _stable_sort_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The definition: the true class among the first ``k`` of a stable sort of the scores, high first."""
    first_k = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.any(first_k == labels[:, None], axis=1).astype("float32")


def test_training_and_the_zoo_rank_tied_scores_as_a_stable_sort_does_image_by_image():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(300, 10)).astype("float32") / 4  # three values: ties everywhere
    scores[:20] = 0.0  # some all tied
    labels = rng.integers(0, 10, size=300)
    zoo = scored_accuracy(scores, labels)
    for k, key in ((1, "top1"), (5, "top5")):
        expected = _stable_sort_hits(scores, labels, k)
        for dtype in ("float32", "bfloat16"):  # quarters are exact in bfloat16: the same ties
            hits = _hits(scores, labels, k, dtype)
            np.testing.assert_array_equal(hits, expected, err_msg=f"{dtype} top-{k}")
        assert zoo[key] == round(100.0 * float(expected.mean()), 4), key
    assert _hits(scores[:20], labels[:20], 5).tolist() == [float(label < 5) for label in labels[:20]]


def test_the_metric_averages_hits_counts_every_class_under_k_and_misses_a_nan_score():
    metric = TopKAccuracy()
    assert (metric.name, metric.k, TopKAccuracy.from_config(metric.get_config()).k) == ("top5", 5, 5)
    collapsed = np.eye(10, dtype="float32")[[0] * 10]
    metric.update_state(np.eye(10, dtype="float32"), keras.ops.cast(collapsed, "bfloat16"))
    assert float(metric.result()) == pytest.approx(0.5)
    three = np.array([[0.2, 0.5, 0.3], [0.0, 0.0, 0.0]], "float32")  # under 5 classes every class counts
    assert _hits(three, np.array([0, 2]), 5).tolist() == [1.0, 1.0]
    assert scored_accuracy(three, np.array([0, 2]))["top5"] == 100.0
    nan = np.array([[np.nan, 0.1, 0.2]], "float32")
    assert _hits(nan, np.array([0]), 5).tolist() == [0.0]  # a diverged score is no hit
    assert scored_accuracy(nan, np.array([0]))["top5"] == 0.0  # in the zoo's figures neither


@pytest.mark.parametrize(
    ("labels", "said"),
    [([-1], "label -1 is not a class index of the scores: its 10 classes are 0 to 9."),
     ([10], "label 10 is not a class index"),
     ([0.0], "labels must be an integer numpy array with one class index per image, shape (1,); "
              "received float64 (1,)."),
     ([[0]], "received int64 (1, 1).")],
)  # fmt: skip
def test_the_zoos_figures_refuse_a_label_that_is_no_class_index(labels, said):
    """-1 counted as the last class (numpy's indexing from the end), 10 and 0.0 were numpy's IndexError."""
    with pytest.raises(ValueError, match=re.escape(said)):
        scored_accuracy(np.eye(10, dtype="float32")[[9]], np.array(labels))
