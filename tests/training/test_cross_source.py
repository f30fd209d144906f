"""Leave-one-source-out runs on a generated miniature of the shared datasets' layout."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.detector.conftest import write_tiny
from tests.images import natural_photo
from training.cross_source import cross_source_report


def _write(folder, count: int, *, seed: int, cast: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        array = np.asarray(natural_photo(64, 64, seed + index), dtype=np.int16) + np.array([cast, 0, -cast])
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / f"{index}.png")


def test_every_modern_mix_source_is_held_out_once(tmp_path):
    datasets = tmp_path / "shared" / "datasets"
    _write(datasets / "cifake_sd14" / "real", 10, seed=0)
    _write(datasets / "cifake_sd14" / "fake", 10, seed=100, cast=50)
    _write(datasets / "real_photos" / "real", 10, seed=200)
    for offset, source in enumerate(("aaa", "bbb", "ccc")):
        for label, cast in (("real", 0), ("fake", 50)):
            folder = datasets / "modern_mix_norm512" / label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(4):
                array = np.asarray(natural_photo(64, 64, 300 + 10 * offset + index), dtype=np.int16)
                array = array + np.array([cast, 0, -cast])
                Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / f"{source}__{index}.png")
    checkpoint = write_tiny(tmp_path / "cnn", "test_efficientnet", seed=0, input_size=64)

    report = cross_source_report(tmp_path / "shared", {"cnn": checkpoint}, cifake_per_class=10)

    assert sorted(report["sources"]) == ["aaa", "bbb", "ccc"]
    for row in report["sources"].values():
        assert row["n"] == 8 and row["fake"] == 4
        assert 0.0 <= row["cnn"]["auroc"] <= 1.0
