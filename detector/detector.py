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
from .cascade import CASCADE_FILENAME, CascadeSpec, Fusion, decision_score, escalate, label_for
from .checkpoint import load_checkpoint
from .device import Placement, choose_placement, placement_for
from .explain import grad_cam, render_overlay
from .onnx_scorer import OnnxScorer
from .preprocess import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, enhance
from .views import decode_side, model_views, view_boxes

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

    `score` is on the decision scale (detector.cascade): 0.5 ± 0.1 brackets the deciding model's uncertain zone, so
    ≥ 0.6 is AI-generated and ≤ 0.4 real at its operating points. `label` is the three-way answer under that default
    policy, `needs-review` also when the detector abstains (`review_reason` says why). `cnn_score` and `vit_score` are
    the raw probabilities of each model that looked (`vit_score` only when escalated).
    """

    score: float
    is_ai: bool
    label: str
    review_reason: str | None
    cnn_score: float
    vit_score: float | None
    path: str  # "cnn" (the screen or, for thumbnails, the thumbnail expert; model_name says which) or "cnn+vit"
    model_name: str  # the decider: the CNN, the thumbnail expert, the ViT, or the cascade when it fused both
    model_version: str
    vit_model_version: str | None
    threshold: float
    latency_ms: float
    batch_size: int


NO_FINITE_SCORE = "the model returned no finite score for this image"


@dataclass(frozen=True)
class ScanOutcome:
    """Exactly one of `verdict` or `error` is set."""

    verdict: Verdict | None = None
    error: str | None = None


def logit(probability: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def sigmoid(value: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(value, dtype=np.float64)))


class LoadedModel:
    """One network on its device with the card that describes its input.

    `logits` runs on the placement's runtime; `module` (PyTorch) is always there for Grad-CAM.
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
        """The (K, S, S, 3) uint8 views of one image (detector.views), each enhanced as the card says."""
        views = model_views(image, self.card)
        if not (self.card.equalize_histogram or self.card.denoise):
            return views
        return np.stack(
            [enhance(v, equalize_histogram=self.card.equalize_histogram, denoise=self.card.denoise) for v in views]
        )

    def to_batch(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Single views (S, S, 3) → the normalised NCHW tensor the module takes."""
        batch = torch.from_numpy(np.stack(arrays)).to(self.placement.device).permute(0, 3, 1, 2).float()
        batch = ((batch - self._mean) / self._std).to(self.placement.dtype)
        if self.placement.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def view_logits(self, views: np.ndarray) -> np.ndarray:
        """The AI logit of each single view (N, S, S, 3), one forward batch."""
        if self.onnx_scorer is not None:
            return self.onnx_scorer.logits(views)
        with torch.inference_mode():
            return self.module(self.to_batch(list(views))).float().squeeze(1).cpu().numpy().astype(np.float64)

    def logits(self, inputs: list[np.ndarray]) -> np.ndarray:
        """One AI logit per image: the mean over its views (model inputs as `model_input` makes them)."""
        counts = [len(views) for views in inputs]
        per_view = self.view_logits(np.concatenate(inputs))
        return np.array([part.mean() for part in np.split(per_view, np.cumsum(counts)[:-1])])

    def score(self, inputs: list[np.ndarray]) -> np.ndarray:
        """P(AI) per image."""
        return sigmoid(self.logits(inputs))


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
        fusion: Fusion | None = None,
        name: str = "",
        version: str = "",
    ):
        if (vit is None) != (band is None):
            raise ValueError("a cascade needs both a ViT and an escalation band")
        if fusion is not None and vit is None:
            raise ValueError("a fusion needs a ViT")
        self.cnn, self.vit, self.band, self.config = cnn, vit, band, config
        self.fusion, self.name, self.version = fusion, name, version
        self.thumbnail, self.thumbnail_max_side = thumbnail, thumbnail_max_side if thumbnail else 0
        self._decode_side = max(decode_side(model.card) for model in (cnn, vit) if model is not None)
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
        if self.name:
            return f"{self.name}@{self.version}"
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
        # The AI logit of the first model that looked: the CNN screen, or the thumbnail expert.
        first = np.full(len(images), np.nan)
        for chunk in self._decoded_chunks(images):
            offset = len(decoded)
            decoded.extend(chunk)
            for model, thumbnail in ((self.cnn, False), (self.thumbnail, True)):
                picks = [offset + i for i, d in enumerate(chunk) if d.array is not None and d.thumbnail == thumbnail]
                if model is not None and picks:
                    first[picks] = model.logits([decoded[i].array for i in picks])  # type: ignore[misc]
        screened = np.array([d.array is not None and not d.thumbnail for d in decoded], dtype=bool)
        vit = np.full(len(images), np.nan)
        escalated = np.array([], dtype=np.intp)
        if self.vit is not None and self.band is not None:
            escalated = np.flatnonzero(screened & escalate(sigmoid(np.nan_to_num(first, nan=-50.0)), self.band))
            step = self.config.max_batch_size
            for start in range(0, len(escalated), step):
                picks = escalated[start : start + step]
                vit[picks] = self.vit.logits([self.vit.model_input(decoded[i].image) for i in picks])  # type: ignore[arg-type]
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(images))
        batch_size = sum(d.array is not None for d in decoded)
        # A model that returns NaN or infinity for an image (corrupt or badly retrained weights) must not turn into a
        # verdict: comparisons with NaN are all false, so it would read as `likely-real`.
        unscored = ~np.isfinite(first)
        unscored[escalated] |= ~np.isfinite(vit[escalated])
        return [
            ScanOutcome(error=d.error)
            if d.array is None
            else ScanOutcome(error=NO_FINITE_SCORE)
            if unscored[i]
            else ScanOutcome(verdict=self._verdict(d.thumbnail, first[i], vit[i], latency_ms, batch_size))
            for i, d in enumerate(decoded)
        ]

    def _verdict(
        self, thumbnail: bool, first_logit: float, vit_logit: float, latency_ms: float, batch_size: int
    ) -> Verdict:
        escalated = not np.isnan(vit_logit)
        first_probability = float(sigmoid(first_logit))
        review_reason = None
        if thumbnail:
            assert self.thumbnail is not None
            card = self.thumbnail.card
            score, name, version = decision_score(first_probability, card.threshold), card.name, card.version
        elif not escalated:
            card = self.cnn.card
            point = self.fusion.cnn_point if self.fusion is not None else card.threshold
            score, name, version = decision_score(first_probability, point), card.name, card.version
        elif self.fusion is not None:
            fused = self.fusion.probability(first_logit, vit_logit)
            score, name, version = decision_score(fused, self.fusion.point), self.name, self.version
            if self.fusion.disagree(first_logit, vit_logit):
                review_reason = "the CNN and the ViT disagree"
        else:
            assert self.vit is not None
            card = self.vit.card
            score, name, version = decision_score(sigmoid(vit_logit), card.threshold), card.name, card.version
        score = float(score)
        return Verdict(
            score=score,
            is_ai=score >= 0.5,
            label=label_for(score, abstained=review_reason is not None),
            review_reason=review_reason,
            cnn_score=first_probability,
            vit_score=float(sigmoid(vit_logit)) if escalated else None,
            path="cnn+vit" if escalated else "cnn",
            model_name=name,
            model_version=version,
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
        """Grad-CAM of every view the model scored, each placed where it came from."""
        views = model.model_input(image)
        batch = model.to_batch(list(views)).float()
        module = model.module.float()
        try:
            cams = grad_cam(module, batch.contiguous(memory_format=torch.contiguous_format))
        finally:
            model.module = module.to(model.placement.dtype)
        return render_overlay(image, list(zip(cams, view_boxes(image, model.card), strict=True)))

    def warm_up(self) -> None:
        """One batch through each model, so the first real batch does not pay for lazy initialisation."""
        size = self.config.max_batch_size
        for model, count in ((self.cnn, size), (self.vit, 2), (self.thumbnail, 2)):
            if model is not None:
                side = model.card.input_size
                model.logits([np.zeros((model.card.max_crops, side, side, 3), np.uint8)] * count)


def create_detector(config: DetectorConfig | None = None) -> Detector:
    """Load the checkpoint (single model or cascade) named by `config` onto the best available device."""
    config = config or DetectorConfig()
    placement = choose_placement(config.device, config.cpu_runtime)

    def load(directory: Path) -> LoadedModel:
        module, card = load_checkpoint(directory)
        own = placement_for(module, placement, config.cpu_runtime)
        return LoadedModel(module, card, own, onnx_cache_dir=config.onnx_cache_dir)

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
            fusion=spec.fusion,
            name=spec.name,
            version=spec.version,
        )
    return Detector(load(root), None, None, config)
