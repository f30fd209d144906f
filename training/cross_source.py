"""Leave-one-source-out: how well the default recipe catches a generator source it never saw.

For each source repository in modern_mix_norm512, the frozen-feature probe (the shipped models' recipe) is fitted on
CIFAKE + real photos + every *other* modern_mix source, its L2 and threshold chosen on CIFAKE/real-photo validation,
and it is scored on the held-out source alone. Features are computed once per model and reused for every fold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .datasets import LabelledImage, folder_images, stratified_split
from .metrics import auroc, classification_report, threshold_for_fpr
from .probe import ProbeConfig, build_backbone, extract_features, fit_logistic_head, probe_scores


def cross_source_report(
    shared: Path,
    checkpoints: dict[str, Path],
    *,
    cifake_per_class: int = 1000,
    target_fpr: float = 0.05,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    datasets = shared / "datasets"
    base_train: list[LabelledImage] = []
    base_val: list[LabelledImage] = []
    for items in (
        folder_images(datasets / "cifake_sd14", source="cifake", limit_per_class=cifake_per_class, seed=seed),
        folder_images(datasets / "real_photos", source="real_photos"),
    ):
        train, val, _ = stratified_split(items, seed=seed)
        base_train += train
        base_val += val
    modern = [
        LabelledImage(item.path, item.label, item.path.name.split("__", 1)[0])
        for item in folder_images(datasets / "modern_mix_norm512", source="modern_mix")
    ]
    sources = sorted({item.source for item in modern})
    report: dict[str, Any] = {"sources": {}, "cifake_per_class": cifake_per_class, "target_fpr": target_fpr}
    for model_name, checkpoint in checkpoints.items():
        from detector import load_checkpoint

        _, card = load_checkpoint(checkpoint)
        config = ProbeConfig(
            architecture=card.architecture,
            init_checkpoint=checkpoint,
            input_size=card.input_size,
            mean=card.mean,
            std=card.std,
            seed=seed,
        )
        backbone = build_backbone(config)
        train_x, train_y = extract_features(
            backbone, base_train, config, cache_dir=cache_dir, desc=f"{model_name} base"
        )
        val_x, val_y = extract_features(backbone, base_val, config, cache_dir=cache_dir, desc=f"{model_name} val")
        by_source = {
            source: extract_features(
                backbone, [i for i in modern if i.source == source], config, cache_dir=cache_dir, desc=source
            )
            for source in sources
        }
        for held_out in sources:
            x = np.concatenate([train_x, *(by_source[s][0] for s in sources if s != held_out)])
            y = np.concatenate([train_y, *(by_source[s][1] for s in sources if s != held_out)])
            best = None
            for l2 in config.l2_choices:
                weight, bias = fit_logistic_head(x, y, l2=l2, seed=seed)
                score = auroc(val_y, probe_scores(val_x, weight, bias)) or 0.0
                if best is None or score > best[0]:
                    best = (score, weight, bias)
            assert best is not None
            _, weight, bias = best
            threshold = threshold_for_fpr(probe_scores(val_x[val_y == 0], weight, bias), target_fpr)
            test_x, test_y = by_source[held_out]
            scores = probe_scores(test_x, weight, bias)
            row = classification_report(test_y, scores, threshold)
            report["sources"].setdefault(held_out, {"n": len(test_y), "fake": int(test_y.sum())})
            report["sources"][held_out][model_name] = {
                "auroc": row["auroc"],
                "accuracy": row["accuracy"],
                "false_positive_rate": row["false_positive_rate"],
            }
    return report
