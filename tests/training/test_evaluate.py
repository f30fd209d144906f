"""`python -m training evaluate`: the same report for any folder, through the serving path."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.detector.conftest import write_tiny
from tests.images import encode, jpeg_bytes
from training.datasets import folder_images
from training.evaluate import evaluate, write_plots, write_report
from training.metrics import average_precision, expected_calibration_error


def _folder(root, real=6, fake=6):
    for name, count in (("real", real), ("fake", fake)):
        if count:
            (root / name).mkdir(parents=True)
        for index in range(count):
            (root / name / f"{index}.jpg").write_bytes(
                jpeg_bytes(96 + 8 * index, 80, seed=index + (100 if name == "fake" else 0))
            )
    return root


def test_report_has_metrics_robustness_and_plots(tmp_path):
    checkpoint = write_tiny(tmp_path / "ckpt", "test_efficientnet", seed=0)
    (tmp_path / "data").mkdir()
    items = folder_images(_folder(tmp_path / "data"), source="gen")
    report = evaluate(checkpoint, items, device="cpu")
    assert report["n"] == 12 and report["clean"]["rejected"] == 0
    assert set(report["robustness"]) == {"clean", "jpeg_q95", "jpeg_q75", "jpeg_q50", "downscale_0.5", "upscale_2"}
    assert 0 <= report["clean"]["average_precision"] <= 1 and report["clean"]["auroc"] is not None
    plots = write_plots(report, tmp_path / "out")
    assert sorted(p.name for p in plots) == ["confusion_matrix.png", "reliability.png", "roc.png"]
    assert all(Image.open(p).size[0] > 100 for p in plots)
    saved = json.loads(write_report(report, tmp_path / "out").read_text())
    assert "_scores" not in saved and saved["fingerprint"] == report["fingerprint"]


def test_cli_reports_false_positives_on_a_real_only_folder(tmp_path):
    checkpoint = write_tiny(tmp_path / "ckpt", "test_efficientnet", seed=0)
    data = _folder(tmp_path / "photos", fake=0)
    (data / "real" / "broken.jpg").write_bytes(b"not an image")
    result = subprocess.run(
        [sys.executable, "-m", "training", "evaluate", "--data", str(data), "--checkpoint", str(checkpoint), "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["clean"]["auroc"] is None and report["clean"]["rejected"] == 1
    assert 0.0 <= report["clean"]["false_positive_rate"] <= 1.0


def test_average_precision_and_calibration_error_by_hand():
    labels = np.array([1, 0, 1, 0])
    assert average_precision(labels, np.array([0.9, 0.8, 0.7, 0.1])) == (1 / 1 + 2 / 3) / 2
    # Tied scores count together whatever their order (saturated and fp16 scores tie often): 1/3 * 1/2 + 2/4 * 1/2.
    labels, scores = np.array([1, 0, 0, 1, 0]), np.array([0.9, 0.9, 0.9, 0.2, 0.1])
    for order in (slice(None), slice(None, None, -1)):
        assert average_precision(labels[order], scores[order]) == pytest.approx(5 / 12)
    assert expected_calibration_error(np.array([1, 1, 0, 0]), np.array([0.95, 0.95, 0.05, 0.05])) == pytest.approx(0.05)


def test_png_with_alpha_survives_perturbation():
    from training.evaluate import perturb

    png = encode(Image.fromarray(np.zeros((40, 60, 4), np.uint8)), "PNG")
    for kind in ("jpeg_q50", "downscale_0.5", "upscale_2"):
        assert Image.open(io.BytesIO(perturb(png, kind))).format == "JPEG"
    assert Image.open(io.BytesIO(perturb(png, "upscale_2"))).size == (120, 80)
