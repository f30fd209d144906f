"""Operating points: thresholds come from validation photographs only, and every set is reported at each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.datasets import LabelledImage
from training.operating_points import operating_points


def _items(sources_and_labels: list[tuple[str, int]]) -> list[LabelledImage]:
    return [LabelledImage(Path(f"{i}.jpg"), label, source) for i, (source, label) in enumerate(sources_and_labels)]


def test_thresholds_ignore_cifake_reals_and_report_each_set():
    # Validation: CIFAKE reals score high (they must not set the threshold), photographs score 0.00 … 0.99.
    val_sources = [("cifake", 0)] * 50 + [("real_photos", 0)] * 100 + [("cifake", 1)] * 50
    val_scores = np.r_[np.full(50, 0.999), np.arange(100) / 100, np.full(50, 0.9995)]
    test_sources = [("cifake", 1)] * 10 + [("real_photos", 0)] * 10
    test_scores = np.r_[np.linspace(0.9, 1.0, 10), np.linspace(0.0, 0.99, 10)]
    scores = {
        "val": (np.array([label for _, label in val_sources]), val_scores),
        "test": (np.array([label for _, label in test_sources]), test_scores),
        "camera_photos_real": (np.zeros(4, dtype=int), np.array([0.1, 0.5, 0.96, 0.995])),
    }
    rows = operating_points(scores, {"val": _items(val_sources), "test": _items(test_sources)}, (0.01, 0.05))
    assert [row["val_photos"] for row in rows] == [100, 100]
    # Just above the 2nd- and 6th-highest photograph: 1 and 5 of 100 photographs at or above it.
    assert rows[0]["threshold"] == pytest.approx(0.98, abs=1e-9) and rows[1]["threshold"] == pytest.approx(0.94)
    assert rows[0]["camera_photos_real"]["false_positive_rate"] == 0.25
    assert rows[1]["camera_photos_real"]["false_positive_rate"] == 0.5
    assert rows[1]["test:cifake"]["accuracy"] == pytest.approx(0.6) and rows[1]["test:real_photos"]["n"] == 10


def test_scores_from_another_split_are_refused():
    items = _items([("real_photos", 0)] * 3)
    scores = {"val": (np.zeros(2, dtype=int), np.zeros(2)), "test": (np.zeros(3, dtype=int), np.zeros(3))}
    with pytest.raises(ValueError, match="--cifake-per-class"):
        operating_points(scores, {"val": items, "test": items})
