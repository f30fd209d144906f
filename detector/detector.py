"""The typed inference API: bytes in, one verdict (or a rejection with its reason) per image out.

A checkpoint folder holds either one model (`card.json` + `model.safetensors`) or a cascade (`cascade.json` naming a
CNN and a ViT sub-folder and the CNN-probability band that escalates to the ViT, and optionally a thumbnail expert
for images no larger than a few dozen pixels).
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
    path: str  # "cnn" (the screen or, for thumbnails, the thumbnail expert; model_name says which) or "cnn+vit"
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


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image | None = None
    array: np.ndarray | None = None  # the input of the model that screens it
    error: str | None = None
    thumbnail: bool = False  # routed to the thumbnail expert


class Detector:
    def __init__(
        self,
        cnn: LoadedModel,
        vit: LoadedModel | None,
        band: tuple[float, float] | None,
        config: DetectorConfig,
        *,
        thumbnail: LoadedModel | None = None,
        thumbnail_max_side: int = 0,
    ):
        if (vit is None) != (band is None):
            raise ValueError("a cascade needs both a ViT and an escalation band")
        self.cnn, self.vit, self.band, self.config = cnn, vit, band, config
        self.thumbnail, self.thumbnail_max_side = thumbnail, thumbnail_max_side if thumbnail else 0
        self._decode_side = max(cnn.card.input_size, vit.card.input_size if vit else 0)
        if self.thumbnail_max_side >= self._decode_side:
            # Draft decoding keeps both sides at least `_decode_side`, so a decoded image is thumbnail-sized exactly
            # when its source is; a larger threshold would route JPEGs by their reduced decoding size.
            raise ValueError(f"thumbnail_max_side must be below the models' input size {self._decode_side}")
        self._pool = ThreadPoolExecutor(max_workers=config.decode_threads, thread_name_prefix="decode")

    @property
    def card(self) -> ModelCard:
        return self.cnn.card

    @property
    def model_version(self) -> str:
        parts = [self.cnn.card.model_version] + [m.card.model_version for m in (self.vit, self.thumbnail) if m]
        return "+".join(parts)

    def decode(self, data: bytes) -> Image.Image:
        """Bytes → upright RGB image, no smaller than the models need. Raises ImageRejected."""
        return decode_image(data, min_side=self._decode_side, max_pixels=self.config.max_pixels)

    def is_thumbnail(self, image: Image.Image) -> bool:
        return max(image.size) <= self.thumbnail_max_side

    def _decoded(self, data: bytes) -> _Decoded:
        try:
            image = self.decode(data)
        except ImageRejected as exc:
            return _Decoded(error=str(exc))
        if self.thumbnail is not None and self.is_thumbnail(image):
            return _Decoded(image, self.thumbnail.model_input(image), thumbnail=True)
        return _Decoded(image, self.cnn.model_input(image))

    def _decoded_chunks(self, images: list[bytes]) -> Iterator[list[_Decoded]]:
        """Decode on the thread pool, yielding one batch at a time so the model runs while later images decode."""
        futures = [self._pool.submit(self._decoded, data) for data in images]
        step = self.config.max_batch_size
        for start in range(0, len(futures), step):
            yield [future.result() for future in futures[start : start + step]]

    def predict(self, images: list[bytes]) -> list[ScanOutcome]:
        """Score encoded images in batches. A bad image gets an error outcome; it never fails the others."""
        started = time.perf_counter()
        decoded: list[_Decoded] = []
        # P(AI) from the first model that looked: the CNN screen, or the thumbnail expert.
        first = np.full(len(images), np.nan)
        for chunk in self._decoded_chunks(images):
            offset = len(decoded)
            decoded.extend(chunk)
            for model, thumbnail in ((self.cnn, False), (self.thumbnail, True)):
                picks = [offset + i for i, d in enumerate(chunk) if d.array is not None and d.thumbnail == thumbnail]
                if model is not None and picks:
                    first[picks] = model.score([decoded[i].array for i in picks])  # type: ignore[misc]
        screened = np.array([d.array is not None and not d.thumbnail for d in decoded], dtype=bool)
        vit = np.full(len(images), np.nan)
        if self.vit is not None and self.band is not None:
            escalated = np.flatnonzero(screened & escalate(np.nan_to_num(first, nan=-1.0), self.band))
            step = self.config.max_batch_size
            for start in range(0, len(escalated), step):
                picks = escalated[start : start + step]
                vit[picks] = self.vit.score([self.vit.model_input(decoded[i].image) for i in picks])  # type: ignore[arg-type]
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(images))
        batch_size = sum(d.array is not None for d in decoded)
        return [
            ScanOutcome(error=d.error)
            if d.array is None
            else ScanOutcome(verdict=self._verdict(d.thumbnail, first[i], vit[i], latency_ms, batch_size))
            for i, d in enumerate(decoded)
        ]

    def _verdict(
        self, thumbnail: bool, probability: float, vit_probability: float, latency_ms: float, batch_size: int
    ) -> Verdict:
        escalated = not np.isnan(vit_probability)
        decider = self.thumbnail if thumbnail else self.cnn
        assert decider is not None
        if escalated:
            assert self.vit is not None
            score = float(decision_score(vit_probability, self.vit.card.threshold))
        else:
            score = float(decision_score(probability, decider.card.threshold))
        return Verdict(
            score=score,
            is_ai=score >= 0.5,
            cnn_score=float(probability),
            vit_score=float(vit_probability) if escalated else None,
            path="cnn+vit" if escalated else "cnn",
            model_name=decider.card.name,
            model_version=decider.card.version,
            vit_model_version=self.vit.card.model_version if escalated and self.vit else None,
            threshold=0.5,
            latency_ms=latency_ms,
            batch_size=batch_size,
        )

    def explain(self, data: bytes, *, use_vit: bool | None = None) -> bytes:
        """A Grad-CAM heatmap PNG for one image, from the model that decides it (or the one asked for)."""
        image = self.decode(data)
        if self.thumbnail is not None and self.is_thumbnail(image):
            return self._heatmap(self.thumbnail, image)
        if use_vit is None:
            probability = self.cnn.score([self.cnn.model_input(image)])[0]
            use_vit = self.vit is not None and self.band is not None and bool(escalate(probability, self.band))
        return self._heatmap(self.vit if use_vit and self.vit is not None else self.cnn, image)

    def _heatmap(self, model: LoadedModel, image: Image.Image) -> bytes:
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
        for model in (self.vit, self.thumbnail):
            if model is not None:
                model.score([np.zeros((model.card.input_size,) * 2 + (3,), np.uint8)] * 2)


def create_detector(config: DetectorConfig | None = None) -> Detector:
    """Load the checkpoint (single model or cascade) named by `config` onto the best available device."""
    config = config or DetectorConfig()
    placement = choose_placement(config.device, config.cpu_runtime)

    def load(directory: Path) -> LoadedModel:
        return LoadedModel(*load_checkpoint(directory), placement, onnx_cache_dir=config.onnx_cache_dir)

    root = Path(config.checkpoint)
    if (root / CASCADE_FILENAME).is_file():
        spec = CascadeSpec.load(root)
        return Detector(
            load(root / spec.cnn),
            load(root / spec.vit),
            spec.escalation_band,
            config,
            thumbnail=load(root / spec.thumbnail) if spec.thumbnail else None,
            thumbnail_max_side=spec.thumbnail_max_side,
        )
    return Detector(load(root), None, None, config)
