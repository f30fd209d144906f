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

import json
import random
from dataclasses import replace

import numpy as np
from held_out import HEAD_C_1_1, cnn_experiment, cnn_features, head_summary, held_out_rows, printable
from PIL import Image

import training.photo_path as photo_path
from detector.views import canonical_scale


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
    setup = cnn_experiment(__doc__)
    rows = held_out_rows(setup)
    reals = [item for item in setup.items if item.label == 0]
    synthetic = as_ai(cnn_features(setup, reals, "reupsampled", "re-upsampled reals"))
    pools = {"recipe": rows.pool, "recipe+reupsampled": photo_path.ImageFeatures.concat([rows.pool, synthetic])}
    report: dict = {"heads": {}}
    for name, pool in pools.items():
        report["heads"][name] = head_summary(
            replace(rows, pool=pool),
            lambda data: photo_path.fit_head(data, c=HEAD_C_1_1),
            other_reals={"reupsampled": synthetic},
        )
    setup.args.out.parent.mkdir(parents=True, exist_ok=True)
    setup.args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({name: printable(row) for name, row in report["heads"].items()}))


if __name__ == "__main__":
    main()
