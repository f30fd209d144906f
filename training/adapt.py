"""Fast adaptation: refit the active model's CNN head on frozen features from new labels, and judge checkpoints.

Starts from the active checkpoint (never from hub or ../shared weights), so it runs on a user's machine in minutes on
a CPU. A cascade keeps its ViT and thumbnail expert; the CNN screen's head changes, and the escalation band is
refitted for it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detector import DetectorConfig, ImageRejected, create_detector, decode_image
from detector.card import CARD_FILENAME
from detector.cascade import CASCADE_FILENAME, CascadeSpec, decision_score, escalate

from .cascade import fit_escalation_band, model_probabilities
from .datasets import LabelledImage
from .metrics import auroc, classification_report, outcome_rates
from .probe import ProbeConfig, ProbeResult, fit_logistic_head, train_probe


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
    `val`, reported on `test`); a cascade's ViT and thumbnail expert are referenced, not copied. A photo-path cascade
    (one with a fusion) has both heads adapted instead (`adapt_photo_path`)."""
    active = Path(active).resolve()
    if (active / CASCADE_FILENAME).is_file() and CascadeSpec.load(active).fusion is not None:
        return adapt_photo_path(
            active=active, train=train, val=val, out_dir=out_dir, name=name, version=version, cache_dir=cache_dir
        )
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


L2_CHOICES = (0.003, 0.03, 0.3, 3.0)


def adapt_photo_path(
    *,
    active: Path,
    train: list[LabelledImage],
    val: list[LabelledImage],
    out_dir: Path,
    name: str,
    version: str,
    cache_dir: Path | None = None,
) -> ProbeResult:
    """Both heads of the active photo path refitted on reviewer labels, each pulled toward the active head (the pull
    chosen on `val` by the cascade's AUROC), on the frozen backbones' features of the images and of an upload-like
    copy of each. The fusion, the band and the operating points stay: the heads move from where they were, so their
    logits keep their meaning, and a few hundred labels could not re-estimate 1 % false-positive points anyway."""
    from detector.checkpoint import load_checkpoint, save_checkpoint

    from .photo_path import ImageFeatures, image_features, sigmoid

    spec = CascadeSpec.load(active)
    assert spec.fusion is not None
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    features: dict[str, dict[str, ImageFeatures]] = {}
    modules = {}
    for branch, folder in (("cnn", spec.cnn), ("vit", spec.vit)):
        module, card = load_checkpoint(active / folder)
        modules[branch] = (module, card)
        features[branch] = {
            part: ImageFeatures.concat(
                [
                    image_features(module, card, items, cache_dir=cache_dir, augmented=copy, desc=f"{branch} {part}")
                    for copy in ((None, "upload-like") if part == "train" else (None,))
                ]
            )
            for part, items in (("train", train), ("val", val))
        }
    priors = {
        branch: (
            module.get_classifier().weight.detach().double().numpy()[0],
            float(module.get_classifier().bias.detach()),
        )
        for branch, (module, _) in modules.items()
    }

    def cascade_probability(heads: dict[str, tuple[np.ndarray, float]], part: str) -> np.ndarray:
        """The decision score serving would give, with these heads."""
        cnn = features["cnn"][part].features @ heads["cnn"][0] + heads["cnn"][1]
        vit = features["vit"][part].features @ heads["vit"][0] + heads["vit"][1]
        fused = decision_score(spec.fusion.probability(cnn, vit), spec.fusion.point)  # type: ignore[union-attr]
        alone = decision_score(sigmoid(cnn), spec.fusion.cnn_point)  # type: ignore[union-attr]
        return np.where(escalate(sigmoid(cnn), spec.escalation_band), fused, alone)

    val_labels = features["cnn"]["val"].labels
    best: tuple[float, float, dict] | None = None
    for l2 in L2_CHOICES:
        heads = {
            branch: fit_logistic_head(
                features[branch]["train"].features,
                features[branch]["train"].labels,
                l2=l2,
                seed=0,
                prior=priors[branch],
            )
            for branch in ("cnn", "vit")
        }
        score = auroc(val_labels, cascade_probability(heads, "val")) or 0.0
        if best is None or score > best[0]:
            best = (score, l2, heads)
    assert best is not None
    val_auroc, l2, heads = best
    prior_auroc = auroc(val_labels, cascade_probability(priors, "val"))
    for branch, folder in (("cnn", spec.cnn), ("vit", spec.vit)):
        module, card = modules[branch]
        with torch.no_grad():
            module.get_classifier().weight.copy_(torch.from_numpy(heads[branch][0]).float().view(1, -1))
            module.get_classifier().bias.fill_(heads[branch][1])
        save_checkpoint(module, replace(card, name=f"{card.name}-adapted", version=version), out_dir / folder)
    cascade = json.loads((active / CASCADE_FILENAME).read_text())
    training = {
        "method": "both heads refitted on reviewer labels, pulled toward the active heads",
        "l2": l2,
        "labels": {"train": len(train), "val": len(val)},
        "val_auroc": {"adapted": val_auroc, "active": prior_auroc},
    }
    cascade.update(name=name, version=version, metrics={}, training=training)
    if spec.thumbnail:
        cascade["thumbnail"] = {**cascade["thumbnail"], "model": str((active / spec.thumbnail).resolve())}
    (out_dir / CASCADE_FILENAME).write_text(json.dumps(cascade, indent=2, sort_keys=True) + "\n")
    card = {"name": name, "version": version, "threshold": 0.5, "training": training}
    return ProbeResult(card=card, scores={"val": (val_labels, cascade_probability(heads, "val"))})


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
    """The serving path's verdicts on labelled images: accuracy, AUROC, FPR, confusion matrix, escalation rate, the
    three-way outcome rates, and every label and score (for the gate's paired bootstrap)."""
    detector = create_detector(DetectorConfig(checkpoint=Path(checkpoint), device=device))
    outcomes = detector.predict([item.path.read_bytes() for item in items])
    scored = [(item.label, outcome.verdict) for item, outcome in zip(items, outcomes, strict=True) if outcome.verdict]
    labels = np.array([label for label, _ in scored])
    scores = np.array([verdict.score for _, verdict in scored])
    report = classification_report(labels, scores, 0.5)
    report["outcomes"] = outcome_rates(labels, np.array([verdict.label for _, verdict in scored]))
    report["escalation_rate"] = (
        float(np.mean([verdict.vit_score is not None for _, verdict in scored])) if scored else 0.0
    )
    report["rejected"] = len(items) - len(scored)
    report["labels"], report["scores"] = labels.tolist(), scores.tolist()
    return report


