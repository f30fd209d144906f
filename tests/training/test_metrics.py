import numpy as np
import pytest

from training.metrics import auroc, classification_report, photo_threshold, threshold_for_fpr


def test_auroc_matches_hand_counts():
    labels = np.array([0, 0, 1, 1])
    assert auroc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auroc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert auroc(np.array([1, 1]), np.array([0.2, 0.3])) is None


def test_threshold_meets_target_fpr():
    real = np.linspace(0, 1, 101)
    threshold = threshold_for_fpr(real, 0.05)
    assert (real >= threshold).mean() <= 0.05
    assert (real >= np.nextafter(threshold, 0) - 0.011).mean() > 0.05


def test_report_counts():
    report = classification_report(np.array([0, 0, 1, 1]), np.array([0.1, 0.9, 0.8, 0.2]), 0.5)
    assert report["confusion_matrix"]["matrix"] == [[1, 1], [1, 1]]
    assert report["accuracy"] == 0.5 and report["false_positive_rate"] == 0.5


def test_photo_threshold_ignores_thumbnail_reals_unless_there_is_nothing_else():
    labels = np.array([0] * 100 + [0] * 100 + [1] * 10)
    scores = np.r_[np.arange(100) / 100, np.full(100, 0.999), np.full(10, 0.9999)]
    sources = ["real_photos"] * 100 + ["cifake"] * 100 + ["cifake"] * 10
    threshold = photo_threshold(labels, scores, sources, 0.05)
    assert (scores[:100] >= threshold).mean() == pytest.approx(0.05), "5 of the 100 photographs above it"
    only_thumbnails = photo_threshold(labels[100:], scores[100:], sources[100:], 0.05)
    assert only_thumbnails > 0.999
