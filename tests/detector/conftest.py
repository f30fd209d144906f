"""Tiny checkpoints with the production structure (EfficientNet and ViT), written fresh by the tests."""

from __future__ import annotations

import json

import pytest
import torch

from detector import ModelCard, save_checkpoint
from detector.registry import build_model


def write_tiny(
    directory, architecture: str, *, seed: int, input_size: int = 64, threshold: float = 0.5, head_scale: float = 300.0
):
    """A random-init model; `head_scale` spreads its logits (random-init ones sit near 0), 0 makes it a coin."""
    torch.manual_seed(seed)
    model = build_model(architecture)
    with torch.no_grad():
        model.get_classifier().weight.mul_(head_scale)
        model.get_classifier().bias.mul_(head_scale)
    card = ModelCard(
        name=f"tiny-{architecture}", version="1", architecture=architecture, input_size=input_size, threshold=threshold
    )
    return save_checkpoint(model, card, directory)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("tiny") / "cnn", "test_efficientnet", seed=0)


@pytest.fixture(scope="session")
def tiny_cascade(tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade")
    write_tiny(root / "cnn", "test_efficientnet", seed=0)
    write_tiny(root / "vit", "test_vit", seed=1, input_size=160, threshold=0.4)
    (root / "cascade.json").write_text(
        json.dumps(
            {"cnn": "cnn", "vit": "vit", "escalation_band": [0.0, 1.0], "metrics": {"val": {"escalation_rate": 0.5}}}
        )
    )
    return root
