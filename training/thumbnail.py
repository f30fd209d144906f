"""The thumbnail expert: the screen CNN specialised on images whose long side is at most a few dozen pixels.

A 32-px image blown up to 224 px is a smear whose statistics have nothing in common with a photograph's, so one
threshold cannot serve both: the screen's threshold, set for ≤ 1 % false positives on photographs, gives up ~3 points
on CIFAKE, and one set on CIFAR thumbnails calls a quarter of camera photos AI (reports/finetune_tail_cifake_all/).
The cascade therefore routes images no larger than `THUMBNAIL_MAX_SIDE` to this expert
(`detector.cascade.CascadeSpec.thumbnail`): the screen CNN with its last stage fine-tuned further on CIFAKE alone and a
threshold for the best balanced accuracy on validation thumbnails. Photographs never reach it.

Tried and not shipped: ImageNet EfficientNet-Lite0 fine-tuned end to end at 64 px on CIFAKE (12 epochs with upload-like
augmentation, 23 minutes here): CIFAKE test AUROC 0.984, 93.7 % at its best validation threshold, below the 224-px
screen's 0.994 / 96.4 %. ImageNet features need objects at ImageNet scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .datasets import LabelledImage
from .finetune_tail import TailConfig, finetune_tail

# Uploads whose long side is at most this many pixels are decided by the thumbnail expert. It must stay below the
# models' input size: the decoder never draft-decodes a JPEG below that, so a decoded image is this small exactly
# when the upload is.
THUMBNAIL_MAX_SIDE = 64
THUMBNAIL_NAME = "effnet-lite0-ms-thumb"


def train_thumbnail(
    *,
    screen: Path,
    train: list[LabelledImage],
    val: list[LabelledImage],
    test: list[LabelledImage],
    out: Path,
    version: str,
    epochs: int = 5,
    lr: float = 1e-4,
    seed: int = 0,
    split_block: int = 5,
) -> dict[str, Any]:
    """Fine-tune the screen CNN's last stage on thumbnails (`train`), threshold for balanced accuracy on `val`,
    report on `test`, write the checkpoint and its training curves to `out`."""
    config = TailConfig(
        split_block=split_block,
        epochs=epochs,
        lr=lr,
        seed=seed,
        threshold_rule="balanced_accuracy",
        name=THUMBNAIL_NAME,
        patience=2,
    )
    return finetune_tail(
        init_checkpoint=screen,
        train=train,
        val=val,
        test=test,
        extra_eval={},
        out_dir=out,
        version=version,
        config=config,
    )
