"""The typed inference API: bytes in, one verdict (or a rejection with its reason) per image out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .card import ModelCard
from .checkpoint import load_checkpoint
from .device import Placement, choose_placement
from .preprocess import DEFAULT_MAX_PIXELS, ImageRejected, load_model_input

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "models" / "default"


@dataclass(frozen=True)
class DetectorConfig:
    checkpoint: Path = DEFAULT_CHECKPOINT
    device: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_batch_size: int = 32


@dataclass(frozen=True)
class Verdict:
    """The detector's opinion of one image. `score` is the probability that the image is AI-generated."""

    score: float
    is_ai: bool
    cnn_score: float
    vit_score: float | None
    path: str
    model_name: str
    model_version: str
    threshold: float
    latency_ms: float
    batch_size: int


@dataclass(frozen=True)
class ScanOutcome:
    """Exactly one of `verdict` or `error` is set."""

    verdict: Verdict | None = None
    error: str | None = None


class Detector:
    def __init__(self, model: nn.Module, card: ModelCard, placement: Placement, config: DetectorConfig) -> None:
        self.card = card
        self.placement = placement
        self.config = config
        memory_format = torch.channels_last if placement.channels_last else torch.contiguous_format
        self._model = model.to(device=placement.device, dtype=placement.dtype, memory_format=memory_format).eval()
        self._mean = torch.tensor(card.mean, device=placement.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(card.std, device=placement.device).view(1, 3, 1, 1) * 255.0

    @property
    def model_version(self) -> str:
        return f"{self.card.name}@{self.card.version}"

    def prepare(self, data: bytes) -> np.ndarray:
        """Decode one image to the model's input (HxWx3 uint8). Raises ImageRejected."""
        return load_model_input(data, self.card.input_size, max_pixels=self.config.max_pixels)

    @torch.inference_mode()
    def score_arrays(self, arrays: list[np.ndarray]) -> np.ndarray:
        """AI probabilities for ready HxWx3 uint8 arrays, run in chunks of max_batch_size."""
        scores: list[np.ndarray] = []
        step = self.config.max_batch_size
        for start in range(0, len(arrays), step):
            chunk = np.stack(arrays[start : start + step])
            batch = torch.from_numpy(chunk).to(self.placement.device).permute(0, 3, 1, 2).float()
            batch = ((batch - self._mean) / self._std).to(self.placement.dtype)
            if self.placement.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            logits = self._model(batch).float().squeeze(1)
            scores.append(torch.sigmoid(logits).cpu().numpy())
        return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)

    def predict(self, images: list[bytes]) -> list[ScanOutcome]:
        """Score a batch of encoded images. A bad image gets an error outcome; it never fails the others."""
        started = time.perf_counter()
        outcomes: list[ScanOutcome | None] = [None] * len(images)
        ready: list[np.ndarray] = []
        ready_index: list[int] = []
        for index, data in enumerate(images):
            try:
                ready.append(self.prepare(data))
                ready_index.append(index)
            except ImageRejected as exc:
                outcomes[index] = ScanOutcome(error=str(exc))
        scores = self.score_arrays(ready)
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(images))
        for index, score in zip(ready_index, scores, strict=True):
            value = float(score)
            outcomes[index] = ScanOutcome(
                verdict=Verdict(
                    score=value,
                    is_ai=value >= self.card.threshold,
                    cnn_score=value,
                    vit_score=None,
                    path="cnn",
                    model_name=self.card.name,
                    model_version=self.card.version,
                    threshold=self.card.threshold,
                    latency_ms=latency_ms,
                    batch_size=len(ready),
                )
            )
        return [outcome for outcome in outcomes if outcome is not None]


def create_detector(config: DetectorConfig | None = None) -> Detector:
    """Load the checkpoint named by `config` onto the best available device."""
    config = config or DetectorConfig()
    model, card = load_checkpoint(config.checkpoint)
    return Detector(model, card, choose_placement(config.device), config)
