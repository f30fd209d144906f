"""Fine-tune the last stages of the multi-scale CNN on a CPU by caching the activations that feed them.

The early stages stay frozen, so their outputs (and their pooled statistics) are computed once per image; only the
last blocks, the head convolution and the classifier train, on those cached activations. An epoch then costs a small
fraction of a full forward/backward pass. (No pixel-space augmentation is possible on cached activations; early
stopping on validation guards against overfitting.)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from detector import ImageRejected, load_checkpoint, load_model_input, save_checkpoint
from detector.card import ModelCard
from detector.registry import MultiScaleClassifier

from .datasets import LabelledImage, fingerprint
from .finetune import CURVES_FILENAME, normalise_pixels, plot_training_curves
from .metrics import balanced_threshold, classification_report, photo_threshold, report_by_source


@dataclass(frozen=True)
class TailConfig:
    split_block: int = 5  # blocks[split_block:] train; blocks before it are frozen
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    patience: int = 3
    target_fpr: float = 0.01
    # "photo_fpr": `target_fpr` on validation photographs; "balanced_accuracy": the best balanced accuracy on
    # validation (the thumbnail expert, which sees no photographs).
    threshold_rule: str = "photo_fpr"
    seed: int = 0
    name: str = ""  # default: the initial checkpoint's name with "-probe" turned into "-tail"


class _Tail(nn.Module):
    """The trainable part: cached block input → remaining blocks → head; pooled stats of frozen stages come in."""

    def __init__(self, model: MultiScaleClassifier, split_block: int) -> None:
        super().__init__()
        backbone = model.backbone
        self.blocks = nn.Sequential(*backbone.blocks[split_block:])
        self.conv_head, self.bn2 = backbone.conv_head, backbone.bn2
        self.global_pool = backbone.global_pool
        self.classifier = model.classifier

    def forward(self, cached: torch.Tensor, frozen_pooled: torch.Tensor) -> torch.Tensor:
        last_stage = self.blocks(cached)
        flat = last_stage.flatten(2)
        final = self.global_pool(self.bn2(self.conv_head(last_stage))).flatten(1)
        # Same order as MultiScaleClassifier.forward_head: final, then (mean, std) per stage, shallow to deep.
        joined = torch.cat([final, frozen_pooled, flat.mean(-1), flat.std(-1)], dim=1)
        return self.classifier(joined).squeeze(1)


@torch.inference_mode()
def cache_activations(
    model: MultiScaleClassifier, items: list[LabelledImage], card: ModelCard, split_block: int, desc: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input to blocks[split_block] as fp16, pooled stats of the frozen stages, labels)."""
    backbone = model.backbone
    stage_ends = {int(info["module"].split(".")[1]) for info in backbone.feature_info}
    cached, pooled, labels = [], [], []
    for start in tqdm(range(0, len(items), 32), desc=desc, unit="batch"):
        arrays, batch_labels = [], []
        for item in items[start : start + 32]:
            try:
                arrays.append(load_model_input(item.path.read_bytes(), card.input_size))
                batch_labels.append(item.label)
            except ImageRejected:
                continue
        if not arrays:
            continue
        x = normalise_pixels(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2), card)
        x = backbone.bn1(backbone.conv_stem(x))
        stats = []
        for index, block in enumerate(backbone.blocks[:split_block]):
            x = block(x)
            if index in stage_ends:
                flat = x.float().flatten(2)
                stats += [flat.mean(-1), flat.std(-1)]
        cached.append(x.half().contiguous())
        pooled.append(torch.cat(stats, dim=1))
        labels.extend(batch_labels)
    return torch.cat(cached), torch.cat(pooled), torch.tensor(labels, dtype=torch.float32)


def _scores(tail: _Tail, cached: torch.Tensor, pooled: torch.Tensor) -> np.ndarray:
    tail.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(cached), 128):
            x = cached[start : start + 128].float().contiguous(memory_format=torch.channels_last)
            out.append(torch.sigmoid(tail(x, pooled[start : start + 128])).numpy())
    return np.concatenate(out)


