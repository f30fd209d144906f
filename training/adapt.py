"""Fast adaptation: refit the active model's CNN head on frozen features from new labels, and judge checkpoints.

Starts from the active checkpoint (never from hub or ../shared weights), so it runs on a user's machine in minutes on
a CPU. A cascade keeps its ViT and thumbnail expert; the CNN screen's head changes, and the escalation band is
refitted for it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from detector import DetectorConfig, ImageRejected, create_detector, decode_image
from detector.card import CARD_FILENAME
from detector.cascade import CASCADE_FILENAME, CascadeSpec

from .cascade import fit_escalation_band, model_probabilities
from .datasets import LabelledImage
from .metrics import classification_report
from .probe import ProbeConfig, ProbeResult, train_probe


def _cnn_dir(checkpoint: Path) -> Path:
    if (checkpoint / CASCADE_FILENAME).is_file():
        return checkpoint / CascadeSpec.load(checkpoint).cnn
    return checkpoint


def adapt_head(
    *,
    active: Path,
    train: list[LabelledImage],
    val: list[LabelledImage],
    test: list[LabelledImage],
    out_dir: Path,
    name: str,
    version: str,
    target_fpr: float,
    cache_dir: Path | None = None,
) -> ProbeResult:
    """Write a new checkpoint to `out_dir`: the active CNN with a head refit on `train` (L2 and threshold chosen on
    `val`, reported on `test`); a cascade's ViT and thumbnail expert are referenced, not copied."""
    active = Path(active).resolve()
    cnn_card = json.loads((_cnn_dir(active) / CARD_FILENAME).read_text())
    config = ProbeConfig(
        architecture=cnn_card["architecture"],
        init_checkpoint=_cnn_dir(active),
        input_size=cnn_card["input_size"],
        mean=tuple(cnn_card["mean"]),
        std=tuple(cnn_card["std"]),
        target_fpr=target_fpr,
    )
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    is_cascade = (active / CASCADE_FILENAME).is_file()
    result = train_probe(
        config=config,
        train=train,
        val=val,
        test=test,
        extra_eval={},
        card_name=name,
        card_version=version,
        out_dir=out_dir / "cnn" if is_cascade else out_dir,
        cache_dir=cache_dir,
    )
    if is_cascade:
        spec = CascadeSpec.load(active)
        cascade = json.loads((active / CASCADE_FILENAME).read_text())
        cascade.update(cnn="cnn", vit=str((active / spec.vit).resolve()), metrics={})
        cascade.update(
            _refit_band(result, val, active / spec.vit, max_escalation_rate=cascade.get("max_escalation_rate", 0.3))
        )
        if spec.thumbnail:
            cascade["thumbnail"] = {**cascade["thumbnail"], "model": str((active / spec.thumbnail).resolve())}
        (out_dir / CASCADE_FILENAME).write_text(json.dumps(cascade, indent=2, sort_keys=True) + "\n")
    return result


def _refit_band(
    result: ProbeResult, val: list[LabelledImage], vit_dir: Path, *, max_escalation_rate: float
) -> dict[str, Any]:
    """The escalation band for the new head, fitted on the validation labels.

    The active band was chosen for the old head's probabilities; kept as it is, it can hand exactly the images the
    new labels taught the CNN to catch to a ViT that has never seen their generator (with the shipped band, whose top
    is 1, every CNN "AI" call). Refitted here, the ViT decides only where it helps on these labels, starting from the
    CNN alone, and the band may not raise their false positives.
    """
    labels, cnn = result.scores["val"]
    vit = create_detector(DetectorConfig(checkpoint=vit_dir)).cnn
    images = []
    for item in val:
        try:
            images.append(decode_image(item.path.read_bytes(), min_side=vit.card.input_size))
        except ImageRejected:
            continue  # the probe skipped it too
    if len(images) != len(labels) or len(set(labels.tolist())) < 2:
        return {}  # nothing to fit on: keep the active band
    vit_scores = model_probabilities(vit, images)
    fitted = fit_escalation_band(
        {"val": (labels, cnn, vit_scores)},
        cnn_threshold=result.card["threshold"],
        vit_threshold=vit.card.threshold,
        max_escalation_rate=max_escalation_rate,
    )
    return {
        "escalation_band": fitted["escalation_band"],
        "confirm_ai": False,
        "band_fitted_on": f"{len(labels)} validation labels",
    }


def evaluate_checkpoint(checkpoint: Path, items: list[LabelledImage], *, device: str = "auto") -> dict[str, Any]:
    """The serving path's verdicts on labelled images: accuracy, AUROC, FPR, confusion matrix, escalation rate."""
    detector = create_detector(DetectorConfig(checkpoint=Path(checkpoint), device=device))
    outcomes = detector.predict([item.path.read_bytes() for item in items])
    scored = [(item.label, outcome.verdict) for item, outcome in zip(items, outcomes, strict=True) if outcome.verdict]
    labels = np.array([label for label, _ in scored])
    scores = np.array([verdict.score for _, verdict in scored])
    report = classification_report(labels, scores, 0.5)
    report["escalation_rate"] = (
        float(np.mean([verdict.vit_score is not None for _, verdict in scored])) if scored else 0.0
    )
    report["rejected"] = len(items) - len(scored)
    return report


def gate_decision(candidate: dict[str, Any], active: dict[str, Any]) -> tuple[bool, str]:
    """Promote only a candidate that is more accurate on the frozen set and calls no more real images AI."""
    if candidate["accuracy"] <= active["accuracy"]:
        return False, f"accuracy {candidate['accuracy']:.4f} does not beat the active model's {active['accuracy']:.4f}"
    candidate_fpr, active_fpr = candidate["false_positive_rate"] or 0.0, active["false_positive_rate"] or 0.0
    if candidate_fpr > active_fpr:
        return False, f"false-positive rate on real images rises from {active_fpr:.4f} to {candidate_fpr:.4f}"
    return (
        True,
        f"accuracy {active['accuracy']:.4f} → {candidate['accuracy']:.4f}, FPR {active_fpr:.4f} → {candidate_fpr:.4f}",
    )
