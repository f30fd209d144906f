"""Full fine-tuning on a tiny model and generated images: it learns, it writes a servable checkpoint with curves, and
an interrupted run resumed later ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from detector import DetectorConfig, create_detector, load_checkpoint
from detector.card import ModelCard
from tests.detector.conftest import write_tiny
from tests.images import natural_photo
from training.datasets import LabelledImage
from training.finetune import CURVES_FILENAME, HISTORY_FILENAME, FinetuneConfig, augment, finetune


def _images(root, count: int, *, fake: bool, seed: int) -> list[LabelledImage]:
    """'Fakes' carry a colour cast that survives every augmentation, so a few epochs can learn it."""
    folder = root / ("fake" if fake else "real")
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(count):
        array = np.asarray(natural_photo(96, 80, seed + index), dtype=np.int16)
        if fake:
            array = array + np.array([60, -30, -30])
        path = folder / f"{index}.png"
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(path)
        items.append(LabelledImage(path, int(fake), "generated"))
    return items


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune-data")
    train = _images(root / "train", 24, fake=False, seed=0) + _images(root / "train", 12, fake=True, seed=100)
    val = _images(root / "val", 12, fake=False, seed=200) + _images(root / "val", 12, fake=True, seed=300)
    init = write_tiny(root / "init", "test_efficientnet", seed=0, input_size=64, head_scale=1.0)
    return init, train, val


CONFIG = FinetuneConfig(epochs=3, batch_size=8, lr=3e-3, num_workers=0, seed=1, version="9.9.9", patience=5)


def test_finetune_learns_and_writes_a_servable_checkpoint(data, tmp_path):
    init, train, val = data
    result = finetune(init, train, val, tmp_path / "out", CONFIG, device="cpu")

    history = json.loads((tmp_path / "out" / HISTORY_FILENAME).read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    card = ModelCard.load(tmp_path / "out" / "card.json")
    assert card.version == "9.9.9" and card.name == "tiny-test_efficientnet-ft"
    assert card.metrics["val"]["auroc"] >= 0.9
    assert card.training["best_epoch"] == result["best_epoch"] and len(card.training["train_fingerprint"]) == 64
    assert (tmp_path / "out" / CURVES_FILENAME).stat().st_size > 10_000
    detector = create_detector(DetectorConfig(checkpoint=tmp_path / "out", device="cpu"))
    outcomes = detector.predict([item.path.read_bytes() for item in val])
    assert all(outcome.verdict is not None for outcome in outcomes)


def test_resumed_run_equals_an_uninterrupted_one(data, tmp_path):
    init, train, val = data
    finetune(init, train, val, tmp_path / "whole", CONFIG, device="cpu")
    assert finetune(init, train, val, tmp_path / "parts", CONFIG, device="cpu", epochs_now=2) is None
    assert len(json.loads(torch.load(tmp_path / "parts" / "train_state.pt", weights_only=True)["history"])) == 2
    finetune(init, train, val, tmp_path / "parts", CONFIG, device="cpu")

    whole, _ = load_checkpoint(tmp_path / "whole")
    parts, _ = load_checkpoint(tmp_path / "parts")
    for (name, a), b in zip(whole.state_dict().items(), parts.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    history = json.loads((tmp_path / "parts" / HISTORY_FILENAME).read_text())
    assert [row["val_auroc"] for row in history] == [
        row["val_auroc"] for row in json.loads((tmp_path / "whole" / HISTORY_FILENAME).read_text())
    ]


def test_augment_keeps_an_rgb_image_and_varies_with_the_seed():
    import random

    image = natural_photo(200, 150, 0)
    first, second = augment(image, random.Random(1)), augment(image, random.Random(2))
    assert first.mode == second.mode == "RGB"
    assert first.size != second.size or not np.array_equal(np.asarray(first), np.asarray(second))
