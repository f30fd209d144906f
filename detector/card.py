"""The model card: everything serving and training must agree on, stored as JSON beside the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARD_FILENAME = "card.json"
WEIGHTS_FILENAME = "model.safetensors"


@dataclass(frozen=True)
class ModelCard:
    """Describes one checkpoint. The same fields drive preprocessing at training and at serving time."""

    name: str
    version: str
    architecture: str
    input_size: int = 224
    # What the network sees (detector.views): "resize" (the whole image, shorter side to input_size, centre crop) or
    # "native_crops" (up to max_crops input_size crops at native resolution, after scaling the shorter side down to
    # at most canonical_side; 0 keeps any size). Logits are averaged over an image's views.
    views: str = "resize"
    max_crops: int = 1
    canonical_side: int = 0
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # The reference detector's optional preprocessing, applied after resizing in training and serving alike.
    equalize_histogram: bool = False
    denoise: bool = False
    # Operating point: a probability of AI generation at or above this is called AI.
    threshold: float = 0.5
    labels: tuple[str, str] = ("real", "ai")
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    # sha256 of model.safetensors, written by save_checkpoint and checked on load: a card always names its weights.
    weights_sha256: str = ""

    @property
    def model_version(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model card has unknown fields: {sorted(unknown)}")
        values = dict(data)
        for key in ("mean", "std", "labels"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        return cls.from_dict(json.loads(Path(path).read_text()))
