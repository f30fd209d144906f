"""Turn a detector score and the evidence beyond pixels into auto-tags, with the platform's thresholds and policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hashbank.services import evidence_in_force
from moderation.models import VerdictLabel
from scanning.models import TagSource


@dataclass(frozen=True)
class TagDecision:
    verdict: str
    confidence: float | None
    # "auto" when the pixels decided, "provenance" when declared provenance or a known-fake match did.
    source: str = TagSource.AUTO
    reason: str = ""


def decide(
    score: float,
    *,
    threshold: float,
    review_margin: float,
    provenance: str = "none",
    provenance_policy: str = "decide",
    detector_review_reason: str = "",
) -> TagDecision:
    """Scores within `review_margin` of the threshold go to a person; the rest are tagged automatically.

    The detector may abstain whatever its score (`detector_review_reason`, e.g. its models disagree): that goes to a
    person too, unless declared provenance decides first.

    Evidence comes first where the platform lets it (`provenance_policy`): declared AI provenance (a C2PA or IPTC
    declaration, generator metadata or watermark, a match with a confirmed fake) tags ai-generated whatever the score
    ("decide") or asks a person ("review"); contradicting evidence, or a declared camera capture the pixels call AI,
    always goes to a person.
    """
    if provenance_policy != "ignore":
        if provenance == "ai-declared":
            if provenance_policy == "decide":
                return TagDecision(VerdictLabel.AI_GENERATED, 1.0, TagSource.PROVENANCE, "declared AI provenance")
            return TagDecision(VerdictLabel.NEEDS_REVIEW, None, TagSource.PROVENANCE, "declared AI provenance")
        if provenance == "conflict":
            return TagDecision(VerdictLabel.NEEDS_REVIEW, None, TagSource.PROVENANCE, "provenance evidence disagrees")
        if provenance == "camera-declared" and score >= threshold - review_margin:
            return TagDecision(
                VerdictLabel.NEEDS_REVIEW, None, TagSource.PROVENANCE, "camera capture declared, pixels look AI"
            )
    if detector_review_reason:
        return TagDecision(VerdictLabel.NEEDS_REVIEW, None, reason=detector_review_reason)
    if abs(score - threshold) < review_margin:
        return TagDecision(VerdictLabel.NEEDS_REVIEW, None, reason="score near the threshold")
    if score >= threshold:
        return TagDecision(VerdictLabel.AI_GENERATED, score)
    return TagDecision(VerdictLabel.LIKELY_REAL, 1.0 - score)


def evidence_provenance(evidence: list[dict[str, Any]]) -> str:
    """What the recorded findings still in force declare, as `detector.evidence.provenance` reads them."""
    from detector.evidence import Finding, provenance

    return provenance([Finding(**finding) for finding in evidence_in_force(evidence)])


def evidence_tags(evidence: list[dict[str, Any]], provenance: str) -> list[str]:
    """Tags that name the evidence still in force, so platforms can filter on it."""
    evidence = evidence_in_force(evidence)
    kinds = {finding["kind"] for finding in evidence}
    tags = []
    if provenance == "ai-declared" and any(
        f["ai"] and f["strength"] in ("decisive", "strong") and f["kind"] != "known_fake_match" for f in evidence
    ):
        tags.append("provenance:ai-declared")
    if "c2pa" in kinds:
        tags.append("provenance:c2pa")
    if "known_fake_match" in kinds:
        tags.append("known-fake-match")
    return tags


def review_priority(*, score: float, threshold: float, escalated: bool, platform_flagged: bool) -> int:
    """Where an upload sits in the review queue (higher first): what a platform flagged, then what the ViT had to
    look at, then scores by closeness to the threshold (0 to 100)."""
    closeness = round(100 * max(0.0, 1.0 - abs(score - threshold) / 0.5))
    return 1000 * platform_flagged + 200 * escalated + closeness
