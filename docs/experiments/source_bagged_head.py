"""Experiment (2026-12-07, not shipped): the CNN branch's head averaged over heads that each leave some sources out.

The fine-tuning experiment (`finetune_cnn_crops.py`) showed, in passing, that the mean of its five folds' frozen
heads scored `realorai_dev` better than any one of them (0.752 against 0.72-0.76). Averaging linear heads gives one
linear head, so it would cost serving nothing. Since the idea came from `realorai_dev`, that set cannot confirm it;
leave-one-source-out on the 22 modern sources can. For each held-out source, two heads on the same cached features
(frozen texture CNN, five native crops, clean images and their upload-like copies, `photo_path.fit_head`, C=0.05):

- **single**: one head on every remaining source (the shipped CNN branch's recipe);
- **bagged**: the mean of five heads, each fitted without one fifth of the remaining modern sources (GroupKFold;
  `real_photos` always in).

Five folds, fixed before the one run. Reports each two-class source's AUROC, the mean and worst, the pooled
AUROC over every held-out image, and the AI caught at 5 % of held-out real photos flagged; and both heads fitted on
everything, scored on `realorai_dev`.

    .venv/bin/python docs/experiments/source_bagged_head.py --out reports/experiments/source_bagged_head.json
"""

from __future__ import annotations

import json

import numpy as np
from held_out import HEAD_C_1_1, cnn_experiment, recipe_rows
from sklearn.model_selection import GroupKFold

import training.photo_path as photo_path
from training.metrics import auroc

FOLDS = 5


def bagged_head(pool: photo_path.ImageFeatures, c: float) -> photo_path.LinearHead:
    """The mean of FOLDS heads, each fitted without one group of the pool's modern sources."""
    modern = sorted(set(pool.sources) - {"real_photos"})
    heads = []
    for _, left_out in GroupKFold(n_splits=FOLDS).split(modern, groups=modern):
        dropped = [modern[i] for i in left_out]
        heads.append(photo_path.fit_head(pool.subset(~np.isin(pool.sources, dropped)), c=c))
    return photo_path.LinearHead(np.mean([h.weight for h in heads], 0), float(np.mean([h.bias for h in heads])))


def main() -> None:
    setup = cnn_experiment(__doc__)
    args, evaluation_sets = setup.args, setup.evaluation_sets
    module, card = setup.module, setup.card
    clean, pool = recipe_rows(setup)
    heads = {
        "single": lambda data: photo_path.fit_head(data, c=HEAD_C_1_1),
        "bagged": lambda data: bagged_head(data, HEAD_C_1_1),
    }

    two_class: dict[str, dict[str, float]] = {name: {} for name in heads}
    held_scores: dict[str, list[np.ndarray]] = {name: [] for name in heads}
    held_labels = []
    for held in sorted(set(clean.sources) - {"real_photos"}):
        test = clean.subset(clean.sources == held)
        held_labels.append(test.labels)
        for name, fit in heads.items():
            scores = fit(pool.subset(pool.sources != held)).logits(test)
            held_scores[name].append(scores)
            if len(set(test.labels.tolist())) == 2:
                two_class[name][held] = auroc(test.labels, scores)
    labels = np.concatenate(held_labels)
    realorai = evaluation_sets["realorai_dev"]
    realorai_features = photo_path.image_features(module, card, realorai, cache_dir=args.cache_dir, desc="realorai")
    report = {"folds": FOLDS}
    for name, fit in heads.items():
        scores = np.concatenate(held_scores[name])
        flagged_5pct = np.quantile(scores[labels == 0], 0.95)
        report[name] = {
            "two_class_auroc": two_class[name],
            "mean_two_class_auroc": float(np.mean(list(two_class[name].values()))),
            "worst_two_class_auroc": min(two_class[name].items(), key=lambda kv: kv[1]),
            "pooled_auroc": auroc(labels, scores),
            "pooled_tpr_at_5pct_fpr": float((scores[labels == 1] > flagged_5pct).mean()),
            "realorai_dev_auroc": auroc(realorai_features.labels, fit(pool).logits(realorai_features)),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({name: {k: v for k, v in report[name].items() if k != "two_class_auroc"} for name in heads}))


if __name__ == "__main__":
    main()
