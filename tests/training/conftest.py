"""A generated miniature of ../shared (tiny backbones, a few sources of each kind) for the training tests."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from detector.registry import build_model
from tests.images import natural_photo
from training.photo_path import BranchSpec, PolicyTargets

TINY = {
    "cnn": BranchSpec(
        name="tiny-crops", architecture="test_efficientnet_texture", weights="tiny/cnn.safetensors",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), views="native_crops", max_crops=3, canonical_side=96,
        input_size=64, c_grid=(0.1, 1.0),
    ),
    "vit": BranchSpec(
        name="tiny-vit", architecture="test_vit_multilayer", weights="tiny/vit.safetensors",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), views="resize", input_size=64, c_grid=(1.0,),
    ),
}  # fmt: skip


def _save(folder, name: str, seed: int, *, fake: bool, size=(96, 80)) -> None:
    """Fakes carry a fine checkerboard (an upsampling trace the crops can see) and a colour cast (for the ViT)."""
    folder.mkdir(parents=True, exist_ok=True)
    array = np.asarray(natural_photo(*size, seed), dtype=np.int16)
    if fake:
        checker = (np.indices(array.shape[:2]).sum(0) % 2 * 40 - 20)[..., None]
        array = array + checker + np.array([30, 0, -30])
    Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(folder / name)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    torch.manual_seed(0)
    weights = root / "weights" / "tiny"
    weights.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in timm.create_model("test_efficientnet").state_dict().items()},
              str(weights / "cnn.safetensors"))  # fmt: skip
    vit = {k: v for k, v in build_model("test_vit_multilayer").state_dict().items() if not k.startswith("head.")}
    save_file(vit, str(weights / "vit.safetensors"))
    datasets = root / "datasets"
    seed = 0
    for tag in ("aaa", "bbb", "ccc"):
        for index in range(6):
            for label in ("real", "fake"):
                seed += 1
                _save(datasets / "modern_mix_norm512" / label, f"{tag}__{index}.png", seed, fake=label == "fake")
    for tag, labels in (("ddd", ("fake",)), ("eee", ("real", "fake")), ("fff", ("real",))):
        for index in range(6):
            for label in labels:
                seed += 1
                _save(datasets / "modern_train_2026" / tag / label, f"{index}.png", seed, fake=label == "fake")
    for label in ("real", "fake"):
        for index in range(20):
            seed += 1
            _save(datasets / "cifake_sd14" / label, f"{index}.png", seed, fake=label == "fake", size=(32, 32))
    for name, labels, count in (("real_photos", ("real",), 14), ("camera_photos_real", ("real",), 5),
                                ("realorai_dev", ("real", "fake"), 5)):  # fmt: skip
        for index in range(count):
            for label in labels:
                seed += 1
                _save(datasets / name / label, f"{index}.png", seed, fake=label == "fake", size=(120, 90))
    return root


TARGETS = PolicyTargets(target_fpr=0.1, miss_rate=0.2, escalation_share=0.3, cnn_alone_fpr=0.05, disagreement=4.0)
