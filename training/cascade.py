"""The escalation band of a cascade without a fusion (the ViT alone decides what it looked at), chosen on validation
scores: what fast adaptation refits when the active model is such a cascade. Photo-path cascades are fitted by
`training.photo_path` instead."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from detector.cascade import cascade_scores, decision_score
from detector.detector import LoadedModel

from .metrics import classification_report, guarded_reals, report_by_source


def _balanced_accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    predicted = scores >= 0.5
    return float(np.mean([np.mean(predicted[labels == 1]), np.mean(~predicted[labels == 0])]))


def _false_positive_rate(guarded: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean(scores[guarded] >= 0.5))


def fit_escalation_band(
    scores: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    cnn_threshold: float,
    vit_threshold: float,
    max_escalation_rate: float,
    sources: dict[str, list[str]] | None = None,
    confirm_ai: bool = False,
) -> dict[str, Any]:
    """Pick [lo, hi] around the CNN threshold that maximises validation balanced accuracy, escalating at most
    `max_escalation_rate` of validation images and calling no more real photographs AI than the CNN alone does
    (all real images when `sources` does not say which are thumbnails). `scores` maps set name → (labels, cnn probs,
    vit probs); `sources`, where given for a set, adds a per-source breakdown of its cascade report. With `confirm_ai`
    the band's top is 1: the CNN clears images on its own but never calls one AI without the ViT's word."""
    sources = sources or {}
    labels, cnn, vit = scores["val"]
    guarded = guarded_reals(labels, sources["val"]) if "val" in sources else labels == 0
    candidates = np.unique(np.quantile(cnn, np.linspace(0, 1, 101)))
    below = np.append(candidates[candidates <= cnn_threshold], cnn_threshold)
    above = np.array([1.0]) if confirm_ai else np.append(candidates[candidates >= cnn_threshold], cnn_threshold)
    cnn_only = _balanced_accuracy(labels, decision_score(cnn, cnn_threshold))
    cnn_fpr = _false_positive_rate(guarded, decision_score(cnn, cnn_threshold))
    best = (-1.0, (cnn_threshold, cnn_threshold)) if confirm_ai else (cnn_only, (cnn_threshold, cnn_threshold))
    for lo in below:
        for hi in above:
            combined, escalated = cascade_scores(
                cnn, vit, band=(lo, hi), cnn_threshold=cnn_threshold, vit_threshold=vit_threshold
            )
            if escalated.mean() > max_escalation_rate or _false_positive_rate(guarded, combined) > cnn_fpr:
                continue
            accuracy = _balanced_accuracy(labels, combined)
            if accuracy > best[0] + 1e-9:
                best = (accuracy, (float(lo), float(hi)))
    band = best[1]
    metrics: dict[str, Any] = {}
    for name, (set_labels, set_cnn, set_vit) in scores.items():
        combined, escalated = cascade_scores(
            set_cnn, set_vit, band=band, cnn_threshold=cnn_threshold, vit_threshold=vit_threshold
        )
        metrics[name] = {
            "cascade": (
                report_by_source(set_labels, combined, 0.5, sources[name])
                if name in sources
                else classification_report(set_labels, combined, 0.5)
            ),
            "cnn_only": classification_report(set_labels, decision_score(set_cnn, cnn_threshold), 0.5),
            "vit_only": classification_report(set_labels, decision_score(set_vit, vit_threshold), 0.5),
            "escalation_rate": float(escalated.mean()) if len(escalated) else 0.0,
        }
    return {
        "cnn": "cnn",
        "vit": "vit",
        "escalation_band": list(band),
        "max_escalation_rate": max_escalation_rate,
        "confirm_ai": confirm_ai,
        "validation_balanced_accuracy": {"cnn_only": cnn_only, "cascade": best[0]},
        "metrics": metrics,
    }


def model_probabilities(model: LoadedModel, images: list[Image.Image], *, batch_size: int = 32) -> np.ndarray:
    """One model's P(AI) for decoded images, through its own serving preprocessing, in batches."""
    chunks = [images[start : start + batch_size] for start in range(0, len(images), batch_size)]
    return np.concatenate([model.score([model.model_input(i) for i in chunk]) for chunk in chunks] or [np.zeros(0)])
