"""The default training sets on a generated miniature of the shared datasets' layout."""

from __future__ import annotations

from tests.training.test_cross_source import _write
from training.cli import default_training_sets


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
