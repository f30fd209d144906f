"""The probe trainer end to end on generated images and a tiny architecture: writes a servable checkpoint."""

from __future__ import annotations

import numpy as np
from PIL import Image

from detector import DetectorConfig, create_detector
from tests.images import encode
from training.datasets import folder_images, stratified_split
from training.probe import ProbeConfig, train_probe


def _write_set(root, count=24):
    rng = np.random.default_rng(0)
    for index in range(count):
        (root / "real").mkdir(parents=True, exist_ok=True)
        (root / "fake").mkdir(parents=True, exist_ok=True)
        # Dark, flat "real" images against bright, noisy "fake" ones: separable even for random-init features.
        smooth = np.full((48, 48, 3), rng.integers(10, 60), np.uint8)
        noisy = rng.integers(150, 255, (48, 48, 3), dtype=np.uint8)
        (root / "real" / f"{index}.png").write_bytes(encode(Image.fromarray(smooth), "PNG"))
        (root / "fake" / f"{index}.png").write_bytes(encode(Image.fromarray(noisy), "PNG"))


def test_probe_learns_a_separable_set_and_saves_a_checkpoint(tmp_path):
    _write_set(tmp_path / "data")
    items = folder_images(tmp_path / "data", source="generated")
    train, val, test = stratified_split(items, seed=1)
    result = train_probe(
        config=ProbeConfig(architecture="test_efficientnet", input_size=64, target_fpr=0.1, batch_size=8),
        train=train,
        val=val,
        test=test,
        extra_eval={},
        card_name="probe-test",
        card_version="0",
        out_dir=tmp_path / "ckpt",
    )
    card = result.card
    assert card["metrics"]["test"]["auroc"] > 0.9
    assert card["training"]["counts"] == {"train": len(train), "val": len(val), "test": len(test)}
    detector = create_detector(DetectorConfig(checkpoint=tmp_path / "ckpt", device="cpu"))
    outcomes = detector.predict([p.path.read_bytes() for p in test])
    scores = np.array([o.verdict.score for o in outcomes])
    labels = np.array([p.label for p in test])
    assert scores[labels == 1].mean() > scores[labels == 0].mean()
