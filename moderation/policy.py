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


def review_priority(*, score: float, threshold: float, escalated: bool, platform_flagged: bool) -> int:
    """Where an upload sits in the review queue (higher first): what a platform flagged, then what the ViT had to
    look at, then scores by closeness to the threshold (0 to 100)."""
    closeness = round(100 * max(0.0, 1.0 - abs(score - threshold) / 0.5))
    return 1000 * platform_flagged + 200 * escalated + closeness
