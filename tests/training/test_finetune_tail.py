"""Tail fine-tuning on cached activations trains the same network that serving runs."""

from __future__ import annotations

import numpy as np
import pytest

from detector import DetectorConfig, create_detector
from tests.detector.conftest import write_tiny
from tests.images import flat_or_noisy_png
from training.datasets import folder_images, stratified_split
from training.finetune_tail import TailConfig, finetune_tail


def test_finetuned_tail_is_what_serving_runs(tmp_path):
    rng = np.random.default_rng(0)
    for name, label in (("real", 0), ("fake", 1)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for index in range(24):
            (tmp_path / "data" / name / f"{index}.png").write_bytes(flat_or_noisy_png(label, rng))
    train, val, test = stratified_split(folder_images(tmp_path / "data", source="gen"), seed=0)
    init = write_tiny(tmp_path / "init", "test_efficientnet_multiscale", seed=0, head_scale=1.0)
    result = finetune_tail(
        init_checkpoint=init,
        train=train,
        val=val,
        test=test,
        extra_eval={},
        out_dir=tmp_path / "tuned",
        version="t",
        config=TailConfig(split_block=4, epochs=3, batch_size=8),
    )
    card = result["card"]
    assert card.metrics["test"]["auroc"] > 0.9 and len(card.training["history"]) >= 1
    assert {"val_loss", "val_accuracy_at_0.5"} <= set(card.training["history"][0])
    assert (tmp_path / "tuned" / "training_curves.png").stat().st_size > 1000
    detector = create_detector(DetectorConfig(checkpoint=tmp_path / "tuned", device="cpu"))
    served = [detector.cnn.score([detector.cnn.model_input(detector.decode(i.path.read_bytes()))])[0] for i in test]
    assert np.asarray(served) == pytest.approx(result["scores"]["test"][1], abs=2e-3)


def test_split_must_leave_exactly_the_last_stage(tmp_path):
    init = write_tiny(tmp_path / "init", "test_efficientnet_multiscale", seed=0)
    with pytest.raises(ValueError, match="exactly the last stage"):
        finetune_tail(
            init_checkpoint=init, train=[], val=[], test=[], extra_eval={}, out_dir=tmp_path / "x", version="t",
            config=TailConfig(split_block=2),
        )  # fmt: skip
