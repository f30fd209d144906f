"""Turn a detector score into auto-tags, with the platform's thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Verdict


@dataclass(frozen=True)
class TagDecision:
    verdict: str
    confidence: float | None


def decide(score: float, *, threshold: float, review_margin: float) -> TagDecision:
    """Scores within `review_margin` of the threshold go to a person; the rest are tagged automatically."""
    if abs(score - threshold) < review_margin:
        return TagDecision(Verdict.NEEDS_REVIEW, None)
    if score >= threshold:
        return TagDecision(Verdict.AI_GENERATED, score)
    return TagDecision(Verdict.LIKELY_REAL, 1.0 - score)
