"""Classification metrics for a binary AI-vs-real detector (label 1 = AI-generated)."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve via the rank-sum statistic (ties get average ranks); None with one class only."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = np.asarray(scores)[order]
    start = 0
    while start < len(sorted_scores):
        end = start
        while end + 1 < len(sorted_scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def threshold_for_fpr(real_scores: np.ndarray, target_fpr: float, *, confidence: float | None = None) -> float:
    """The smallest threshold whose false-positive rate on these real images is at most `target_fpr`.

    With `confidence` (e.g. 0.95), the rate's Wilson upper bound must stay under the target instead, so the threshold
    also holds on real images not seen here (calibrating on a few hundred labels would overshoot about half the time).
    """
    scores = np.sort(np.asarray(real_scores, dtype=np.float64))
    n = len(scores)
    if n == 0:
        raise ValueError("no real images to calibrate a threshold on")
    allowed = int(np.floor(target_fpr * n))
    if confidence is not None:
        while allowed > 0 and _wilson_upper(allowed, n, confidence) > target_fpr:
            allowed -= 1
    # Scores >= threshold are called AI; keep at most `allowed` real scores at or above it.
    cutoff = scores[n - allowed - 1]
    return float(np.nextafter(cutoff, np.inf))


# Sources of 32-px thumbnails: real uploads are photographs, so thresholds are set on the other real images.
THUMBNAIL_SOURCES = frozenset({"cifake"})


def guarded_reals(labels: np.ndarray, sources: list[str]) -> np.ndarray:
    """Mask of the real photographs among these images (of all real images if there are none): the ones whose false
    positives a threshold or a cascade band is held to."""
    real = np.asarray(labels) == 0
    photos = real & ~np.isin(np.asarray(sources), list(THUMBNAIL_SOURCES))
    return photos if photos.any() else real


def photo_threshold(labels: np.ndarray, scores: np.ndarray, sources: list[str], target_fpr: float) -> float:
    """`threshold_for_fpr` on the real photographs among these images (all real images if there are none).

    Validation reals are mostly CIFAR thumbnails, which no platform uploads; a threshold set on them lets through
    far more false positives on camera photos (reports/finetune_tail_cifake_all/).
    """
    return threshold_for_fpr(np.asarray(scores)[guarded_reals(labels, sources)], target_fpr)


def balanced_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best balanced accuracy on these images (the lowest such, on ties)."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    candidates = np.unique(scores)
    positives, negatives = max(1, int((labels == 1).sum())), max(1, int((labels == 0).sum()))
    order = np.argsort(scores)
    ranked = labels[order]
    # Calling AI everything at or above candidates[k]: count each class below that score.
    below = np.searchsorted(scores[order], candidates, side="left")
    real_below = np.r_[0, np.cumsum(ranked == 0)][below]
    fake_below = np.r_[0, np.cumsum(ranked == 1)][below]
    balanced = (real_below / negatives + (positives - fake_below) / positives) / 2
    return float(candidates[int(np.argmax(balanced))])


def _wilson_upper(successes: int, n: int, confidence: float) -> float:
    z = float(NormalDist().inv_cdf(0.5 + confidence / 2))
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre + spread) / (1 + z * z / n))


def classification_report(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    true_pos = int(((predicted == 1) & (labels == 1)).sum())
    true_neg = int(((predicted == 0) & (labels == 0)).sum())
    false_pos = int(((predicted == 1) & (labels == 0)).sum())
    false_neg = int(((predicted == 0) & (labels == 1)).sum())

    def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}

    return {
        "n": len(labels),
        "threshold": float(threshold),
        "accuracy": (true_pos + true_neg) / len(labels) if len(labels) else 0.0,
        "auroc": auroc(labels, scores),
        "false_positive_rate": false_pos / (false_pos + true_neg) if false_pos + true_neg else None,
        "confusion_matrix": {
            "rows_true_cols_pred": ["real", "ai"],
            "matrix": [[true_neg, false_pos], [false_neg, true_pos]],
        },
        "ai": prf(true_pos, false_pos, false_neg),
        "real": prf(true_neg, false_neg, false_pos),
    }


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the precision-recall curve (step-wise, as scikit-learn computes it); None without positives."""
    labels = np.asarray(labels).astype(bool)
    if not labels.any():
        return None
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    hits, ranked = labels[order], scores[order]
    # One point per distinct score: tied images are counted together, whatever order they came in.
    last_of_each = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    true_positives = np.cumsum(hits)[last_of_each]
    precision = true_positives / (last_of_each + 1)
    recall_gain = np.diff(np.r_[0, true_positives]) / labels.sum()
    return float((precision * recall_gain).sum())


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width score bins, weighted by bin size."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(labels[mask].mean() - scores[mask].mean())
    return float(total)


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) at every distinct threshold, for plotting."""
    labels = np.asarray(labels).astype(bool)
    thresholds = np.unique(scores)[::-1]
    tpr = np.array([0.0] + [np.mean(scores[labels] >= t) for t in thresholds])
    fpr = np.array([0.0] + [np.mean(scores[~labels] >= t) for t in thresholds])
    return fpr, tpr


def report_by_source(labels: np.ndarray, scores: np.ndarray, threshold: float, sources: list[str]) -> dict[str, Any]:
    """`classification_report`, plus a per-source breakdown when the set mixes sources, so a weak spot cannot hide
    inside the total. `sources` must align with `labels` (otherwise the breakdown is left out)."""
    result = classification_report(labels, scores, threshold)
    names = np.asarray(sources)
    if len(set(sources)) > 1 and len(names) == len(labels):
        result["by_source"] = {
            source: classification_report(labels[names == source], scores[names == source], threshold)
            for source in sorted(set(sources))
        }
    return result


def outcome_rates(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """The system view of three-way labels (ai-generated / needs-review / likely-real): the share of AI images caught
    (tagged or sent to review) and auto-tagged, and the share of real photos tagged AI or sent to review."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    fake, real = labels == 1, labels == 0
    rates: dict[str, Any] = {"n": len(labels), "fake": int(fake.sum()), "real": int(real.sum())}
    if fake.any():
        rates["caught"] = float(np.isin(predicted[fake], ["ai-generated", "needs-review"]).mean())
        rates["auto_tagged"] = float((predicted[fake] == "ai-generated").mean())
    if real.any():
        rates["real_tagged_ai"] = float((predicted[real] == "ai-generated").mean())
        rates["real_to_review"] = float((predicted[real] == "needs-review").mean())
    return rates
