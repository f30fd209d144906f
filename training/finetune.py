"""Full fine-tuning of a checkpoint (every layer), with the augmentations that make a detector survive real uploads.

Pixel-space augmentation on every step: the reference detector's flips and small rotations, plus what platforms do to
images on the way to us (random crops, JPEG re-encoding at q50-95, downscaling, blur). Class-weighted loss for
imbalanced sets, AdamW with a warm-up and cosine decay, early stopping on validation AUROC, mixed precision on CUDA,
and a resumable state written after every epoch (`train_state.pt`: tensors and numbers only, loaded with
`weights_only=True`). Each epoch draws its randomness from `seed + epoch`, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from detector import ImageRejected, decode_image, load_checkpoint, save_checkpoint
from detector.card import ModelCard
from detector.device import choose_placement
from detector.preprocess import enhance, resize_center_crop

from .datasets import LabelledImage, fingerprint
from .metrics import auroc, classification_report, report_by_source, threshold_for_fpr

STATE_FILENAME = "train_state.pt"
HISTORY_FILENAME = "history.json"
CURVES_FILENAME = "training_curves.png"


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4  # the backbone's; the classifier head learns 10x faster
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    patience: int = 3
    target_fpr: float = 0.05
    augment: bool = True
    num_workers: int = 2
    seed: int = 0
    version: str = "0.0.0"
    name: str = ""  # default: the initial checkpoint's name + "-ft"


def augment(image: Image.Image, rng: random.Random) -> Image.Image:
    """One random re-rendering of an upload: crop, flip, small rotation, downscale, blur, JPEG re-encode."""
    width, height = image.size
    scale = rng.uniform(0.6, 1.0)
    crop_w, crop_h = max(8, round(width * math.sqrt(scale))), max(8, round(height * math.sqrt(scale)))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    image = image.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        image = image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR)
    if rng.random() < 0.3:
        factor = rng.uniform(0.4, 0.9)
        small = (max(8, round(image.width * factor)), max(8, round(image.height * factor)))
        image = image.resize(small, Image.Resampling.BILINEAR)
    if rng.random() < 0.2:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(50, 95))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


class LabelledImages(Dataset):
    """Decoded like serving decodes (`decode_image` → resize + centre crop → the card's enhancements), augmented
    before the resize when `augment` is set. Unreadable files become a black image the loss ignores (weight 0)."""

    def __init__(self, items: list[LabelledImage], card: ModelCard, *, augment: bool, seed: int) -> None:
        self.items, self.card, self.augment, self.seed = items, card, augment, seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, float, float]:
        item = self.items[index]
        size = self.card.input_size
        try:
            image = decode_image(item.path.read_bytes(), min_side=size)
        except ImageRejected:
            return torch.zeros((3, size, size), dtype=torch.uint8), float(item.label), 0.0
        if self.augment:
            image = augment(image, random.Random(self.seed * 1_000_003 + index))
        array = enhance(
            resize_center_crop(image, size), equalize_histogram=self.card.equalize_histogram, denoise=self.card.denoise
        )
        return torch.from_numpy(np.array(array)).permute(2, 0, 1), float(item.label), 1.0


def normalise_pixels(batch: torch.Tensor, card: ModelCard, device: torch.device | None = None) -> torch.Tensor:
    """(N, 3, H, W) 0-255 pixels to the card's normalised float input, channels-last as the models run fastest."""
    mean = torch.tensor(card.mean, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(card.std, device=device).view(1, 3, 1, 1) * 255.0
    return ((batch.to(device).float() - mean) / std).contiguous(memory_format=torch.channels_last)


def _loader(dataset: Dataset, config: FinetuneConfig, *, shuffle: bool, epoch: int) -> DataLoader:
    generator = torch.Generator().manual_seed(config.seed * 7919 + epoch)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=config.num_workers,
        persistent_workers=False,
    )


@torch.inference_mode()
def _scores(model: nn.Module, dataset: LabelledImages, config: FinetuneConfig, device: torch.device) -> np.ndarray:
    model.eval()
    scores = []
    for images, _, _ in _loader(dataset, config, shuffle=False, epoch=0):
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(normalise_pixels(images, dataset.card, device))
        scores.append(torch.sigmoid(logits.float().squeeze(1)).cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0)


def _parameter_groups(model: nn.Module, config: FinetuneConfig) -> list[dict[str, Any]]:
    head = {id(p) for p in model.get_classifier().parameters()} if hasattr(model, "get_classifier") else set()
    backbone = [p for p in model.parameters() if id(p) not in head]
    return [
        {"params": backbone, "lr": config.lr},
        {"params": [p for p in model.parameters() if id(p) in head], "lr": config.lr * 10},
    ]


def finetune(
    init: Path,
    train: list[LabelledImage],
    val: list[LabelledImage],
    out: Path,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    device: str = "auto",
    resume: bool = True,
    epochs_now: int | None = None,
) -> dict[str, Any] | None:
    """Fine-tune `init` on `train`, keep the epoch with the best validation AUROC, write it to `out` as a checkpoint
    (card with the validation report, threshold for `target_fpr`, config and data fingerprint), plus `history.json`
    and `training_curves.png`. Resumes from `out/train_state.pt` when present and `resume` is set. With `epochs_now`,
    stops after that many epochs of this call and returns None (time-boxed runs: call again to go on)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    placement = choose_placement(device)
    torch.manual_seed(config.seed)
    model, card = load_checkpoint(init)
    model = model.to(placement.device).to(memory_format=torch.channels_last)
    train_set = LabelledImages(train, card, augment=config.augment, seed=config.seed)
    val_set = LabelledImages(val, card, augment=False, seed=config.seed)

    labels = np.array([item.label for item in train])
    positives = max(1, int(labels.sum()))
    # Weight the rarer class up to parity, as the reference did for its 6:1 real:fake data.
    pos_weight = torch.tensor((len(labels) - positives) / positives, device=placement.device)
    optimizer = torch.optim.AdamW(_parameter_groups(model, config), weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total_steps = max(1, steps_per_epoch * config.epochs)
    warmup = max(1, int(total_steps * config.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps))),
    )
    scaler = torch.amp.GradScaler(placement.device.type, enabled=placement.device.type == "cuda")

    history: list[dict[str, Any]] = []
    best = {"auroc": -1.0, "epoch": -1}
    start_epoch = 0
    state_path = out / STATE_FILENAME
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=True, map_location=placement.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = json.loads(state["history"]), json.loads(state["best"]), state["epoch"] + 1
    best_weights_path = out / "best_weights.pt"

    for epoch in range(start_epoch, config.epochs):
        if epoch - best["epoch"] > config.patience and best["epoch"] >= 0:
            break  # early stopping: no better validation AUROC for `patience` epochs
        if epochs_now is not None and epoch - start_epoch >= epochs_now:
            return None
        started = time.perf_counter()
        torch.manual_seed(config.seed + epoch)
        train_set.seed = config.seed + epoch
        model.train()
        losses = []
        loader = _loader(train_set, config, shuffle=True, epoch=epoch)
        for images, targets, weights in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch"):
            targets, weights = targets.float().to(placement.device), weights.float().to(placement.device)
            with torch.autocast(placement.device.type, enabled=placement.device.type == "cuda"):
                logits = model(normalise_pixels(images, card, placement.device)).float().squeeze(1)
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, targets, pos_weight=pos_weight, reduction="none"
            )
            loss = (loss * weights).sum() / weights.sum().clamp(min=1.0)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(loss.item())
        val_scores = _scores(model, val_set, config, placement.device)
        val_labels = np.array([item.label for item in val])
        val_auroc = auroc(val_labels, val_scores)
        val_loss = float(
            nn.functional.binary_cross_entropy(
                torch.from_numpy(val_scores).clamp(1e-6, 1 - 1e-6), torch.from_numpy(val_labels).float()
            )
        )
        row = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else None,
            "val_loss": val_loss,
            "val_auroc": val_auroc,
            "val_accuracy_at_0.5": float(np.mean((val_scores >= 0.5) == val_labels)),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        history.append(row)
        if (val_auroc or 0.0) > best["auroc"]:
            best = {"auroc": val_auroc or 0.0, "epoch": epoch}
            torch.save(model.state_dict(), best_weights_path)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "history": json.dumps(history),
                "best": json.dumps(best),
            },
            state_path,
        )

    model.load_state_dict(torch.load(best_weights_path, weights_only=True, map_location=placement.device))
    val_scores = _scores(model, val_set, config, placement.device)
    val_labels = np.array([item.label for item in val])
    real_scores = val_scores[val_labels == 0]
    threshold = threshold_for_fpr(real_scores, config.target_fpr) if len(real_scores) else 0.5
    report = classification_report(val_labels, val_scores, threshold)
    report["by_source"] = report_by_source(val_labels, val_scores, threshold, [item.source for item in val])
    resolved = replace(config, name=config.name or f"{card.name}-ft")
    new_card = replace(
        card,
        name=resolved.name,
        version=config.version,
        threshold=float(threshold),
        metrics={"val": report},
        training={
            "method": "full fine-tune",
            "init": f"{card.name}@{card.version}",
            "config": asdict(resolved),
            "best_epoch": best["epoch"] + 1,
            "epochs_run": len(history),
            "train_fingerprint": fingerprint(train),
            "val_fingerprint": fingerprint(val),
            "train_images": len(train),
            "val_images": len(val),
        },
    )
    save_checkpoint(model.cpu().float().eval(), new_card, out)
    (out / HISTORY_FILENAME).write_text(json.dumps(history, indent=2))
    plot_training_curves(history, out / CURVES_FILENAME)
    return {"card": new_card, "history": history, "best_epoch": best["epoch"] + 1}


def plot_training_curves(history: list[dict[str, Any]], path: Path, *, train_label: str = "train (augmented)") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, auroc_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [row["train_loss"] for row in history], marker="o", label=train_label)
    loss_axis.plot(epochs, [row["val_loss"] for row in history], marker="o", label="validation")
    loss_axis.set(xlabel="epoch", ylabel="binary cross-entropy", title="Loss")
    loss_axis.legend()
    auroc_axis.plot(epochs, [row["val_auroc"] for row in history], marker="o", label="AUROC")
    auroc_axis.plot(epochs, [row["val_accuracy_at_0.5"] for row in history], marker="o", label="accuracy at 0.5")
    auroc_axis.set(xlabel="epoch", title="Validation", ylim=(0, 1.02))
    auroc_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
