"""Fitting the escalation band: it must not buy accuracy on thumbnails with false positives on photographs."""

from __future__ import annotations

import numpy as np

from training.cascade import fit_escalation_band


def _scores() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    # 50 CIFAKE reals the CNN calls AI (0.55) and the ViT clears; 10 photographs the CNN clears (0.45) and the ViT
    # calls AI; 50 CIFAKE fakes the CNN misses (0.45, beside the photographs) and the ViT catches.
    labels = np.r_[np.zeros(60, dtype=int), np.ones(50, dtype=int)]
    cnn = np.r_[np.full(50, 0.55), np.full(10, 0.45), np.full(50, 0.45)]
    vit = np.r_[np.full(50, 0.1), np.full(10, 0.9), np.full(50, 0.9)]
    return {"val": (labels, cnn, vit), "test": (labels, cnn, vit)}


SOURCES = ["cifake"] * 50 + ["real_photos"] * 10 + ["cifake"] * 50


def test_escalation_that_raises_false_positives_on_photographs_is_refused():
    blind = fit_escalation_band(_scores(), cnn_threshold=0.5, vit_threshold=0.5, max_escalation_rate=1.0)
    lo, hi = blind["escalation_band"]
    assert lo <= 0.45 and hi >= 0.55, "counting every real image alike, escalating both groups looks like a win"

    guarded = fit_escalation_band(
        _scores(),
        cnn_threshold=0.5,
        vit_threshold=0.5,
        max_escalation_rate=1.0,
        sources={"val": SOURCES, "test": SOURCES},
    )
    lo, hi = guarded["escalation_band"]
    assert not (lo <= 0.45 <= hi), "the photographs the CNN clears must not be sent to a ViT that calls them AI"
    by_source = guarded["metrics"]["test"]["cascade"]["by_source"]
    assert by_source["real_photos"]["false_positive_rate"] == 0.0


def test_confirm_ai_keeps_the_band_open_to_the_top_so_the_cnn_never_calls_ai_alone():
    confirmed = fit_escalation_band(
        _scores(), cnn_threshold=0.5, vit_threshold=0.5, max_escalation_rate=1.0, confirm_ai=True
    )
    lo, hi = confirmed["escalation_band"]
    assert hi == 1.0 and lo <= 0.5 and confirmed["confirm_ai"] is True
    # The 50 CIFAKE reals the CNN calls AI (0.55) are escalated and cleared by the ViT.
    assert confirmed["metrics"]["val"]["cascade"]["false_positive_rate"] < 0.2
