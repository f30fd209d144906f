"""`python -m training train-default` and friends."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .datasets import LabelledImage, folder_images, stratified_split
from .probe import ProbeConfig, train_probe

REPO_ROOT = Path(__file__).resolve().parent.parent
# modern_mix_norm512 is split by source repository so near-duplicate prompts never straddle train and test.
MODERN_MIX_SPLIT = {"aigt": "train", "ytr": "train", "hsai": "train", "memq": "train", "gdad": "val", "byai": "test"}


def default_training_sets(shared: Path, *, cifake_per_class: int, seed: int) -> dict[str, list[LabelledImage]]:
    datasets = shared / "datasets"
    splits: dict[str, list[LabelledImage]] = {"train": [], "val": [], "test": []}
    for items in (
        folder_images(datasets / "cifake_sd14", source="cifake", limit_per_class=cifake_per_class, seed=seed),
        folder_images(datasets / "real_photos", source="real_photos"),
    ):
        for name, part in zip(("train", "val", "test"), stratified_split(items, seed=seed), strict=True):
            splits[name] += part
    for item in folder_images(datasets / "modern_mix_norm512", source="modern_mix"):
        repo = item.path.name.split("__", 1)[0]
        splits[MODERN_MIX_SPLIT[repo]].append(LabelledImage(item.path, item.label, f"modern_mix:{repo}"))
    return splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training")
    commands = parser.add_subparsers(dest="command", required=True)
    default = commands.add_parser("train-default", help="train the shipped default CNN from ../shared")
    default.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    default.add_argument("--out", type=Path, default=REPO_ROOT / "detector" / "models" / "default")
    default.add_argument("--cifake-per-class", type=int, default=2500)
    default.add_argument("--target-fpr", type=float, default=0.05)
    default.add_argument("--version", default="0.1.0")
    default.add_argument("--cache", type=Path, default=REPO_ROOT / "var" / "cache")
    default.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    splits = default_training_sets(args.shared, cifake_per_class=args.cifake_per_class, seed=args.seed)
    extra = {
        "camera_photos_real": folder_images(
            args.shared / "datasets" / "camera_photos_real", source="camera_photos_real"
        ),
        "realorai_dev": folder_images(args.shared / "datasets" / "realorai_dev", source="realorai_dev"),
    }
    config = ProbeConfig(
        backbone_weights=args.shared / "weights" / "efficientnet_lite0" / "tf_efficientnet_lite0.timm.safetensors",
        target_fpr=args.target_fpr,
        seed=args.seed,
    )
    card = train_probe(
        config=config,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        extra_eval=extra,
        card_name="effnet-lite0-probe",
        card_version=args.version,
        out_dir=args.out,
        cache_dir=args.cache,
    )
    summary = {
        name: {k: card["metrics"][name][k] for k in ("n", "accuracy", "auroc", "false_positive_rate")}
        for name in card["metrics"]
    }
    print(json.dumps({"checkpoint": str(args.out), "threshold": card["threshold"], "summary": summary}, indent=2))
    return 0
