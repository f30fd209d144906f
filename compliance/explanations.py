"""The plain-language part of a statement of reasons: what the user is told, written from the recorded evidence, the
model's score and who decided. Pure functions of their arguments (no database), so every sentence is testable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACTION_PHRASES = {
    "label": "shows it with a label saying it is AI-generated",
    "demote": "shows it less prominently (demoted)",
    "remove": "has removed it",
}
LIFTED_PHRASES = {
    "label": "The AI-generated label has been removed.",
    "demote": "It is no longer demoted.",
    "remove": "It has been restored.",
}


@dataclass(frozen=True)
class DecisionFacts:
    """What a statement explains, in the terms the user needs."""

    platform_name: str
    action: str  # PlatformAction value
    restricts: bool
    kind: str  # StatementKind value
    reason_label: str
    evidence: list[dict[str, Any]]
    score: float | None
    threshold: float | None
    model_version: str


def evidence_sentences(evidence: list[dict[str, Any]]) -> list[str]:
    """One sentence per finding that speaks for AI generation, strongest first."""
    order = {"decisive": 0, "strong": 1, "moderate": 2, "weak": 3}
    sentences = []
    for finding in sorted(evidence, key=lambda f: order.get(f.get("strength", "weak"), 3)):
        if not finding.get("ai"):
            continue
        kind, value, detail = finding.get("kind"), finding.get("value", ""), finding.get("detail") or {}
        if kind == "c2pa":
            generator = detail.get("generator") or detail.get("claim_generator") or "an unnamed tool"
            state = detail.get("validation_state") or "unverified"
            sentences.append(
                f"The image carries a C2PA content credential written by {generator} (signature: {state}) that "
                f"declares it was made with AI ({value})."
            )
        elif kind == "digital_source_type":
            sentences.append(f"Its embedded metadata declares the source type {value}, meaning AI-generated.")
        elif kind == "generator_metadata":
            sentences.append(f"Its file contains the settings of an image generator ({value}).")
        elif kind == "software":
            sentences.append(f"Its metadata names AI software that produced it ({value}).")
        elif kind == "sd_watermark":
            sentences.append("It carries the invisible watermark that Stable Diffusion adds to the images it makes.")
        elif kind == "known_fake_match":
            sentences.append("It matches an image that a moderator had already confirmed as AI-generated.")
        else:
            sentences.append(f"{kind}: {value}.")
    return sentences


def explanation_text(facts: DecisionFacts) -> str:
    """The statement's text for the user (at most 2,000 characters, as the Transparency Database takes it)."""
    if facts.restricts:
        opening = (
            f"{facts.platform_name} {ACTION_PHRASES[facts.action]} because it was found to be an AI-generated image: "
            f"{facts.reason_label.rstrip('.')}."
        )
    else:
        opening = f"{facts.platform_name} no longer treats this image as AI-generated. {LIFTED_PHRASES[facts.action]}"
    parts = [opening]
    if facts.restricts:
        parts += evidence_sentences(facts.evidence)
        if facts.score is not None and facts.threshold is not None:
            parts.append(
                f"Our detection model ({facts.model_version}) gave it an AI score of {facts.score:.2f}, where "
                f"{facts.threshold:.2f} or more counts as AI-generated."
            )
    if facts.kind == "automatic":
        parts.append("This decision was taken automatically, without a person reviewing it.")
    elif facts.kind == "reviewer_confirmed":
        parts.append("A moderator reviewed the image and confirmed the automatic decision.")
    elif facts.kind == "reviewer_overturned":
        parts.append("A moderator reviewed the image and overturned the automatic assessment.")
    elif facts.kind == "appeal_upheld":
        parts.append("After your appeal, a moderator who had not taken the first decision reviewed it and upheld it.")
    elif facts.kind == "appeal_reversed":
        parts.append("After your appeal, a moderator who had not taken the first decision reviewed it and reversed it.")
    if facts.restricts and not facts.kind.startswith("appeal_"):
        parts.append(f"If you disagree, you can appeal this decision through {facts.platform_name}.")
    elif facts.kind.startswith("appeal_"):
        parts.append("You may also refer it to a certified out-of-court dispute settlement body or to a court.")
    text = " ".join(parts)
    return text if len(text) <= 2000 else text[:1997] + "..."
