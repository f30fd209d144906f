"""Experiment (2026-12-07, not shipped): how an image's texture evidence responds to shrinking it, as evidence.

A generator leaves its traces at the pixel scale its decoder writes; shrinking the image averages them away, so
the texture CNN's AI evidence should fall. A photograph's fine texture (sensor noise, demosaicing, JPEG) shrunk
becomes crisper, which the same head reads as more AI-like (README, "Resized uploads"). If so, the change of the
features under one fixed shrink says something about the image that its look does not: how its pixels were made,
rather than which photo pool or generator style it resembles. Measured here before any use, on the cached features
of the frozen texture CNN (five native crops, averaged), the shrink fixed beforehand: 0.75x, bicubic, no re-encode
(`shrunk`).

Three heads (`photo_path.fit_head`, C=0.05, each row learning from the clean image and its upload-like copy as the
recipe does; the upload-like copy's shrunk view is that copy shrunk):

- **look**: f(x), the shipped CNN branch's input;
- **look+response**: [f(x), f(x) - f(shrunk(x))];
- **response**: f(x) - f(shrunk(x)) alone.

Leave one source out over the 22 modern sources (each held-out source's clean images; and its `resized_like`
copies, the README's robustness check, with their own shrunk views), then the heads fitted on everything, scored
on `realorai_dev`, `real_photos` test and the camera photos. Reported: each two-class source's AUROC, mean and
worst; pooled AUROC and AI caught at 5 % of held-out real photos flagged; on the resized copies the mean and pooled
AUROC, and held-out real photos (clean and resized) over the clean held-out reals' 1 % point; and, as the test of
the premise, the mean change of the look head's held-out logit under the shrink, AI against real. One run.

    .venv/bin/python docs/experiments/scale_response.py --out reports/experiments/scale_response.json
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from held_out import HEAD_C_1_1, cnn_experiment, held_out_summary, printable
from PIL import Image

import training.photo_path as photo_path
from detector.views import canonical_scale
from training.metrics import auroc

SHRINK = 0.75


def shrunk(image: Image.Image, rng: random.Random | None = None) -> Image.Image:
    """SHRINK times the scale the crops are cut at (a larger upload is first brought to that scale, as serving does)."""
    spec = photo_path.BRANCHES["cnn"]
    image = canonical_scale(image, canonical_side=spec.canonical_side, min_side=spec.input_size)
    size = (round(image.width * SHRINK), round(image.height * SHRINK))
    return image.resize(size, Image.Resampling.BICUBIC)


# The shrunk view of each copy the recipe and the robustness check score: the copy made with the same seed as in
# cross-source (so it is the same picture), then shrunk.
VIEWS = {
    "shrunk": shrunk,
    "upload-like+shrunk": lambda image, rng: shrunk(photo_path.upload_like(image, rng)),
    "resized+shrunk": lambda image, rng: shrunk(photo_path.resized_like(image, rng)),
}
photo_path.AUGMENTATIONS.update(VIEWS)

HEADS = {
    "look": lambda look, response: look,
    "look+response": lambda look, response: np.concatenate([look, response], axis=1),
    "response": lambda look, response: response,
}


def two_views(
    module, card, items, cache_dir: Path, copy: str | None, desc: str
) -> tuple[photo_path.ImageFeatures, ...]:
    """(features of the image or its `copy`, features of its shrunk view), rows aligned."""
    look = photo_path.image_features(module, card, items, cache_dir=cache_dir, augmented=copy, desc=desc)
    view = f"{copy}+shrunk" if copy else "shrunk"
    small = photo_path.image_features(module, card, items, cache_dir=cache_dir, augmented=view, desc=f"{desc} shrunk")
    if not np.array_equal(look.paths, small.paths):
        raise ValueError(f"{desc}: the shrunk views kept different images")
    return look, small


def head_input(name: str, look: photo_path.ImageFeatures, small: photo_path.ImageFeatures) -> photo_path.ImageFeatures:
    features = HEADS[name](look.features, look.features - small.features)
    return photo_path.ImageFeatures(features, look.labels, look.sources, look.paths)


def main() -> None:
    setup = cnn_experiment(__doc__)
    args, items, evaluation_sets = setup.args, setup.items, setup.evaluation_sets
    module, card = setup.module, setup.card
    sets = {copy: two_views(module, card, items, args.cache_dir, copy, copy or "clean")
            for copy in (None, "upload-like", "resized")}  # fmt: skip
    if not all(np.array_equal(sets[None][0].paths, look.paths) for look, _ in sets.values()):
        raise ValueError("the copies kept different images")
    clean = sets[None][0]
    evaluation = {name: two_views(module, card, images, args.cache_dir, None, name)
                  for name, images in evaluation_sets.items()}  # fmt: skip

    def rows(name: str, copy: str | None) -> photo_path.ImageFeatures:
        return head_input(name, *sets[copy])

    report: dict = {"shrink": SHRINK, "heads": {}}
    look_shift: list[np.ndarray] = []
    for name in HEADS:
        pool = photo_path.ImageFeatures.concat([rows(name, None), rows(name, "upload-like")])
        scored: dict[str, list[np.ndarray]] = {"clean": [], "resized": [], "labels": [], "sources": []}
        for held in sorted(set(clean.sources) - {"real_photos"}):
            head = photo_path.fit_head(pool.subset(pool.sources != held), c=HEAD_C_1_1)
            test = clean.sources == held
            scored["labels"].append(clean.labels[test])
            scored["sources"].append(clean.sources[test])
            for copy, key in ((None, "clean"), ("resized", "resized")):
                scored[key].append(head.logits(rows(name, copy).subset(test)))
            if name == "look":
                look_shift.append(scored["clean"][-1] - head.logits(sets[None][1].subset(test)))
        full = photo_path.fit_head(pool, c=HEAD_C_1_1)
        report["heads"][name] = held_out_summary(
            **{key: np.concatenate(parts) for key, parts in scored.items()},
            evaluated={set_name: full.logits(head_input(name, *views)) for set_name, views in evaluation.items()},
            realorai_labels=evaluation["realorai_dev"][0].labels,
        )
    labels = np.concatenate(scored["labels"])
    shift = np.concatenate(look_shift)
    report["premise"] = {
        "look_logit_minus_shrunk_look_logit": {
            "ai_mean": float(shift[labels == 1].mean()),
            "real_mean": float(shift[labels == 0].mean()),
            "auroc_of_the_change": auroc(labels, shift),
        }
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"premise": report["premise"], **{n: printable(r) for n, r in report["heads"].items()}}))


if __name__ == "__main__":
    main()
