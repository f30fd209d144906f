"""Experiment (2026-12-07): one head per feature group of the texture CNN, stacked, instead of one joint head.

`feature_groups.py` found the texture CNN's four feature groups complementary across held-out sources (the final
features alone best on `hiyo` and `necz`, the texture groups on `byai` and `gdad`), yet the joint head weighs them by
one L2 penalty on 3,515 standardised inputs, so the larger groups' many columns set most of its logit. Here each
group gets its own head (`photo_path.fit_head`, C=0.05, the rows the recipe learns from: clean images and their
upload-like copies), and a logistic stacking of the four group logits, fitted on out-of-fold logits where every fold
holds out whole sources (`photo_path.out_of_fold_logits`, four folds, as the recipe fits its CNN-ViT fusion), weighs
them. The result is still one linear head over the same features, so serving would cost nothing more.

Leave one source out over the 22 modern sources (the group heads, their out-of-fold logits and the stacking all
refitted without the held-out source), then both heads fitted on everything scored on `realorai_dev`, `real_photos`
test and the camera photos; reported as `feature_groups.py` reports (`held_out.held_out_summary`).

Rule, fixed before the one run (the same as `feature_groups.py`'s): the stacked head is a candidate for the recipe
only if, against the joint head, its mean two-class AUROC and its pooled AUROC are each at most 0.005 lower, one of
them is at least 0.01 higher (or AI caught at 5 % of held-out real photos flagged is 2 points higher), held-out real
photos over the 1 % point (clean and resized) are not more, and `realorai_dev` is at most 0.02 lower. A candidate then
needs the whole recipe's `cross-source` and the serving-path checks before it ships.

    .venv/bin/python docs/experiments/stacked_group_heads.py --out reports/experiments/stacked_group_heads.json
"""

from __future__ import annotations

import numpy as np
from feature_groups import columns_of, group_columns
from held_out import HEAD_C_1_1, cnn_experiment, held_out_rows, report_heads
from sklearn.linear_model import LogisticRegression

import training.photo_path as photo_path

FOLDS = 4


def stacked_head(pool: photo_path.ImageFeatures, groups: dict[str, np.ndarray]) -> tuple[photo_path.LinearHead, dict]:
    """One head per group and their logistic stacking on source-held-out logits, folded into one linear head over
    every column; and the stacking weights."""
    oof = np.column_stack(
        [
            photo_path.out_of_fold_logits(columns_of(pool, columns), c=HEAD_C_1_1, folds=FOLDS)
            for columns in groups.values()
        ]
    )
    stacking = LogisticRegression(C=1.0, class_weight="balanced").fit(oof, pool.labels)
    weight = np.zeros(pool.features.shape[1])
    bias = float(stacking.intercept_[0])
    for share, columns in zip(stacking.coef_[0], groups.values(), strict=True):
        head = photo_path.fit_head(columns_of(pool, columns), c=HEAD_C_1_1)
        weight[columns] += share * head.weight
        bias += share * head.bias
    return photo_path.LinearHead(weight, bias), dict(zip(groups, map(float, stacking.coef_[0]), strict=True))


def main() -> None:
    setup = cnn_experiment(__doc__)
    rows = held_out_rows(setup)
    groups = group_columns(setup.module)
    heads = {
        "joint": lambda data: photo_path.fit_head(data, c=HEAD_C_1_1),
        "stacked": lambda data: stacked_head(data, groups)[0],
    }
    report: dict = {
        "folds": FOLDS,
        "heads": {},
        "stacking_weights": {"joint": {}, "stacked": stacked_head(rows.pool, groups)[1]},
    }
    report_heads(setup, rows, heads, report)


if __name__ == "__main__":
    main()
