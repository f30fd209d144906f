"""Experiment (2026-12-07, not shipped): what the cascade gives up by letting the ViT see only escalated images.

The shipped photo path sends the ViT only the images the CNN ranks among the top 5 % of training real photos; every
other image is scored by the CNN alone. This measures, leave-one-source-out like `python -m training cross-source`
and on the same folds and cached features, three scores of the same fitted recipe: the cascade's decision score (as
served), the CNN's logit alone, and the fusion's logit for every image (what a cascade escalating everything would
rank by, at five times the CNN's cost per 224-px image). Both models' heads and the fusion are the recipe's, fitted
without the held-out source; nothing is tuned here.

    .venv/bin/python docs/experiments/fuse_every_image.py --out reports/experiments/fuse_every_image.json

Needs ../shared and the photo feature cache (`make cross-source` fills it; ~7 minutes with a full cache).
"""

from __future__ import annotations

import json

import numpy as np
from held_out import (
    experiment_args,
    fit_whole_path,
    held_out_summary,
    photo_path_rows,
    printable,
    source_held_out_paths,
)

from training.photo_path import AUGMENTED_SUFFIX, RECIPE_COPIES, ImageFeatures, PhotoPath, branch_features, photo_sets

SCORES = ("cascade", "cnn_alone", "fused_every_image")


def scored(path: PhotoPath, cnn: ImageFeatures, vit: ImageFeatures) -> dict[str, np.ndarray]:
    served = path.scores(cnn, vit)
    return {
        "cascade": served["score"],
        "cnn_alone": served["cnn"],
        "fused_every_image": path.fusion.logits(served["cnn"], served["vit"]),
    }


def main() -> None:
    args = experiment_args(__doc__)

    train_items, evaluation = photo_sets(args.shared)
    rows = photo_path_rows(args.shared, train_items, args.cache_dir, augmentations=(*RECIPE_COPIES, "resized"))
    everything, clean = rows.everything, rows.clean
    resized = np.char.endswith(everything["cnn"].paths.astype(str), f"{AUGMENTED_SUFFIX}-resized")
    held_out = {kind: {name: [] for name in SCORES} for kind in ("clean", "resized")}
    labels, sources = [], []
    for held, _, path in source_held_out_paths(rows):
        for kind, mask in (("clean", clean), ("resized", resized)):
            test = mask & (everything["cnn"].sources == held)
            for name, values in scored(path, everything["cnn"].subset(test), everything["vit"].subset(test)).items():
                held_out[kind][name].append(values)
        labels.append(everything["cnn"].labels[clean & (everything["cnn"].sources == held)])
        sources.append(everything["cnn"].sources[clean & (everything["cnn"].sources == held)])
    path = fit_whole_path(rows)
    evaluated: dict[str, dict[str, np.ndarray]] = {name: {} for name in SCORES}
    realorai_labels = np.zeros(0)
    for set_name, items in evaluation.items():
        features = branch_features(args.shared, items, cache_dir=args.cache_dir, augment=False)
        for name, values in scored(path, features["cnn"], features["vit"]).items():
            evaluated[name][set_name] = values
        if set_name == "realorai_dev":
            realorai_labels = features["cnn"].labels
    report = {
        name: held_out_summary(
            labels=np.concatenate(labels),
            sources=np.concatenate(sources),
            clean=np.concatenate(held_out["clean"][name]),
            resized=np.concatenate(held_out["resized"][name]),
            evaluated=evaluated[name],
            realorai_labels=realorai_labels,
        )
        for name in SCORES
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps({name: printable(summary) for name, summary in report.items()}, indent=1, default=str))


if __name__ == "__main__":
    main()
