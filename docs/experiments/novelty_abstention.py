"""Experiment (2026-12-07, not shipped): does a feature-space novelty check catch unseen generators?

Issue #15 asked for abstention when an image lies outside what the models were trained on. This measures the simplest
such check on the shipped recipe, leave-one-source-out like `python -m training cross-source`: an image the photo
path would call `likely-real` goes to review instead when its distance to the training images is unusual. Novelty is
the distance to the k-th nearest training image in the CNN head's input features (standardised, projected on the
top principal directions and whitened), to the training real photos only ("real") or to every training image
("all"). The threshold is read without the held-out source: the (1 - alpha) quantile of the novelty of real photos
of source-held-out inner folds (GroupKFold over the remaining sources).

    .venv/bin/python docs/experiments/novelty_abstention.py --out reports/experiments/novelty_abstention.json

Needs ../shared and the photo feature cache (`make cross-source` fills it; ~10 minutes with a full cache).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from held_out import fit_whole_path, photo_path_rows, source_held_out_paths
from sklearn.model_selection import GroupKFold
from sklearn.utils.extmath import randomized_svd

from detector.cascade import LABEL_REAL, LABEL_REVIEW, label_for
from training.metrics import auroc
from training.photo_path import (
    ImageFeatures,
    PhotoPath,
    branch_features,
    photo_sets,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCES = ("real", "all")


class Novelty:
    """Distance to the k-th nearest reference image in a whitened principal subspace of the standardised features."""

    def __init__(self, reference: np.ndarray, *, dims: int = 64, k: int = 5) -> None:
        self.mean = reference.mean(0)
        self.scale = np.maximum(reference.std(0), 1e-3)
        _, singular, self.components = randomized_svd((reference - self.mean) / self.scale, dims, random_state=0)
        self.spread = singular / np.sqrt(len(reference))
        self.reference = self._project(reference)
        self.k = k

    def _project(self, features: np.ndarray) -> np.ndarray:
        return (((features - self.mean) / self.scale) @ self.components.T) / self.spread

    def __call__(self, features: np.ndarray) -> np.ndarray:
        points = self._project(features)
        squared = (points**2).sum(1)[:, None] + (self.reference**2).sum(1)[None, :] - 2 * points @ self.reference.T
        return np.sqrt(np.maximum(np.partition(squared, self.k - 1, axis=1)[:, self.k - 1], 0.0))


def reference_rows(data: ImageFeatures, kind: str) -> np.ndarray:
    return data.features if kind == "all" else data.features[data.labels == 0]


def fitted_check(data: ImageFeatures, kind: str, alpha: float) -> tuple[Novelty, float]:
    """The check on these images, its threshold at `alpha` of source-held-out real photos."""
    held_out_reals = []
    for inner, held in GroupKFold(n_splits=4).split(data.features, groups=data.sources):
        reals = held[data.labels[held] == 0]
        if len(reals):
            held_out_reals.append(Novelty(reference_rows(data.subset(inner), kind))(data.features[reals]))
    return Novelty(reference_rows(data, kind)), float(np.quantile(np.concatenate(held_out_reals), 1 - alpha))


def outcomes(path: PhotoPath, cnn: ImageFeatures, vit: ImageFeatures, checks: dict) -> dict:
    scores = path.scores(cnn, vit)
    labels = cnn.labels
    pairs = zip(scores["score"], scores["abstained"], strict=True)
    before = np.array([label_for(float(score), abstained=bool(abstained)) for score, abstained in pairs])
    row: dict = {"ai_images": int(labels.sum()), "real_images": int((labels == 0).sum())}
    for kind, (check, threshold) in checks.items():
        novelty = check(cnn.features)
        after = np.where((before == LABEL_REAL) & (novelty > threshold), LABEL_REVIEW, before)
        row[kind] = {
            "ai_novel": int((novelty[labels == 1] > threshold).sum()),
            "real_novel": int((novelty[labels == 0] > threshold).sum()),
            # [before, after] the check
            "ai_caught": [int((verdicts[labels == 1] != LABEL_REAL).sum()) for verdicts in (before, after)],
            "real_to_review": [int((verdicts[labels == 0] == LABEL_REVIEW).sum()) for verdicts in (before, after)],
            "novelty_auroc": auroc(labels, novelty) if 0 < labels.sum() < len(labels) else None,
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "cache" / "photo")
    parser.add_argument("--alpha", type=float, default=0.05, help="share of held-out real photos the check flags")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    train_items, evaluation = photo_sets(args.shared)
    recipe = photo_path_rows(args.shared, train_items, args.cache)
    everything, clean, pool = recipe.everything, recipe.clean, recipe.pool
    rows: dict = {}
    for held, keep, path in source_held_out_paths(recipe):
        checks = {kind: fitted_check(pool["cnn"].subset(keep), kind, args.alpha) for kind in REFERENCES}
        test = clean & (everything["cnn"].sources == held)
        rows[held] = outcomes(path, everything["cnn"].subset(test), everything["vit"].subset(test), checks)
    held_out_sources = list(rows)
    path = fit_whole_path(recipe)
    checks = {kind: fitted_check(pool["cnn"], kind, args.alpha) for kind in REFERENCES}
    for name, items in evaluation.items():
        features = branch_features(args.shared, items, cache_dir=args.cache, augment=False)
        rows[name] = outcomes(path, features["cnn"], features["vit"], checks)
    summary = {}
    for kind in REFERENCES:
        total = {
            key: np.sum([rows[name][kind][key] for name in held_out_sources], axis=0).tolist()
            for key in ("ai_novel", "real_novel", "ai_caught", "real_to_review")
        }
        total["ai_images"] = sum(rows[name]["ai_images"] for name in held_out_sources)
        total["real_images"] = sum(rows[name]["real_images"] for name in held_out_sources)
        total["novelty_auroc_by_source"] = {
            name: round(rows[name][kind]["novelty_auroc"], 3)
            for name in held_out_sources
            if rows[name][kind]["novelty_auroc"] is not None
        }
        summary[kind] = total
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"alpha": args.alpha, "summary": summary, "sources": rows}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
