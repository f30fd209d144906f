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


def test_the_gate_wants_a_gain_with_confidence_not_a_lucky_point_estimate():
    from training.adapt import auroc_gain_bound, gate_decision

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    active = rng.normal(size=80) + labels * 0.5
    clear = active + labels * 2.0
    lucky = active + rng.normal(scale=0.3, size=80) + labels * 0.05  # a hair better on these 80 images, by chance
    gain, lower = auroc_gain_bound(labels, clear, active)
    assert gain > 0.2 and lower > 0.1
    gain, lower = auroc_gain_bound(labels, lucky, active)
    assert lower < 0.0 < gain or gain <= 0.0

    def report(scores):
        return {"labels": labels.tolist(), "scores": list(scores), "auroc": 0.0, "outcomes": {"real_tagged_ai": 0.0}}

    assert gate_decision(report(clear), report(active), min_gain=0.01)[0]
    passed, reason = gate_decision(report(lucky), report(active), min_gain=0.01)
    assert not passed and "95 % lower bound" in reason
    noisy = {**report(clear), "outcomes": {"real_tagged_ai": 0.1}}
    passed, reason = gate_decision(noisy, report(active), min_gain=0.01)
    assert not passed and "real images tagged AI rise" in reason


def test_adapting_a_photo_path_moves_both_heads_toward_the_new_labels(tmp_path):
    from PIL import Image

    from tests.images import natural_photo

    for name, label in (("real", 0), ("fake", 1)):
        folder = tmp_path / "data" / name
        folder.mkdir(parents=True)
        for index in range(24):
            array = np.asarray(natural_photo(120, 100, 50 * label + index), dtype=np.int16)
            if label:  # an upsampling-like checkerboard and a cast: what this "new generator" leaves
                array = array + (np.indices(array.shape[:2]).sum(0) % 2 * 40 - 20)[..., None] + np.array([30, 0, -30])
            Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / f"{index}.png")
    train, val, test = stratified_split(folder_images(tmp_path / "data", source="review"), seed=0)
    active = tmp_path / "active"
    write_tiny(active / "cnn", "test_efficientnet_texture", seed=0, head_scale=0.0)  # knows nothing yet
    card = json.loads((active / "cnn" / "card.json").read_text())
    (active / "cnn" / "card.json").write_text(json.dumps({**card, "views": "native_crops", "max_crops": 3}))
    write_tiny(active / "vit", "test_vit_multilayer", seed=1, head_scale=0.0)
    fusion = {
        "cnn_weight": 0.5,
        "vit_weight": 0.5,
        "bias": 0.0,
        "operating_point": [0.4, 0.6],
        "cnn_operating_point": [0.4, 0.6],
    }
    cascade = {
        "name": "fused",
        "version": "1",
        "cnn": "cnn",
        "vit": "vit",
        "escalation_band": [0.3, 0.7],
        "fusion": fusion,
    }
    (active / "cascade.json").write_text(json.dumps(cascade))

    result = adapt_head(
        active=active,
        train=train,
        val=val,
        test=test,
        out_dir=tmp_path / "new",
        name="fused-adapted",
        version="2",
        target_fpr=0.1,
    )

    spec = CascadeSpec.load(tmp_path / "new")
    assert spec.name == "fused-adapted" and spec.fusion is not None and spec.escalation_band == (0.3, 0.7)
    assert result.card["training"]["val_auroc"]["adapted"] > 0.9
    assert evaluate_checkpoint(tmp_path / "new", test)["auroc"] > 0.9
    assert evaluate_checkpoint(active, test)["auroc"] == 0.5  # the coin it started from
