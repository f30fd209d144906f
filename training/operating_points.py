"""Where to put a model's threshold: the trade-off between catching CIFAKE fakes and sparing real photographs.

Validation real images are mostly 32-px CIFAR pictures, which no platform uploads; a threshold chosen for a
false-positive rate on them says little about camera photos. This report chooses thresholds for target rates on the
validation set's *photographs* only (every real image not from CIFAKE) and shows, for each, what the test split and
the extra sets (camera photos, cross-source) get. It reads the per-set scores a training run saved (`scores-cnn.npz`),
so it costs seconds and can be repeated on any run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .datasets import LabelledImage
from .metrics import classification_report, guarded_reals, photo_threshold


def operating_points(
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    splits: dict[str, list[LabelledImage]],
    target_fprs: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10),
) -> list[dict[str, Any]]:
    """One row per target: the threshold, then accuracy/FPR/AI F1 per test source and per extra set."""
    sources = {name: np.array([item.source for item in items]) for name, items in splits.items()}
    for name in ("val", "test"):
        if len(sources[name]) != len(scores[name][0]):
            raise ValueError(f"the saved {name} scores do not match this split; pass the run's --cifake-per-class")
    val_labels, val_scores = scores["val"]
    photos = int(guarded_reals(val_labels, list(sources["val"])).sum())
    rows = []
    for target in target_fprs:
        threshold = photo_threshold(val_labels, val_scores, list(sources["val"]), target)
        row: dict[str, Any] = {"target_fpr_on_val_photos": target, "threshold": threshold, "val_photos": photos}
        test_labels, test_scores = scores["test"]
        for source in sorted(set(sources["test"])):
            mask = sources["test"] == source
            row[f"test:{source}"] = _summary(classification_report(test_labels[mask], test_scores[mask], threshold))
        for name, (labels, values) in scores.items():
            if name not in ("train", "val", "test"):
                row[name] = _summary(classification_report(labels, values, threshold))
        rows.append(row)
    return rows


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": report["n"],
        "accuracy": report["accuracy"],
        "false_positive_rate": report["false_positive_rate"],
        "ai_f1": report["ai"]["f1"],
    }
