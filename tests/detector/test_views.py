"""What each model looks at: native-resolution crops at a canonical scale, or the whole image resized."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detector import ModelCard
from detector.cascade import LABEL_AI, LABEL_REAL, LABEL_REVIEW, OperatingPoint, decision_score, label_for
from detector.views import canonical_scale, crop_boxes, decode_side, model_views, view_boxes

CROPS = ModelCard(name="c", version="1", architecture="x", input_size=224, views="native_crops", max_crops=5,
                  canonical_side=512)  # fmt: skip


def test_crops_are_the_centre_then_distinct_corners():
    assert crop_boxes(512, 512, 224, 5) == [(144, 144), (0, 0), (288, 0), (0, 288), (288, 288)]
    # An image barely larger than a crop gets one crop, not five copies of it.
    assert crop_boxes(230, 224, 224, 5) == [(3, 0)]
    assert len(crop_boxes(384, 384, 224, 5)) == 5
    assert crop_boxes(512, 512, 224, 2) == [(144, 144), (0, 0)]
    with pytest.raises(ValueError):
        crop_boxes(100, 300, 224, 5)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4000, 3000), (683, 512)), ((512, 384), (512, 384)), ((300, 200), (336, 224)), ((100, 100), (224, 224))],
)
def test_canonical_scale_downscales_large_uploads_and_upscales_only_below_a_crop(size, expected):
    assert canonical_scale(Image.new("RGB", size), canonical_side=512, min_side=224).size == expected


def test_native_crops_keep_pixels_untouched_at_the_canonical_scale():
    array = np.random.default_rng(0).integers(0, 255, (400, 600, 3), dtype=np.uint8)
    views = model_views(Image.fromarray(array), CROPS)
    assert views.shape == (5, 224, 224, 3) and views.dtype == np.uint8
    left, top = crop_boxes(600, 400, 224, 5)[0]
    assert np.array_equal(views[0], array[top : top + 224, left : left + 224])  # never resampled
    boxes = view_boxes(Image.fromarray(array), CROPS)
    assert boxes[0] == pytest.approx((left / 600, top / 400, (left + 224) / 600, (top + 224) / 400))
    assert decode_side(CROPS) == 512


def test_resize_view_is_one_centre_crop_of_the_whole_image():
    card = ModelCard(name="v", version="1", architecture="x", input_size=64)
    views = model_views(Image.new("RGB", (300, 200), (10, 20, 30)), card)
    assert views.shape == (1, 64, 64, 3)
    assert decode_side(card) == 64


def test_operating_points_map_to_the_default_policy_band():
    point = OperatingPoint(real=0.2, ai=0.9)
    assert decision_score(0.2, point) == pytest.approx(0.4)
    assert decision_score(0.9, point) == pytest.approx(0.6)
    scores = decision_score(np.linspace(0.001, 0.999, 200), point)
    assert np.all(np.diff(scores) > 0)  # monotone
    assert label_for(float(decision_score(0.95, point))) == LABEL_AI
    assert label_for(float(decision_score(0.5, point))) == LABEL_REVIEW
    assert label_for(float(decision_score(0.1, point))) == LABEL_REAL
    assert label_for(float(decision_score(0.1, point)), abstained=True) == LABEL_REVIEW
    # A single threshold keeps the old logit shift onto 0.5.
    assert decision_score(0.3, 0.3) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        OperatingPoint(real=0.9, ai=0.2)
