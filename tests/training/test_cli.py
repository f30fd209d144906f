"""The default training sets and the serving-path reports on a generated miniature of the shared datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.detector.conftest import write_tiny
from tests.images import natural_photo
from training.cli import default_training_sets, main


def _write(folder, count: int, *, seed: int, cast: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        array = np.asarray(natural_photo(64, 64, seed + index), dtype=np.int16) + np.array([cast, 0, -cast])
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / f"{index}.png")


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


def test_report_default_scores_every_held_back_set_through_the_serving_path(shared, cache, tmp_path):
    from tests.training.conftest import TARGETS, TINY
    from training.photo_path import train_photo_path

    models = tmp_path / "models"
    write_tiny(tmp_path / "thumb", "test_efficientnet_multiscale", seed=2, input_size=32)
    train_photo_path(
        shared, models, cache_dir=cache, thumbnail=tmp_path / "thumb", thumbnail_max_side=32, version="1",
        targets=TARGETS, branches=TINY,
    )  # fmt: skip
    out = tmp_path / "reports"
    assert main(["report-default", "--models", str(models), "--shared", str(shared), "--cifake-per-class", "20",
                 "--out", str(out)]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"test_cifake", "real_photos_test", "camera_photos_real", "realorai_dev"}
    assert summary["test_cifake"]["n"] == 6 and summary["camera_photos_real"]["n"] == 5
    assert set(summary["realorai_dev"]["robustness"]) == {
        "clean",
        "jpeg_q95",
        "jpeg_q75",
        "jpeg_q50",
        "downscale_0.5",
        "upscale_2",
    }
    assert {"caught", "auto_tagged", "real_tagged_ai", "real_to_review"} <= set(summary["realorai_dev"])
    assert (out / "test_cifake" / "confusion_matrix.png").is_file()
    # CIFAKE's 32-px pictures are decided by the thumbnail expert alone.
    served = json.loads((out / "test_cifake" / "report.json").read_text())
    assert served["clean"]["escalation_rate"] == 0.0


def test_a_head_c_that_is_not_a_positive_number_is_refused_before_any_work(capsys):
    for value in ("0.1,x", "0", "-1,0.5"):
        with pytest.raises(SystemExit) as exit_info:
            main(["cross-source", "--head-c", value, "--shared", "/nonexistent"])
        assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "expected numbers separated by commas, or 'search'" in error and "every C must be above 0" in error


def test_the_cli_offers_every_copy_the_photo_path_can_make():
    from training.cli import COPY_KINDS
    from training.photo_path import AUGMENTATIONS

    assert set(COPY_KINDS) == set(AUGMENTATIONS)
