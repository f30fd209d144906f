"""Experiment (2026-12-07, not shipped): heads that weigh every source alike.

The shipped heads balance the two classes only, so the largest sources (170 old ImageNet photos, 121 `ytr` images)
pull hardest on what "real" and "AI" look like. Here each (source, class) group of training images weighs the same
within its class (each class still sums to half the weight), which asks the heads for what holds across sources. The
rest of `python -m training cross-source` is unchanged: same folds, operating points and cached features.

    .venv/bin/python docs/experiments/source_balanced_heads.py --out reports/experiments/source_balanced_heads.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import training.photo_path as photo_path

REPO = Path(__file__).resolve().parents[2]


def source_balanced_head(
    data: photo_path.ImageFeatures, *, c: float, nuisance: object = None, invariance: object = None
) -> photo_path.LinearHead:
    """`photo_path.fit_head` (no invariance) with every (source, class) group weighing the same within its class."""
    from sklearn.linear_model import LogisticRegression

    mean = data.features.mean(0, dtype=np.float64)
    scale = np.maximum(data.features.std(0, dtype=np.float64), 1e-3)
    groups = np.char.add(data.sources.astype(str), data.labels.astype(str))
    _, group_of, group_size = np.unique(groups, return_inverse=True, return_counts=True)
    weight = 1.0 / group_size[group_of]
    for label in (0, 1):
        weight[data.labels == label] *= len(data) / 2 / weight[data.labels == label].sum()
    model = LogisticRegression(C=c, max_iter=3000).fit((data.features - mean) / scale, data.labels, weight)
    coefficients = model.coef_[0] / scale
    return photo_path.LinearHead(coefficients, float(model.intercept_[0] - (coefficients * mean).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "cache" / "photo")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    photo_path.fit_head = source_balanced_head  # every head the recipe fits, in every fold
    report = photo_path.cross_source_report(args.shared, cache_dir=args.cache)
    kept = ("summary", "resized_summary", "clean_real_rates", "sources")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({key: report[key] for key in kept}, indent=1) + "\n")
    print(json.dumps({key: report[key] for key in kept[:3]}, indent=1))


if __name__ == "__main__":
    main()
