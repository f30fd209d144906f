import numpy as np
import pytest

from training.metrics import auroc, classification_report, threshold_for_fpr


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
