"""The typed inference API: bytes in, one verdict (or a rejection with its reason) per image out.

A checkpoint folder holds either one model (`card.json` + `model.safetensors`) or a cascade (`cascade.json` naming a
CNN and a ViT sub-folder and the CNN-probability band that escalates to the ViT).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .card import ModelCard
from .cascade import CASCADE_FILENAME, CascadeSpec, decision_score, escalate
from .checkpoint import load_checkpoint
from .device import Placement, choose_placement
from .explain import center_crop_box, grad_cam, render_overlay
from .onnx_scorer import OnnxScorer
from .preprocess import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, enhance, resize_center_crop

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "models" / "default"


@dataclass(frozen=True)
class DetectorConfig:
    checkpoint: Path = DEFAULT_CHECKPOINT
    device: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_batch_size: int = 32
    # Threads that decode images while the model runs on the previous batch.
    decode_threads: int = max(1, min(4, os.cpu_count() or 1))
    # CPU scoring: "auto"/"onnxruntime" (fastest measured here) or "torch" (eager PyTorch). Ignored on CUDA.
    cpu_runtime: str = "auto"
    # Where ONNX exports are kept between processes (default: ~/.cache/ai-moderation/onnx).
    onnx_cache_dir: Path | None = None


@dataclass(frozen=True)
class Verdict:
    """The detector's opinion of one image.

    `score` is on the decision scale: ≥ 0.5 means AI-generated at the deciding model's operating point. `cnn_score`
    and `vit_score` are the raw probabilities of each model that looked (`vit_score` only when escalated).
    """

    score: float
    is_ai: bool
    cnn_score: float
    vit_score: float | None
    path: str  # "cnn" or "cnn+vit"
    model_name: str
    model_version: str
    vit_model_version: str | None
    threshold: float
    latency_ms: float
    batch_size: int


@dataclass(frozen=True)
class ScanOutcome:
    """Exactly one of `verdict` or `error` is set."""

    verdict: Verdict | None = None
    error: str | None = None


class LoadedModel:
    """One network on its device with the card that describes its input.

    `score` runs on the placement's runtime; `module` (PyTorch) is always there for Grad-CAM.
    """

    def __init__(
        self, module: nn.Module, card: ModelCard, placement: Placement, *, onnx_cache_dir: Path | None = None
    ) -> None:
        self.card = card
        self.placement = placement
        self.onnx_scorer: OnnxScorer | None = None
        if placement.runtime == "onnxruntime":
            self.onnx_scorer = OnnxScorer(module, card, threads=torch.get_num_threads(), cache_dir=onnx_cache_dir)
        memory_format = torch.channels_last if placement.channels_last else torch.contiguous_format
        self.module = module.to(device=placement.device, dtype=placement.dtype, memory_format=memory_format).eval()
        self._mean = torch.tensor(card.mean, device=placement.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(card.std, device=placement.device).view(1, 3, 1, 1) * 255.0

    def model_input(self, image: Image.Image) -> np.ndarray:
        array = resize_center_crop(image, self.card.input_size)
        return enhance(array, equalize_histogram=self.card.equalize_histogram, denoise=self.card.denoise)

    def to_batch(self, arrays: list[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(arrays)).to(self.placement.device).permute(0, 3, 1, 2).float()
        batch = ((batch - self._mean) / self._std).to(self.placement.dtype)
        if self.placement.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def score(self, arrays: list[np.ndarray]) -> np.ndarray:
        """P(AI) for model inputs (uint8 HxWx3 at the card's size), one batch."""
        if self.onnx_scorer is not None:
            return self.onnx_scorer.probabilities(np.stack(arrays))
        with torch.inference_mode():
            return torch.sigmoid(self.module(self.to_batch(arrays)).float().squeeze(1)).cpu().numpy()


class Detector:
    def __init__(
        self, cnn: LoadedModel, vit: LoadedModel | None, band: tuple[float, float] | None, config: DetectorConfig
    ):
        if (vit is None) != (band is None):
            raise ValueError("a cascade needs both a ViT and an escalation band")
        self.cnn, self.vit, self.band, self.config = cnn, vit, band, config
        self._decode_side = max(cnn.card.input_size, vit.card.input_size if vit else 0)
        self._pool = ThreadPoolExecutor(max_workers=config.decode_threads, thread_name_prefix="decode")

    @property
    def card(self) -> ModelCard:
        return self.cnn.card

    @property
    def model_version(self) -> str:
        return self.cnn.card.model_version + (f"+{self.vit.card.model_version}" if self.vit else "")

    def decode(self, data: bytes) -> Image.Image:
        """Bytes → upright RGB image, no smaller than the models need. Raises ImageRejected."""
        return decode_image(data, min_side=self._decode_side, max_pixels=self.config.max_pixels)

    def _decoded(self, data: bytes) -> tuple[Image.Image | None, np.ndarray | None, str | None]:
        try:
            image = self.decode(data)
            return image, self.cnn.model_input(image), None
        except ImageRejected as exc:
            return None, None, str(exc)

    def _decoded_chunks(
        self, images: list[bytes]
    ) -> Iterator[list[tuple[Image.Image | None, np.ndarray | None, str | None]]]:
        """Decode on the thread pool, yielding one batch at a time so the model runs while later images decode."""
        futures = [self._pool.submit(self._decoded, data) for data in images]
        step = self.config.max_batch_size
        for start in range(0, len(futures), step):
            yield [future.result() for future in futures[start : start + step]]

    def predict(self, images: list[bytes]) -> list[ScanOutcome]:
        """Score encoded images in batches. A bad image gets an error outcome; it never fails the others."""
        started = time.perf_counter()
        decoded: list[tuple[Image.Image | None, np.ndarray | None, str | None]] = []
        cnn_scores: list[float] = []
        for chunk in self._decoded_chunks(images):
            decoded.extend(chunk)
            arrays = [array for _, array, _ in chunk if array is not None]
            if arrays:
                cnn_scores.extend(self.cnn.score(arrays).tolist())
        ready = [index for index, (_, array, _) in enumerate(decoded) if array is not None]
        cnn = np.asarray(cnn_scores, dtype=np.float64)
        vit = np.full(len(ready), np.nan)
        if self.vit is not None and self.band is not None and len(ready):
            escalated = np.flatnonzero(escalate(cnn, self.band))
            step = self.config.max_batch_size
            for start in range(0, len(escalated), step):
                picks = escalated[start : start + step]
                arrays = [self.vit.model_input(decoded[ready[i]][0]) for i in picks]  # type: ignore[arg-type]
                vit[picks] = self.vit.score(arrays)
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(images))
        outcomes = [ScanOutcome(error=error) for _, _, error in decoded]
        for position, index in enumerate(ready):
            outcomes[index] = ScanOutcome(verdict=self._verdict(cnn[position], vit[position], latency_ms, len(ready)))
        return outcomes

    def _verdict(self, cnn_probability: float, vit_probability: float, latency_ms: float, batch_size: int) -> Verdict:
        escalated = not np.isnan(vit_probability)
        if escalated:
            assert self.vit is not None
            score = float(decision_score(vit_probability, self.vit.card.threshold))
        else:
            score = float(decision_score(cnn_probability, self.cnn.card.threshold))
        return Verdict(
            score=score,
            is_ai=score >= 0.5,
            cnn_score=float(cnn_probability),
            vit_score=float(vit_probability) if escalated else None,
            path="cnn+vit" if escalated else "cnn",
            model_name=self.cnn.card.name,
            model_version=self.cnn.card.version,
            vit_model_version=self.vit.card.model_version if escalated and self.vit else None,
            threshold=0.5,
            latency_ms=latency_ms,
            batch_size=batch_size,
        )

    def explain(self, data: bytes, *, use_vit: bool | None = None) -> bytes:
        """A Grad-CAM heatmap PNG for one image, from the model that decides it (or the one asked for)."""
        image = self.decode(data)
        if use_vit is None:
            probability = self.cnn.score([self.cnn.model_input(image)])[0]
            use_vit = self.vit is not None and self.band is not None and bool(escalate(probability, self.band))
        model = self.vit if use_vit and self.vit is not None else self.cnn
        batch = model.to_batch([model.model_input(image)]).float()
        module = model.module.float()
        try:
            cam = grad_cam(module, batch.contiguous(memory_format=torch.contiguous_format))[0]
        finally:
            model.module = module.to(model.placement.dtype)
        return render_overlay(image, cam, center_crop_box(*image.size))

    def warm_up(self) -> None:
        """One batch through each model, so the first real batch does not pay for lazy initialisation."""
        size = self.config.max_batch_size
        self.cnn.score([np.zeros((self.cnn.card.input_size,) * 2 + (3,), np.uint8)] * size)
        if self.vit is not None:
            self.vit.score([np.zeros((self.vit.card.input_size,) * 2 + (3,), np.uint8)] * 2)


def create_detector(config: DetectorConfig | None = None) -> Detector:
    """Load the checkpoint (single model or cascade) named by `config` onto the best available device."""
    config = config or DetectorConfig()
    placement = choose_placement(config.device, config.cpu_runtime)

    def load(directory: Path) -> LoadedModel:
        return LoadedModel(*load_checkpoint(directory), placement, onnx_cache_dir=config.onnx_cache_dir)

    root = Path(config.checkpoint)
    if (root / CASCADE_FILENAME).is_file():
        spec = CascadeSpec.load(root)
        return Detector(load(root / spec.cnn), load(root / spec.vit), spec.escalation_band, config)
    return Detector(load(root), None, None, config)
