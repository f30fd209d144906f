"""The default training sets and the cascade's fit and reports on a generated miniature of the shared datasets."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.detector.conftest import write_tiny
from tests.images import natural_photo
from tests.training.test_cross_source import _write
from training.cli import default_training_sets, main


def test_fewer_cifake_training_images_leave_validation_and_test_unchanged(tmp_path):
    datasets = tmp_path / "shared" / "datasets"
    _write(datasets / "cifake_sd14" / "real", 20, seed=0)
    _write(datasets / "cifake_sd14" / "fake", 20, seed=100, cast=50)
    _write(datasets / "real_photos" / "real", 10, seed=200)
    for label in ("real", "fake"):
        folder = datasets / "modern_mix_norm512" / label
        _write(folder, 2, seed=300)
        for path in folder.iterdir():
            path.rename(folder / f"hsai__{label}{path.name}")

    full = default_training_sets(tmp_path / "shared", cifake_per_class=20, seed=0)
    fewer = default_training_sets(tmp_path / "shared", cifake_per_class=20, seed=0, train_cifake_per_class=5)

    assert fewer["val"] == full["val"] and fewer["test"] == full["test"]
    cifake = [item for item in fewer["train"] if item.source == "cifake"]
    assert sorted(item.label for item in cifake) == [0] * 5 + [1] * 5
    assert set(cifake) <= set(full["train"])
    assert [i for i in fewer["train"] if i.source != "cifake"] == [i for i in full["train"] if i.source != "cifake"]


def _images(folder, count: int, *, size: int, seed: int, cast: int = 0, prefix: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        array = np.asarray(natural_photo(size, size, seed + index), dtype=np.int16) + np.array([cast, 0, -cast])
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / f"{prefix}{index}.jpg", quality=90)


def test_fit_cascade_and_report_default_route_thumbnails_away_from_the_screen(tmp_path):
    shared = tmp_path / "shared"
    datasets = shared / "datasets"
    _images(datasets / "cifake_sd14" / "real", 20, size=32, seed=0)
    _images(datasets / "cifake_sd14" / "fake", 20, size=32, seed=100, cast=50)
    _images(datasets / "real_photos" / "real", 20, size=120, seed=200)
    for source, seed in (("hsai", 300), ("gdad", 400), ("byai", 500)):
        _images(datasets / "modern_mix_norm512" / "real", 4, size=128, seed=seed, prefix=f"{source}__r")
        _images(datasets / "modern_mix_norm512" / "fake", 4, size=128, seed=seed + 50, cast=50, prefix=f"{source}__f")
    _images(datasets / "camera_photos_real" / "real", 6, size=160, seed=600)
    _images(datasets / "realorai_dev" / "real", 4, size=128, seed=700)
    _images(datasets / "realorai_dev" / "fake", 4, size=128, seed=750, cast=50)
    models = tmp_path / "models"
    write_tiny(models / "cnn", "test_efficientnet_multiscale", seed=0)
    write_tiny(models / "vit", "test_vit", seed=1, input_size=160)
    write_tiny(models / "thumb", "test_efficientnet_multiscale", seed=2)
    common = ["--models", str(models), "--shared", str(shared), "--cifake-per-class", "20"]

    assert main(["fit-cascade", *common]) == 0
    cascade = json.loads((models / "cascade.json").read_text())
    assert cascade["thumbnail"] == {"model": "thumb", "max_side": 64}
    assert cascade["escalation_band"][1] == 1.0 and cascade["confirm_ai"] is True
    # The band is fitted on what the screen sees: no CIFAKE thumbnail among the validation images it counted.
    assert cascade["metrics"]["val"]["cascade"]["n"] == 3 + 8  # real_photos val + gdad
    assert cascade["metrics"]["test"]["cascade"]["n"] == 3 + 8  # real_photos test + byai

    assert main(["report-default", *common, "--out", str(tmp_path / "reports")]) == 0
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["test_cifake"]["n"] == 6 and summary["test"]["n"] == 6 + 3 + 8
    assert set(summary["test"]["by_source"]) == {"cifake", "real_photos", "modern_mix:byai"}
    assert set(summary["test_cifake"]["robustness"]) == {"clean", "jpeg_q95", "jpeg_q75", "jpeg_q50", "downscale_0.5"}
    assert summary["camera_photos_real"]["n"] == 6
    assert (tmp_path / "reports" / "test_cifake" / "confusion_matrix.png").is_file()
    served = json.loads((tmp_path / "reports" / "test_cifake" / "report.json").read_text())
    assert served["model"].endswith("+tiny-test_efficientnet_multiscale@1")
