"""Experiment (2026-12-07, not shipped): what the five crops' separate verdicts say that their mean does not.

The texture CNN scores up to five native-resolution crops of an image and the image's logit is their mean. A
generator's trace should be everywhere in its image, while a photograph that looks AI-like may do so only in some
crops (a smooth sky, a blurred background). If so, (a) another way of pooling the crops (the median, the lowest,
the highest) would separate better, and (b) how far the crops disagree would say when to send an image to review.
Measured with the shipped CNN branch's head (`photo_path.fit_head`, C=0.05, fitted on the crop-averaged features of
clean images and their upload-like copies, as the recipe fits it), applied to each crop of the held-out images.
Nothing fixed after seeing a result: the pools and the spread (standard deviation of the crop logits) were chosen
beforehand.

Leave one source out over the 22 modern sources; `realorai_dev` by the head fitted on everything. Reported: each
two-class source's AUROC per pooling, mean and worst, pooled AUROC; and the spread: its AUROC (AI against real)
over every held-out image, and among the held-out images the mean would call real (below the held-out reals' 80th
percentile), how many AI and real images the top tenth of spread would send to review. One run.

    .venv/bin/python docs/experiments/crop_agreement.py --out reports/experiments/crop_agreement.json
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from held_out import HEAD_C_1_1, cnn_experiment, recipe_rows, source_summary
from tqdm import tqdm

import training.photo_path as photo_path
from detector import ImageRejected, decode_image
from detector.onnx_scorer import OnnxScorer, model_key
from detector.views import decode_side, model_views
from training.metrics import auroc

POOLS = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}


def crop_features(module, card, items, cache_dir: Path, desc: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(every crop's head-input features, the image row each crop belongs to, the kept images' paths)."""
    key = hashlib.sha256(
        json.dumps(
            [model_key(module, card), card.max_crops, card.canonical_side] + [str(i.path) for i in items]
        ).encode()
    ).hexdigest()[:20]
    cache = cache_dir / f"crops-{card.name}-{key}.npz"
    if cache.is_file():
        with np.load(cache) as cached:
            return cached["features"], cached["rows"], cached["paths"].tolist()
    scorer = OnnxScorer(module, card, threads=torch.get_num_threads(), cache_dir=cache_dir, output="features")
    features, rows, paths = [], [], []
    for item in tqdm(items, desc=desc, unit="img", leave=False):
        try:
            image = decode_image(item.path.read_bytes(), min_side=decode_side(card))
        except ImageRejected:
            continue
        views = model_views(image, card)
        features.append(scorer.logits(views))
        rows += [len(paths)] * len(views)
        paths.append(str(item.path))
    result = np.concatenate(features).astype(np.float32), np.asarray(rows), paths
    np.savez(cache, features=result[0], rows=result[1], paths=np.asarray(paths))
    return result


def pooled(crop_logits: np.ndarray, rows: np.ndarray, pool) -> np.ndarray:
    return np.asarray([pool(crop_logits[rows == row]) for row in range(rows.max() + 1)])


def main() -> None:
    setup = cnn_experiment(__doc__)
    args, items, evaluation_sets = setup.args, setup.items, setup.evaluation_sets
    module, card = setup.module, setup.card
    clean, pool_rows = recipe_rows(setup)
    crops, crop_rows, crop_paths = crop_features(module, card, items, args.cache_dir, "training crops")
    if crop_paths != clean.paths.tolist():
        raise ValueError("the crops kept different images")

    held_sources = sorted(set(clean.sources) - {"real_photos"})
    by_pool: dict[str, list[np.ndarray]] = {name: [] for name in POOLS}
    spread, labels, sources = [], [], []
    for held in held_sources:
        head = photo_path.fit_head(pool_rows.subset(pool_rows.sources != held), c=HEAD_C_1_1)
        images = np.flatnonzero(clean.sources == held)
        mask = np.isin(crop_rows, images)
        logits = crops[mask].astype(np.float64) @ head.weight + head.bias
        rows = np.searchsorted(images, crop_rows[mask])
        for name, pool in POOLS.items():
            by_pool[name].append(pooled(logits, rows, pool))
        spread.append(pooled(logits, rows, np.std))
        labels.append(clean.labels[images])
        sources += [held] * len(images)
    labels_all, spread_all, sources_all = np.concatenate(labels), np.concatenate(spread), np.asarray(sources)
    report: dict = {"pools": {}}
    for name in POOLS:
        report["pools"][name] = source_summary(labels_all, sources_all, np.concatenate(by_pool[name]))
    mean_scores = np.concatenate(by_pool["mean"])
    called_real = mean_scores < np.quantile(mean_scores[labels_all == 0], 0.8)
    wide = spread_all > np.quantile(spread_all[called_real], 0.9)
    report["spread"] = {
        "auroc_ai_against_real": auroc(labels_all, spread_all),
        "mean_spread_ai": float(spread_all[labels_all == 1].mean()),
        "mean_spread_real": float(spread_all[labels_all == 0].mean()),
        "called_real_by_the_mean": {
            "ai": int((called_real & (labels_all == 1)).sum()),
            "real": int((called_real & (labels_all == 0)).sum()),
        },
        "of_those_top_tenth_of_spread": {
            "ai": int((called_real & wide & (labels_all == 1)).sum()),
            "real": int((called_real & wide & (labels_all == 0)).sum()),
        },
    }
    realorai = evaluation_sets["realorai_dev"]
    r_crops, r_rows, _ = crop_features(module, card, realorai, args.cache_dir, "realorai_dev crops")
    r_labels = photo_path.image_features(module, card, realorai, cache_dir=args.cache_dir, desc="realorai").labels
    full = photo_path.fit_head(pool_rows, c=HEAD_C_1_1)
    r_logits = r_crops.astype(np.float64) @ full.weight + full.bias
    report["realorai_dev_auroc"] = {name: auroc(r_labels, pooled(r_logits, r_rows, p)) for name, p in POOLS.items()}
    report["realorai_dev_spread_auroc"] = auroc(r_labels, pooled(r_logits, r_rows, np.std))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({**{n: {k: v for k, v in r.items() if k != "two_class_auroc"} for n, r in report["pools"].items()},
                      **{k: v for k, v in report.items() if k != "pools"}}))  # fmt: skip


if __name__ == "__main__":
    main()