def auroc_gain_bound(
    labels: np.ndarray, candidate: np.ndarray, active: np.ndarray, *, confidence: float = 0.95, resamples: int = 1000
) -> tuple[float, float]:
    """The candidate's AUROC gain over the active model on the same images, and its one-sided lower confidence
    bound from a paired bootstrap that resamples real and AI images separately."""
    labels, candidate, active = np.asarray(labels), np.asarray(candidate), np.asarray(active)
    point = (auroc(labels, candidate) or 0.0) - (auroc(labels, active) or 0.0)
    rng = np.random.default_rng(0)
    real, fake = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    gains = np.empty(resamples)
    for index in range(resamples):
        pick = np.concatenate([rng.choice(real, len(real)), rng.choice(fake, len(fake))])
        gains[index] = (auroc(labels[pick], candidate[pick]) or 0.0) - (auroc(labels[pick], active[pick]) or 0.0)
    return float(point), float(np.quantile(gains, 1.0 - confidence))


def gate_decision(candidate: dict[str, Any], active: dict[str, Any], *, min_gain: float) -> tuple[bool, str]:
    """Promote only a candidate whose AUROC gain on the frozen set is at least `min_gain` with 95 % confidence
    (a lower bound, not a point estimate on a few images) and that tags no more real images AI."""
    labels = np.asarray(candidate["labels"])
    if len(set(labels.tolist())) < 2 or candidate["labels"] != active["labels"]:
        return False, "the frozen evaluation set needs real and AI images, scored by both models"
    gain, lower = auroc_gain_bound(labels, np.asarray(candidate["scores"]), np.asarray(active["scores"]))
    measured = (
        f"AUROC {active['auroc']:.3f} → {candidate['auroc']:.3f} (gain {gain:+.3f}, 95 % lower bound {lower:+.3f})"
    )
    if lower < min_gain:
        return False, f"{measured}: not a gain of {min_gain:.3f} with confidence"
    candidate_fp = candidate["outcomes"].get("real_tagged_ai", 0.0)
    active_fp = active["outcomes"].get("real_tagged_ai", 0.0)
    if candidate_fp > active_fp:
        return False, f"{measured}, but real images tagged AI rise from {active_fp:.4f} to {candidate_fp:.4f}"
    return True, f"{measured}; real images tagged AI {active_fp:.4f} → {candidate_fp:.4f}"
