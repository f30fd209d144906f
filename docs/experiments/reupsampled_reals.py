"""Experiment (2026-12-07, not shipped): real photographs re-upsampled, taught as AI, so the head learns upsampling.

Every generator here ends in a decoder that upsamples (latent diffusion's VAE: 8x; GANs: 2x stages), and work on
generalising detectors (NPR, CVPR 2024) reads the traces upsampling leaves between neighbouring pixels as what
generators share. The shared sources tie that trace to a look (2025 polish against old Flickr photos); a real
photograph given the trace and nothing else, labelled AI, should teach the head the trace rather than the look.
Measured on the cached features of the frozen texture CNN (five native crops, averaged; the CNN branch alone), the
synthetic copy fixed beforehand (`reupsampled`): the canonical-scale image box-downscaled 0.5x and bilinear-upscaled
back to its size, no re-encode.

Two heads (`photo_path.fit_head`, C=0.05, clean images and their upload-like copies as the recipe learns from):

- **recipe**: the shipped CNN branch's rows;
- **recipe+reupsampled**: plus the re-upsampled copy of every training real photo, labelled AI.

Leave one source out over the 22 modern sources: the held-out source's rows, its copies and its re-upsampled reals
are all left out, and its clean images (and `resized_like` copies) scored; then both heads fitted on everything,
scored on `realorai_dev`, `real_photos` test and the camera photos. Reported as `scale_response.py` reports; and
what the added class costs: held-out real photos re-upsampled the same way, over the 1 % point (an upload a user
enlarged 2x would be accused). One run.

    .venv/bin/python docs/experiments/reupsampled_reals.py --out reports/experiments/reupsampled_reals.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

import training.photo_path as photo_path
from detector.views import canonical_scale
from training.metrics import auroc

REPO = Path(__file__).resolve().parents[2]


def reupsampled(image: Image.Image, rng: random.Random | None = None) -> Image.Image:
    """The canonical-scale image halved (box) and brought back to its size (bilinear): an upsampling trace only."""
    spec = photo_path.BRANCHES["cnn"]
    image = canonical_scale(image, canonical_side=spec.canonical_side, min_side=spec.input_size)
    half = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BOX)
    return half.resize(image.size, Image.Resampling.BILINEAR)


photo_path.AUGMENTATIONS["reupsampled"] = reupsampled


def as_ai(features: photo_path.ImageFeatures) -> photo_path.ImageFeatures:
    return photo_path.ImageFeatures(
        features.features, np.ones_like(features.labels), features.sources, np.char.add(features.paths, "#reup")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "var" / "cache" / "photo")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    items, evaluation_sets = photo_path.photo_sets(args.shared)
    spec = photo_path.BRANCHES["cnn"]
    module, card = photo_path.load_branch(spec, args.shared)

    def features(images, augmented: str | None, desc: str) -> photo_path.ImageFeatures:
        return photo_path.image_features(module, card, images, cache_dir=args.cache_dir, augmented=augmented, desc=desc)

    clean = features(items, None, "clean")
    resized = features(items, "resized", "resized")
    recipe = photo_path.ImageFeatures.concat([clean, features(items, "upload-like", "upload-like")])
    reals = [item for item in items if item.label == 0]
    synthetic = as_ai(features(reals, "reupsampled", "re-upsampled reals"))
    pools = {"recipe": recipe, "recipe+reupsampled": photo_path.ImageFeatures.concat([recipe, synthetic])}
    evaluation = {name: features(images, None, name) for name, images in evaluation_sets.items()}

    report: dict = {"heads": {}}
    for name, pool in pools.items():
        scored: dict[str, list[np.ndarray]] = {"clean": [], "resized": [], "reupsampled": [], "labels": []}
        two_class, two_class_resized = {}, {}
        for held in sorted(set(clean.sources) - {"real_photos"}):
            head = photo_path.fit_head(pool.subset(pool.sources != held), c=spec.c)
            test = clean.sources == held
            labels = clean.labels[test]
            scored["labels"].append(labels)
            scored["clean"].append(head.logits(clean.subset(test)))
            scored["resized"].append(head.logits(resized.subset(resized.sources == held)))
            scored["reupsampled"].append(head.logits(synthetic.subset(synthetic.sources == held)))
            if len(set(labels.tolist())) == 2:
                two_class[held] = auroc(labels, scored["clean"][-1])
                two_class_resized[held] = auroc(labels, scored["resized"][-1])
        labels = np.concatenate(scored["labels"])
        clean_scores, resized_scores = np.concatenate(scored["clean"]), np.concatenate(scored["resized"])
        reupsampled_reals = np.concatenate(scored["reupsampled"])
        one_pct = float(np.quantile(clean_scores[labels == 0], 0.99, method="higher"))
        five_pct = float(np.quantile(clean_scores[labels == 0], 0.95))
        full = photo_path.fit_head(pool, c=spec.c)
        evaluated = {set_name: full.logits(data) for set_name, data in evaluation.items()}
        realorai_labels = evaluation["realorai_dev"].labels
        realorai = evaluated["realorai_dev"]
        report["heads"][name] = {
            "two_class_auroc": two_class,
            "mean_two_class_auroc": float(np.mean(list(two_class.values()))),
            "worst_two_class_auroc": min(two_class.items(), key=lambda kv: kv[1]),
            "pooled_auroc": auroc(labels, clean_scores),
            "pooled_tpr_at_5pct_fpr": float((clean_scores[labels == 1] > five_pct).mean()),
            "resized_two_class_auroc": two_class_resized,
            "resized_mean_two_class_auroc": float(np.mean(list(two_class_resized.values()))),
            "resized_pooled_auroc": auroc(labels, resized_scores),
            "held_out_reals_over_1pct_point": {
                "clean": float((clean_scores[labels == 0] > one_pct).mean()),
                "resized": float((resized_scores[labels == 0] > one_pct).mean()),
                "reupsampled": float((reupsampled_reals > one_pct).mean()),
                "real_photos_test": float((evaluated["real_photos_test"] > one_pct).mean()),
                "camera_photos_real": float((evaluated["camera_photos_real"] > one_pct).mean()),
                "realorai_dev_reals": float((realorai[realorai_labels == 0] > one_pct).mean()),
            },
            "realorai_dev_auroc": auroc(realorai_labels, realorai),
            "realorai_dev_caught_at_5pct_point": float((realorai[realorai_labels == 1] > five_pct).mean()),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    per_source = ("two_class_auroc", "resized_two_class_auroc")
    print(json.dumps({n: {k: v for k, v in row.items() if k not in per_source} for n, row in report["heads"].items()}))


if __name__ == "__main__":
    main()
