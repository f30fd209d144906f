"""The CNN → ViT cascade rule, shared by serving and by the training code that fits it.

The CNN screens every image; the ViT looks only at images whose CNN probability falls inside the escalation band.
Where the cascade carries a fusion (cascade.json `fusion`), the CNN decides the rest at its own operating point, and
the images both looked at are decided by a stacking layer over both models' logits, fitted on out-of-fold scores, so
neither overrules the other silently; when they disagree the verdict is needs-review. Without a fusion (older
cascades) the ViT alone decides what it looked at.

A cascade may also name a thumbnail expert: images whose long side is at most `thumbnail_max_side` pixels (CIFAKE's
32-px images, icons, avatars) are decided by it alone, at their own scale, instead of being blown up for the screen.

Every decision ends on one scale where 0.5 ± REVIEW_MARGIN brackets the deciding model's uncertain zone: its
`real` operating point maps to 0.4 and its `ai` point to 0.6, so a platform's default threshold (0.5) and review margin
(0.1) give the model's own three-way labels, and a platform may still move either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CASCADE_FILENAME = "cascade.json"
REVIEW_MARGIN = 0.1
_EPS = 1e-6
# logit(0.5 + REVIEW_MARGIN): where the `ai` operating point lands on the decision scale.
_EDGE = float(np.log((0.5 + REVIEW_MARGIN) / (0.5 - REVIEW_MARGIN)))

LABEL_AI = "ai-generated"
LABEL_REVIEW = "needs-review"
LABEL_REAL = "likely-real"


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def distance_apart(
    cnn_logit: np.ndarray, vit_logit: np.ndarray, cnn_threshold: float, vit_threshold: float
) -> np.ndarray:
    """How far apart, in logits, the two models are where they fall on opposite sides of their own thresholds (the
    sum of both margins); NaN where they agree."""
    cnn_margin = np.asarray(cnn_logit, dtype=np.float64) - _logit(cnn_threshold)
    vit_margin = np.asarray(vit_logit, dtype=np.float64) - _logit(vit_threshold)
    return np.where(np.sign(cnn_margin) != np.sign(vit_margin), np.abs(cnn_margin - vit_margin), np.nan)


@dataclass(frozen=True)
class OperatingPoint:
    """Probabilities of one decider: at or below `real` it calls an image real, at or above `ai` it calls it AI, and
    between them it asks a person. `real == ai` is a single threshold."""

    real: float
    ai: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.real <= self.ai <= 1.0:
            raise ValueError(f"operating point real={self.real} ai={self.ai} must satisfy 0 <= real <= ai <= 1")


def decision_score(probability: np.ndarray | float, point: OperatingPoint | float) -> np.ndarray:
    """Probability → decision scale, monotone: `point.real` ↦ 0.4, `point.ai` ↦ 0.6, linear in logits between them
    and shifted outside. A plain threshold maps to 0.5 (its logit shifted), as single-threshold models always did."""
    if not isinstance(point, OperatingPoint):
        point = OperatingPoint(point, point)
    value = _logit(probability)
    lo, hi = float(_logit(point.real)), float(_logit(point.ai))
    if hi - lo < 1e-9:
        shifted = value - hi
    else:
        inside = -_EDGE + 2 * _EDGE * (value - lo) / (hi - lo)
        shifted = np.where(value >= hi, value - hi + _EDGE, np.where(value <= lo, value - lo - _EDGE, inside))
    return 1.0 / (1.0 + np.exp(-shifted))


def label_for(score: float, *, abstained: bool = False) -> str:
    """The three-way label at the default policy (threshold 0.5, margin REVIEW_MARGIN)."""
    if abstained or abs(score - 0.5) < REVIEW_MARGIN:
        return LABEL_REVIEW
    return LABEL_AI if score >= 0.5 else LABEL_REAL


@dataclass(frozen=True)
class Fusion:
    """Stacking of the CNN's and the ViT's logits for the images both looked at (fitted on out-of-fold scores)."""

    cnn_weight: float
    vit_weight: float
    bias: float
    point: OperatingPoint  # on the fused probability
    cnn_point: OperatingPoint  # on the CNN's probability, for the images it decides alone
    # Abstain when the two models fall on opposite sides of their own thresholds, this far apart in logits.
    disagreement: float | None = None
    cnn_threshold: float = 0.5
    vit_threshold: float = 0.5

    def probability(self, cnn_logit: np.ndarray, vit_logit: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.cnn_weight * cnn_logit + self.vit_weight * vit_logit + self.bias)))

    def disagree(self, cnn_logit: np.ndarray, vit_logit: np.ndarray) -> np.ndarray:
        if self.disagreement is None:
            return np.zeros(np.shape(cnn_logit), dtype=bool)
        # NaN (they agree) compares False.
        return distance_apart(cnn_logit, vit_logit, self.cnn_threshold, self.vit_threshold) >= self.disagreement

    @classmethod
    def from_dict(cls, data: dict) -> Fusion:
        return cls(
            cnn_weight=float(data["cnn_weight"]),
            vit_weight=float(data["vit_weight"]),
            bias=float(data["bias"]),
            point=OperatingPoint(*map(float, data["operating_point"])),
            cnn_point=OperatingPoint(*map(float, data["cnn_operating_point"])),
            disagreement=None if data.get("disagreement") is None else float(data["disagreement"]),
            cnn_threshold=float(data.get("cnn_threshold", 0.5)),
            vit_threshold=float(data.get("vit_threshold", 0.5)),
        )


@dataclass(frozen=True)
class CascadeSpec:
    cnn: str  # sub-folder of the CNN checkpoint
    vit: str  # sub-folder of the ViT checkpoint
    escalation_band: tuple[float, float]  # CNN probabilities in [lo, hi] are decided with the ViT
    metrics: dict
    thumbnail: str | None = None  # sub-folder of the thumbnail expert's checkpoint
    thumbnail_max_side: int = 0  # images with max(width, height) at most this go to the thumbnail expert
    fusion: Fusion | None = None
    name: str = ""  # names fused verdicts ("name@version"); the CNN's or ViT's own name otherwise
    version: str = ""

    @property
    def model_version(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def load(cls, directory: Path) -> CascadeSpec:
        data = json.loads((Path(directory) / CASCADE_FILENAME).read_text())
        lo, hi = data["escalation_band"]
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"escalation band {data['escalation_band']} is not within [0, 1]")
        thumbnail = data.get("thumbnail")
        fusion = Fusion.from_dict(data["fusion"]) if data.get("fusion") else None
        if fusion is not None and not data.get("name"):
            raise ValueError("a cascade with a fusion needs a name and version for the verdicts it decides")
        return cls(
            cnn=data["cnn"],
            vit=data["vit"],
            escalation_band=(float(lo), float(hi)),
            metrics=data.get("metrics", {}),
            thumbnail=thumbnail["model"] if thumbnail else None,
            thumbnail_max_side=int(thumbnail["max_side"]) if thumbnail else 0,
            fusion=fusion,
            name=data.get("name", ""),
            version=data.get("version", ""),
        )


def escalate(cnn_probability: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    lo, hi = band
    p = np.asarray(cnn_probability)
    return (p >= lo) & (p <= hi)


def cascade_scores(
    cnn_probability: np.ndarray,
    vit_probability: np.ndarray,
    *,
    band: tuple[float, float],
    cnn_threshold: float,
    vit_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(decision-scale scores, escalated mask) of a cascade without fusion, for arrays of both models' probabilities."""
    escalated = escalate(cnn_probability, band)
    scores = np.where(
        escalated, decision_score(vit_probability, vit_threshold), decision_score(cnn_probability, cnn_threshold)
    )
    return scores, escalated