def finetune_tail(
    *,
    init_checkpoint: Path,
    train: list[LabelledImage],
    val: list[LabelledImage],
    test: list[LabelledImage],
    extra_eval: dict[str, list[LabelledImage]],
    out_dir: Path,
    version: str,
    config: TailConfig,
) -> dict[str, Any]:
    if config.threshold_rule not in ("photo_fpr", "balanced_accuracy"):
        raise ValueError(f"unknown threshold rule {config.threshold_rule!r}")
    torch.manual_seed(config.seed)
    started = time.time()
    model, card = load_checkpoint(init_checkpoint)
    if not isinstance(model, MultiScaleClassifier):
        raise ValueError("tail fine-tuning needs a multi-scale CNN checkpoint")
    stage_ends = sorted(int(info["module"].split(".")[1]) for info in model.backbone.feature_info)
    if [end for end in stage_ends if end >= config.split_block] != [len(model.backbone.blocks) - 1]:
        raise ValueError(f"blocks[{config.split_block}:] must hold exactly the last stage (stage ends: {stage_ends})")
    model = model.to(memory_format=torch.channels_last)
    sets = {"train": train, "val": val, "test": test, **extra_eval}
    cache = {name: cache_activations(model, items, card, config.split_block, name) for name, items in sets.items()}
    tail = _Tail(model, config.split_block)
    x_train, p_train, y_train = cache["train"]
    positives = float(y_train.sum())
    pos_weight = torch.tensor((len(y_train) - positives) / max(positives, 1.0))  # class-weighted loss
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimiser = torch.optim.AdamW(tail.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * ((len(y_train) + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    stale = 0
    for epoch in range(config.epochs):
        tail.train()
        order = torch.randperm(len(y_train))
        total = 0.0
        for start in tqdm(range(0, len(order), config.batch_size), desc=f"epoch {epoch + 1}", unit="batch"):
            index = order[start : start + config.batch_size]
            x = x_train[index].float().contiguous(memory_format=torch.channels_last)
            loss = loss_fn(tail(x, p_train[index]), y_train[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        val_probabilities = _scores(tail, *cache["val"][:2])
        val_report = classification_report(cache["val"][2].numpy(), val_probabilities, 0.5)
        val_loss = nn.functional.binary_cross_entropy(
            torch.from_numpy(val_probabilities).double().clamp(1e-7, 1 - 1e-7), cache["val"][2].double()
        )
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / len(order),
                "val_loss": float(val_loss),
                "val_auroc": val_report["auroc"],
                "val_accuracy_at_0.5": val_report["accuracy"],
            }
        )
        print(history[-1])
        if best is None or val_report["auroc"] > best[0]:
            best, stale = (val_report["auroc"], copy.deepcopy(tail.state_dict())), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    assert best is not None
    tail.load_state_dict(best[1])
    val_scores = _scores(tail, *cache["val"][:2])
    val_labels = cache["val"][2].numpy()
    if config.threshold_rule == "balanced_accuracy":
        threshold = balanced_threshold(val_labels, val_scores)
    else:
        threshold = photo_threshold(val_labels, val_scores, [item.source for item in val], config.target_fpr)
    metrics = {}
    for name, items in sets.items():
        if name == "train":
            continue
        labels = cache[name][2].numpy()
        scores = _scores(tail, *cache[name][:2])
        report = report_by_source(labels, scores, threshold, [item.source for item in items])
        metrics[name] = report
    new_card = ModelCard(
        name=config.name or card.name.replace("-probe", "-tail"),
        version=version,
        architecture=card.architecture,
        input_size=card.input_size,
        mean=card.mean,
        std=card.std,
        threshold=threshold,
        metrics=metrics,
        training={
            "method": f"fine-tuned blocks[{config.split_block}:], head conv and classifier on cached activations "
            "of the frozen early stages (AdamW, cosine schedule, class-weighted BCE, early stopping on val AUROC)",
            "init": card.model_version,
            "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
            "history": history,
            "counts": {name: len(items) for name, items in sets.items()},
            "fingerprints": {
                name: fingerprint(items) for name, items in (("train", train), ("val", val), ("test", test))
            },
            "seconds": round(time.time() - started, 1),
        },
    )
    save_checkpoint(model.to(memory_format=torch.contiguous_format), new_card, out_dir)
    plot_training_curves(history, Path(out_dir) / CURVES_FILENAME, train_label="train (cached, not augmented)")
    return {
        "card": new_card,
        "scores": {name: (cache[name][2].numpy(), _scores(tail, *cache[name][:2])) for name in sets},
    }
