"""Experiment (2026-12-07, a check, nothing to ship): is the CNN head's regularisation tuned to the numbers reported?

The texture CNN's head is a logistic regression with C=0.05 (until 1.1.0), fixed when the photo path was built;
the record does not say on what. If it was picked on the leave-one-source-out scores the README reports, those
scores are optimistic. Nested cross-validation says by how much: for each held-out source, C is chosen again using
the remaining sources only (grouped 4-fold out-of-fold AUROC over their rows, `photo_path.out_of_fold_logits`), the
head refitted with it, and the held-out source scored. The grid, fixed beforehand: 0.005, 0.01, 0.02, 0.05, 0.1,
0.2. Also reported: the outer scores at every fixed C (how much the choice matters at all), and `realorai_dev`
scored by the head at the C the training sources choose, against the shipped C (paired bootstrap). CNN branch alone,
clean images and upload-like copies as the recipe learns from. One run.

    .venv/bin/python docs/experiments/nested_head_c.py --out reports/experiments/nested_head_c.json
"""

from __future__ import annotations

import json

import numpy as np
from held_out import HEAD_C_1_1, cnn_experiment, recipe_rows, source_summary
from tqdm import tqdm

import training.photo_path as photo_path
from training.metrics import auroc

GRID = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def chosen_c(pool: photo_path.ImageFeatures) -> tuple[float, dict[float, float]]:
    """The grid's C with the best grouped out-of-fold AUROC on `pool`, and every C's."""
    inner = {c: auroc(pool.labels, photo_path.out_of_fold_logits(pool, c=c, folds=4)) for c in GRID}
    return max(inner, key=inner.get), inner


def paired_bootstrap(labels: np.ndarray, first: np.ndarray, second: np.ndarray, rounds: int = 2000) -> list[float]:
    """95 % interval of AUROC(first) - AUROC(second) over images resampled with replacement (seed 0)."""
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(rounds):
        rows = rng.integers(0, len(labels), len(labels))
        if 0 < labels[rows].sum() < len(rows):
            differences.append(auroc(labels[rows], first[rows]) - auroc(labels[rows], second[rows]))
    return np.percentile(differences, [2.5, 97.5]).tolist()


def main() -> None:
    setup = cnn_experiment(__doc__)
    args, evaluation_sets = setup.args, setup.evaluation_sets
    module, card = setup.module, setup.card

    clean, pool = recipe_rows(setup)
    held_sources = sorted(set(clean.sources) - {"real_photos"})
    fixed: dict[float, list[np.ndarray]] = {c: [] for c in GRID}
    nested, chosen, labels, sources = [], {}, [], []
    for held in tqdm(held_sources, desc="held-out sources", unit="source"):
        train, test = pool.subset(pool.sources != held), clean.subset(clean.sources == held)
        for c in GRID:
            fixed[c].append(photo_path.fit_head(train, c=c).logits(test))
        chosen[held], _ = chosen_c(train)
        nested.append(fixed[chosen[held]][-1])
        labels.append(test.labels)
        sources.append(test.sources)
    labels_all, sources_all = np.concatenate(labels), np.concatenate(sources)
    realorai = photo_path.image_features(
        module, card, evaluation_sets["realorai_dev"], cache_dir=args.cache_dir, desc="realorai_dev"
    )
    everything_c, everything_inner = chosen_c(pool)
    at_chosen = photo_path.fit_head(pool, c=everything_c).logits(realorai)
    at_shipped = photo_path.fit_head(pool, c=HEAD_C_1_1).logits(realorai)
    report = {
        "grid": GRID,
        "nested": {**source_summary(labels_all, sources_all, np.concatenate(nested)), "chosen_c": chosen},
        "fixed_c": {str(c): source_summary(labels_all, sources_all, np.concatenate(fixed[c])) for c in GRID},
        "all_sources": {
            "inner_auroc_by_c": {str(c): value for c, value in everything_inner.items()},
            "chosen_c": everything_c,
            "realorai_dev_auroc_at_chosen_c": auroc(realorai.labels, at_chosen),
            "realorai_dev_auroc_at_shipped_c": auroc(realorai.labels, at_shipped),
            "realorai_dev_difference_95pct_interval": paired_bootstrap(realorai.labels, at_chosen, at_shipped),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    brief = {name: {k: v for k, v in row.items() if k != "two_class_auroc"} for name, row in report["fixed_c"].items()}
    nested_brief = {k: v for k, v in report["nested"].items() if k != "two_class_auroc"}
    print(json.dumps({"nested": nested_brief, "fixed_c": brief, "all_sources": report["all_sources"]}))


if __name__ == "__main__":
    main()
