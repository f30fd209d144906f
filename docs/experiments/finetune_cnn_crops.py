"""Experiment (2026-12-07, not shipped): does fine-tuning the CNN end to end, on this CPU, generalise to sources it
never saw better than the frozen backbone with a linear head (the shipped photo path's CNN branch)?

Both arms in the same source-grouped folds (GroupKFold, 5 folds over the 22 modern sources; `real_photos` train+val
always trains, as in `cross-source`), scored by the same code on the same five native-resolution crops per image:

- **frozen**: the texture CNN's frozen ImageNet backbone and the recipe's head (`photo_path.fit_head`, C=0.05, on the
  clean images and their upload-like copies), which is the shipped CNN branch refitted without the held-out sources;
- **fine-tuned**: that network (linear probe first, then every layer: "LP-FT", which keeps the pretrained features
  better on new domains than training from a random head) trained for a fixed number of epochs on one random 224-px
  crop per image and epoch, each image clean, upload-like or resized-like with equal odds and flipped half the time.
  AdamW (cosine), class-balanced loss, BatchNorm statistics frozen, bfloat16 autocast for the backbone (AVX-512 BF16
  on this CPU), the texture statistics and the head in float32.

The first schedule (4 epochs, backbone 3e-5) was fixed before it ran; the second (8 epochs, backbone 1e-4, head 1e-3,
`reports/experiments/finetune_cnn_crops_stronger.json`) was chosen after the first moved nothing. Nothing is read from
a held-out source. Reported per arm: each two-class held-out source's AUROC, the pooled held-out AUROC (every
held-out AI image against every held-out real photo, each scored by the fold that never saw its source), TPR at 1 %
and 5 % FPR on those photos, the same on resized copies (`photo_path.resized_like`), and `realorai_dev` (never trained
on) per fold and for the mean of the five folds' logits.

    .venv/bin/python docs/experiments/finetune_cnn_crops.py --out reports/experiments/finetune_cnn_crops.json
    .venv/bin/python docs/experiments/finetune_cnn_crops.py --epochs 8 --backbone-lr 1e-4 --head-lr 1e-3 \
        --out reports/experiments/finetune_cnn_crops_stronger.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from held_out import HEAD_C_1_1
from PIL import Image
from sklearn.model_selection import GroupKFold
from tqdm import tqdm

import training.photo_path as photo_path
from detector import ImageRejected, decode_image
from detector.views import canonical_scale, decode_side, model_views
from training.datasets import LabelledImage
from training.finetune import normalise_pixels
from training.metrics import auroc

REPO = Path(__file__).resolve().parents[2]
BATCH, WEIGHT_DECAY, FOLDS = 32, 0.01, 5


def logits_of(model: torch.nn.Module, batch: torch.Tensor, card) -> torch.Tensor:
    """Backbone in bfloat16 autocast; texture statistics and head in float32 (their Gram products need the bits)."""
    x = normalise_pixels(batch.permute(0, 3, 1, 2), card)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        final, stages = model.forward_features(x)
    return model.forward_head((final.float(), [stage.float() for stage in stages])).squeeze(1)


def decoded(item: LabelledImage, card) -> Image.Image | None:
    try:
        return decode_image(item.path.read_bytes(), min_side=decode_side(card))
    except ImageRejected:
        return None


@torch.inference_mode()
def image_logits(
    model: torch.nn.Module, card, items: list[LabelledImage], *, copy: str | None, desc: str
) -> np.ndarray:
    """Mean logit over the served views (five native crops) of each image, or of its `copy`; NaN when rejected."""
    model.eval()
    result = np.full(len(items), np.nan)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if pending:
            rows = logits_of(model, torch.from_numpy(np.concatenate([views for _, views in pending])), card)
            bounds = np.cumsum([len(views) for _, views in pending])[:-1]
            for (index, _), part in zip(pending, np.split(rows.numpy(), bounds), strict=True):
                result[index] = part.mean()
            pending.clear()

    for index, item in enumerate(tqdm(items, desc=desc, unit="img", leave=False)):
        image = decoded(item, card)
        if image is None:
            continue
        if copy:
            image = photo_path.AUGMENTATIONS[copy](image, random.Random(f"0:{item.path.name}"))
        pending.append((index, model_views(image, card)))
        if sum(len(views) for _, views in pending) >= 40:
            flush()
    flush()
    return result


def training_crop(image: Image.Image, card, rng: random.Random) -> np.ndarray:
    choice = rng.random()
    if choice < 1 / 3:
        image = photo_path.upload_like(image, rng)
    elif choice < 2 / 3:
        image = photo_path.resized_like(image, rng)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    size = card.input_size
    image = canonical_scale(image, canonical_side=card.canonical_side, min_side=size)
    left, top = rng.randint(0, image.width - size), rng.randint(0, image.height - size)
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


@dataclass(frozen=True)
class Schedule:
    epochs: int = 4
    backbone_lr: float = 3e-5
    head_lr: float = 3e-4


def fine_tune(model: torch.nn.Module, card, items: list[LabelledImage], *, fold: int, plan: Schedule) -> list[float]:
    images = [(item, decoded(item, card)) for item in tqdm(items, desc="decode", unit="img", leave=False)]
    images = [(item, image) for item, image in images if image is not None]
    labels = np.array([item.label for item, _ in images])
    pos_weight = torch.tensor((labels == 0).sum() / max(1, (labels == 1).sum()))
    head = set(map(id, model.get_classifier().parameters()))
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in model.parameters() if id(p) not in head], "lr": plan.backbone_lr},
            {"params": list(model.get_classifier().parameters()), "lr": plan.head_lr},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    steps = plan.epochs * math.ceil(len(images) / BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    model.eval()  # BatchNorm keeps its ImageNet statistics; gradients still reach every weight
    losses = []
    for epoch in range(plan.epochs):
        order = np.random.default_rng(fold * 100 + epoch).permutation(len(images))
        total = 0.0
        for start in tqdm(range(0, len(order), BATCH), desc=f"fold {fold} epoch {epoch}", unit="step", leave=False):
            chosen = order[start : start + BATCH]
            crops = [
                training_crop(images[i][1], card, random.Random(f"{fold}:{epoch}:{images[i][0].path.name}"))
                for i in chosen
            ]
            target = torch.from_numpy(labels[chosen]).float()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits_of(model, torch.from_numpy(np.stack(crops)), card), target, pos_weight=pos_weight
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss) * len(chosen)
        losses.append(total / len(order))
        print(f"fold {fold} epoch {epoch}: training loss {losses[-1]:.4f}", flush=True)
    return losses


def tpr_at(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    threshold = np.quantile(scores[labels == 0], 1 - fpr)
    return float((scores[labels == 1] > threshold).mean())


def arm_summary(held: dict[str, dict[str, np.ndarray]], evaluation: dict[str, list[np.ndarray]], labels) -> dict:
    rows = {}
    for source, data in held.items():
        if len(set(data["labels"].tolist())) == 2:
            rows[source] = auroc(data["labels"], data["clean"])
    pooled = {kind: np.concatenate([data[kind] for data in held.values()]) for kind in ("clean", "resized")}
    pooled_labels = np.concatenate([data["labels"] for data in held.values()])
    keep = ~np.isnan(pooled["clean"])
    threshold = np.quantile(pooled["clean"][keep & (pooled_labels == 0)], 0.99)
    mean_logits = {name: np.mean(parts, axis=0) for name, parts in evaluation.items()}
    scored = ~np.isnan(mean_logits["realorai_dev"])
    realorai = labels["realorai_dev"][scored]
    folds_realorai = [auroc(realorai, logits[scored]) for logits in evaluation["realorai_dev"]]
    summary = {
        "two_class_auroc": rows,
        "mean_two_class_auroc": float(np.mean(list(rows.values()))),
        "worst_two_class_auroc": min(rows.items(), key=lambda kv: kv[1]),
        "pooled_auroc": auroc(pooled_labels[keep], pooled["clean"][keep]),
        "pooled_tpr_at_1pct_fpr": tpr_at(pooled_labels[keep], pooled["clean"][keep], 0.01),
        "pooled_tpr_at_5pct_fpr": tpr_at(pooled_labels[keep], pooled["clean"][keep], 0.05),
        "resized_pooled_auroc": auroc(pooled_labels[keep], pooled["resized"][keep]),
        "resized_tpr_at_5pct_fpr": tpr_at(pooled_labels[keep], pooled["resized"][keep], 0.05),
        "resized_real_over_clean_1pct_threshold": float(
            (pooled["resized"][keep & (pooled_labels == 0)] > threshold).mean()
        ),
        "realorai_dev_auroc_per_fold": folds_realorai,
        "realorai_dev_auroc_fold_mean": float(np.mean(folds_realorai)),
        "realorai_dev_auroc_of_mean_logit": auroc(realorai, mean_logits["realorai_dev"][scored]),
    }
    for name in ("real_photos_test", "camera_photos_real"):
        summary[f"{name}_over_clean_1pct_threshold"] = float(np.nanmean(mean_logits[name] > threshold))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "var" / "cache" / "finetune_experiment")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=Schedule.epochs)
    parser.add_argument("--backbone-lr", type=float, default=Schedule.backbone_lr)
    parser.add_argument("--head-lr", type=float, default=Schedule.head_lr)
    args = parser.parse_args()
    plan = Schedule(args.epochs, args.backbone_lr, args.head_lr)
    torch.manual_seed(0)
    started = time.time()

    items, evaluation_sets = photo_path.photo_sets(args.shared)
    spec = photo_path.BRANCHES["cnn"]
    frozen_module, card = photo_path.load_branch(spec, args.shared)
    features = photo_path.ImageFeatures.concat(
        [
            photo_path.image_features(frozen_module, card, items, cache_dir=args.cache_dir, desc="clean"),
            photo_path.image_features(
                frozen_module, card, items, cache_dir=args.cache_dir, augmented="upload-like", desc="upload-like"
            ),
        ]
    )
    item_sources = np.array([item.source for item in items])
    modern = sorted(set(item_sources) - {"real_photos"})
    eval_labels = {name: np.array([item.label for item in group]) for name, group in evaluation_sets.items()}

    arms = ("frozen", "fine_tuned")
    held: dict[str, dict[str, dict[str, np.ndarray]]] = {arm: {} for arm in arms}
    evaluation: dict[str, dict[str, list[np.ndarray]]] = {arm: {n: [] for n in evaluation_sets} for arm in arms}
    history = {}
    splits = GroupKFold(n_splits=FOLDS).split(modern, groups=modern)
    for fold, (_, held_index) in enumerate(splits):
        held_sources = [modern[i] for i in held_index]
        print(f"fold {fold}: holding out {held_sources}", flush=True)
        head = photo_path.fit_head(features.subset(~np.isin(features.sources, held_sources)), c=HEAD_C_1_1)
        model, _ = photo_path.load_branch(spec, args.shared)
        with torch.no_grad():
            model.get_classifier().weight.copy_(torch.from_numpy(head.weight).float()[None])
            model.get_classifier().bias.fill_(head.bias)
        model = model.to(memory_format=torch.channels_last)
        train_items = [item for item in items if item.source not in held_sources]
        held_items = [item for item in items if item.source in held_sources]
        for arm in arms:
            if arm == "fine_tuned":
                history[fold] = fine_tune(model, card, train_items, fold=fold, plan=plan)
            clean = image_logits(model, card, held_items, copy=None, desc=f"{arm} held out")
            resized = image_logits(model, card, held_items, copy="resized", desc=f"{arm} resized")
            for source in held_sources:
                mask = np.array([item.source == source for item in held_items])
                held[arm][source] = {
                    "labels": np.array([item.label for item in held_items])[mask],
                    "clean": clean[mask],
                    "resized": resized[mask],
                }
            for name, group in evaluation_sets.items():
                evaluation[arm][name].append(image_logits(model, card, group, copy=None, desc=f"{arm} {name}"))
        print(f"fold {fold} done at {time.time() - started:.0f} s", flush=True)

    report = {
        "setup": {
            "batch": BATCH,
            **asdict(plan),
            "weight_decay": WEIGHT_DECAY,
            "folds": FOLDS,
            "training_images": len(items),
        },
        "training_loss_per_fold": history,
        "seconds": round(time.time() - started),
    }
    for arm in arms:
        report[arm] = arm_summary(held[arm], evaluation[arm], eval_labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({arm: {k: v for k, v in report[arm].items() if k != "two_class_auroc"} for arm in arms}, indent=2))


if __name__ == "__main__":
    main()
