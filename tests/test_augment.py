"""The in-graph CIFAR augmentation: each output is one pad-crop-flip of its input, drawn per image."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from relu_ratio.train.augment import PadCropFlip

FILL = (125.3, 122.9, 113.6)


def _candidates(image: np.ndarray, pad: int) -> list[np.ndarray]:
    """Every crop of ``image`` padded with the rounded fill, flipped or not (the numpy version's choices)."""
    h, w, _ = image.shape
    padded = np.empty((h + 2 * pad, w + 2 * pad, 3), np.float32)
    padded[...] = np.round(FILL)
    padded[pad : pad + h, pad : pad + w] = image
    crops = [padded[dy : dy + h, dx : dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return crops + [crop[:, ::-1] for crop in crops]


@pytest.mark.backend
def test_each_image_is_one_pad_crop_flip_of_itself_drawn_per_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    augment = PadCropFlip(FILL, pad=2, seed=1)
    out = np.asarray(augment(images, training=True))
    assert out.shape == images.shape and out.dtype == np.float32
    chosen = set()
    for image, result in zip(images, out):
        candidates = _candidates(image.astype(np.float32), 2)
        matches = [i for i, c in enumerate(candidates) if np.array_equal(c, result)]
        assert matches, "not a pad-crop-flip of its input"
        chosen.add(matches[0])
    assert len(chosen) > 20  # windows and flips differ from image to image (50 possible; one per batch is 1)
    again = np.asarray(augment(images, training=True))
    assert not np.array_equal(again, out)  # a new draw each step


@pytest.mark.backend
def test_at_inference_it_only_casts_and_under_mixed_precision_stays_float32():
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(PadCropFlip(FILL)(images)), images.astype(np.float32))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        out = PadCropFlip(FILL, seed=0)(images, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    border = np.asarray(out)
    assert set(np.unique(border[:, :4, :4, 0])) <= set(np.unique(images[..., 0])) | {125.0}


def test_the_layer_round_trips_through_its_config_and_refuses_a_bad_pad():
    layer = PadCropFlip(FILL, pad=3, seed=7)
    copy = PadCropFlip.from_config(layer.get_config())
    assert (copy.fill, copy.pad, copy.seed) == ((125.0, 123.0, 114.0), 3, 7)
    with pytest.raises(ValueError, match="pad must be an integer >= 0; received -1"):
        PadCropFlip(FILL, pad=-1)
