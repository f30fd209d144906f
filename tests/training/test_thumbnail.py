"""The thumbnail expert: the screen CNN's last stage specialised on 32-px images, with a balanced threshold, served
by the cascade for thumbnails only."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from detector import DetectorConfig, ModelCard, create_detector
from tests.detector.conftest import write_tiny
from tests.images import natural_photo
from training.datasets import LabelledImage
from training.metrics import balanced_threshold
from training.thumbnail import THUMBNAIL_MAX_SIDE, THUMBNAIL_NAME, train_thumbnail


def _thumbnails(root, count: int, *, fake: bool, seed: int) -> list[LabelledImage]:
    """32-px 'fakes' are brighter, which a few epochs on cached activations can learn."""
    folder = root / ("fake" if fake else "real")
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(count):
        array = np.asarray(natural_photo(32, 32, seed + index), dtype=np.int16) // 2 + (120 if fake else 0)
        path = folder / f"{seed + index}.jpg"
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(path, quality=75)
        items.append(LabelledImage(path, int(fake), "cifake"))
    return items


def test_thumbnail_expert_is_specialised_from_the_screen_and_served_for_thumbnails(tmp_path):
    split = {
        name: _thumbnails(tmp_path / name, 12, fake=False, seed=offset)
        + _thumbnails(tmp_path / name, 12, fake=True, seed=offset + 500)
        for name, offset in (("train", 0), ("val", 1000), ("test", 2000))
    }
    screen = write_tiny(tmp_path / "cnn", "test_efficientnet_multiscale", seed=0, head_scale=1.0)
    result = train_thumbnail(screen=screen, **split, out=tmp_path / "thumb", version="9.1.0", epochs=3, split_block=4)
    card = ModelCard.load(tmp_path / "thumb" / "card.json")
    assert card.name == THUMBNAIL_NAME and card.version == "9.1.0" and card.input_size == 64
    assert card.training["config"]["threshold_rule"] == "balanced_accuracy"
    assert card.metrics["test"]["n"] == 24 and card.metrics["test"]["auroc"] > 0.9
    val_labels, val_scores = result["scores"]["val"]
    assert card.threshold == balanced_threshold(val_labels, val_scores)

    # In a cascade, thumbnails get the expert's verdict at its own threshold; larger images never do.
    write_tiny(tmp_path / "vit", "test_vit", seed=1, input_size=160)
    cascade = {"cnn": "cnn", "vit": "vit", "escalation_band": [1.0, 1.0]}
    cascade["thumbnail"] = {"model": "thumb", "max_side": THUMBNAIL_MAX_SIDE}
    (tmp_path / "cascade.json").write_text(json.dumps(cascade))
    detector = create_detector(DetectorConfig(checkpoint=tmp_path, device="cpu"))
    outcomes = detector.predict([item.path.read_bytes() for item in split["test"]])
    assert {(o.verdict.path, o.verdict.model_name) for o in outcomes} == {("cnn", THUMBNAIL_NAME)}
    served = np.array([o.verdict.cnn_score for o in outcomes])
    assert served == pytest.approx(result["scores"]["test"][1], abs=2e-3)
    large = natural_photo(200, 150, seed=7)
    large_bytes = io.BytesIO()
    large.save(large_bytes, "JPEG")
    assert detector.predict([large_bytes.getvalue()])[0].verdict.model_name == "tiny-test_efficientnet_multiscale"


def test_balanced_threshold_separates_when_it_can_and_balances_when_it_cannot():
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert balanced_threshold(labels, np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])) == 0.6
    # 9 reals, 1 fake, overlapping: the threshold that catches the fake costs 2 of 9 reals (balanced 0.889),
    # better than calling nothing AI (0.5).
    labels = np.r_[np.zeros(9, dtype=int), 1]
    scores = np.r_[np.linspace(0.0, 0.8, 9), 0.7]
    assert balanced_threshold(labels, scores) == 0.7
