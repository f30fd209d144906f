"""Labelled image lists, deterministic splits and the fingerprint that records exactly which images a run used."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
LABELS = {"real": 0, "fake": 1}


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int  # 1 = AI-generated
    source: str  # dataset (and source repo, where known), for grouped splits and per-source reports


def folder_images(root: Path, *, source: str, limit_per_class: int | None = None, seed: int = 0) -> list[LabelledImage]:
    """Images under `root/real` and `root/fake` (either may be absent), optionally a seeded sample per class."""
    items: list[LabelledImage] = []
    for class_name, label in LABELS.items():
        folder = Path(root) / class_name
        if not folder.is_dir():
            continue
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if limit_per_class is not None and len(paths) > limit_per_class:
            paths = sorted(random.Random(seed).sample(paths, limit_per_class))
        items.extend(LabelledImage(p, label, source) for p in paths)
    if not items:
        raise FileNotFoundError(f"{root} holds no images under real/ or fake/")
    return items


def stratified_split(
    items: list[LabelledImage], *, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[list[LabelledImage], list[LabelledImage], list[LabelledImage]]:
    """Split each class separately so train/val/test keep the class ratio."""
    train: list[LabelledImage] = []
    val: list[LabelledImage] = []
    test: list[LabelledImage] = []
    for label in sorted({item.label for item in items}):
        group = [item for item in items if item.label == label]
        random.Random(seed + label).shuffle(group)
        n_train = round(len(group) * fractions[0])
        n_val = round(len(group) * fractions[1])
        train += group[:n_train]
        val += group[n_train : n_train + n_val]
        test += group[n_train + n_val :]
    return train, val, test


def fingerprint(items: Iterable[LabelledImage]) -> str:
    """sha256 over every image's label and content hash, independent of where the dataset lives on disk."""
    digest = hashlib.sha256()
    for line in sorted(f"{item.label}:{hashlib.sha256(item.path.read_bytes()).hexdigest()}" for item in items):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()
