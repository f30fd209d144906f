"""The CNN → ViT cascade rule, shared by serving and by the training code that chooses its band.

A cascade may also name a thumbnail expert: images whose long side is at most `thumbnail_max_side` pixels (CIFAKE's
32-px images, icons, avatars) are decided by it alone, at their own scale, instead of being blown up for the screen.

Each model's probability is moved onto one decision scale where that model's own operating threshold sits at 0.5
(its logit shifted by the threshold's logit), so a verdict's score means the same whichever model decided.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CASCADE_FILENAME = "cascade.json"
_EPS = 1e-6


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def decision_score(probability: np.ndarray | float, threshold: float) -> np.ndarray:
    """Probability → decision scale: ≥ 0.5 exactly when probability ≥ threshold."""
    return 1.0 / (1.0 + np.exp(-(_logit(probability) - _logit(threshold))))


@dataclass(frozen=True)
class CascadeSpec:
    cnn: str  # sub-folder of the CNN checkpoint
    vit: str  # sub-folder of the ViT checkpoint
    escalation_band: tuple[float, float]  # CNN probabilities in [lo, hi] are decided by the ViT
    metrics: dict
    thumbnail: str | None = None  # sub-folder of the thumbnail expert's checkpoint
    thumbnail_max_side: int = 0  # images with max(width, height) at most this go to the thumbnail expert

    @classmethod
    def load(cls, directory: Path) -> CascadeSpec:
        data = json.loads((Path(directory) / CASCADE_FILENAME).read_text())
        lo, hi = data["escalation_band"]
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"escalation band {data['escalation_band']} is not within [0, 1]")
        thumbnail = data.get("thumbnail")
        return cls(
            cnn=data["cnn"],
            vit=data["vit"],
            escalation_band=(float(lo), float(hi)),
            metrics=data.get("metrics", {}),
            thumbnail=thumbnail["model"] if thumbnail else None,
            thumbnail_max_side=int(thumbnail["max_side"]) if thumbnail else 0,
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
    """(decision-scale scores, escalated mask) for arrays of both models' probabilities."""
    escalated = escalate(cnn_probability, band)
    scores = np.where(
        escalated, decision_score(vit_probability, vit_threshold), decision_score(cnn_probability, cnn_threshold)
    )
    return scores, escalated
