"""Fast adaptation of a cascade: the CNN head is refitted on new labels and so is the band that routes to the ViT."""

from __future__ import annotations

import json

import numpy as np

from detector.cascade import CascadeSpec
from tests.detector.conftest import write_tiny
from tests.images import flat_or_noisy_png
from training.adapt import adapt_head, evaluate_checkpoint
from training.datasets import folder_images, stratified_split


def test_adapted_cascade_refits_its_band_so_a_blind_vit_cannot_undo_the_new_head(tmp_path):
    rng = np.random.default_rng(0)
    for name, label in (("real", 0), ("fake", 1)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for index in range(30):
            (tmp_path / "data" / name / f"{index}.png").write_bytes(flat_or_noisy_png(label, rng, size=96))
    train, val, test = stratified_split(folder_images(tmp_path / "data", source="review"), seed=0)
    active = tmp_path / "active"
    write_tiny(active / "cnn", "test_efficientnet", seed=0, head_scale=0.0)
    write_tiny(active / "vit", "test_vit", seed=1, input_size=160, head_scale=0.0)  # a coin: 0.5 for everything
    write_tiny(active / "thumb", "test_efficientnet", seed=2, input_size=32)
    cascade = {"cnn": "cnn", "vit": "vit", "escalation_band": [0.0, 1.0], "max_escalation_rate": 0.3}
    cascade["thumbnail"] = {"model": "thumb", "max_side": 64}
    (active / "cascade.json").write_text(json.dumps(cascade))

    adapt_head(
        active=active, train=train, val=val, test=test, out_dir=tmp_path / "new", name="n", version="1", target_fpr=0.1
    )

    spec = CascadeSpec.load(tmp_path / "new")
    assert spec.escalation_band != (0.0, 1.0), "the old band would send every image to the coin-flip ViT"
    assert spec.thumbnail == str((active / "thumb").resolve()) and spec.thumbnail_max_side == 64
    report = evaluate_checkpoint(tmp_path / "new", test)
    assert report["accuracy"] >= 0.9 and report["escalation_rate"] <= 0.3
    assert evaluate_checkpoint(active, test)["accuracy"] <= 0.6
