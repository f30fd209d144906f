"""The held-out measures the experiments report alike, and the leave-one-source-out fits they share (imported by the
scripts beside it)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import training.photo_path as photo_path
from detector import ModelCard
from training.datasets import LabelledImage
from training.metrics import auroc

REPO = Path(__file__).resolve().parents[2]
# The texture CNN head's C in photo-fusion 1.1.0, the recipe these experiments ran against.
HEAD_C_1_1 = 0.05


@dataclass
class CnnExperiment:
    """What every CNN-branch experiment starts from: its arguments, the training and evaluation images (as the
    recipe splits them) and the frozen texture CNN with its branch spec."""

    args: argparse.Namespace
    items: list[LabelledImage]
    evaluation_sets: dict[str, list[LabelledImage]]
    spec: photo_path.BranchSpec
    module: torch.nn.Module
    card: ModelCard


def experiment_args(doc: str) -> argparse.Namespace:
    """Parse --shared, --cache-dir (the recipe's feature cache: `make cross-source` fills it) and --out."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "var" / "cache" / "photo")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


def cnn_experiment(doc: str) -> CnnExperiment:
    """The experiment's arguments (`experiment_args`), its images and the frozen texture CNN."""
    args = experiment_args(doc)
    items, evaluation_sets = photo_path.photo_sets(args.shared)
    spec = photo_path.BRANCHES["cnn"]
    module, card = photo_path.load_branch(spec, args.shared)
    return CnnExperiment(args, items, evaluation_sets, spec, module, card)


def cnn_features(
    setup: CnnExperiment, images: list[LabelledImage], augmented: str | None, desc: str
) -> photo_path.ImageFeatures:
    """The frozen texture CNN's features of these images (or of their `augmented` copies), through the cache."""
    return photo_path.image_features(
        setup.module, setup.card, images, cache_dir=setup.args.cache_dir, augmented=augmented, desc=desc
    )


def recipe_rows(setup: CnnExperiment) -> tuple[photo_path.ImageFeatures, photo_path.ImageFeatures]:
    """(the training images' clean features, the rows the recipe's CNN head learns from: those and their copies of
    the kinds the recipe learns from, `photo_path.RECIPE_COPIES`), from the feature cache."""
    copies = {
        augmented: cnn_features(setup, setup.items, augmented, augmented or "clean")
        for augmented in (None, *photo_path.RECIPE_COPIES)
    }
    return copies[None], photo_path.ImageFeatures.concat(list(copies.values()))


@dataclass
class HeldOutRows:
    """The rows `leave_one_source_out` scores: the training images' clean features, the rows the recipe learns from
    (`recipe_rows`), the training images' `resized_like` copies and each evaluation-only set's clean features."""

    clean: photo_path.ImageFeatures
    pool: photo_path.ImageFeatures
    resized: photo_path.ImageFeatures
    evaluation: dict[str, photo_path.ImageFeatures]


def held_out_rows(setup: CnnExperiment) -> HeldOutRows:
    clean, pool = recipe_rows(setup)
    return HeldOutRows(
        clean,
        pool,
        cnn_features(setup, setup.items, "resized", "resized"),
        {name: cnn_features(setup, images, None, name) for name, images in setup.evaluation_sets.items()},
    )


def leave_one_source_out(
    rows: HeldOutRows,
    fit: Callable[[photo_path.ImageFeatures], photo_path.LinearHead],
    also: dict[str, photo_path.ImageFeatures] | None = None,
) -> dict[str, np.ndarray]:
    """For each of the 22 modern sources, a head fitted by `fit` on the pool without it scores its clean images and
    their resized copies (`held_out_summary`'s `labels`, `sources`, `clean` and `resized`, aligned), and the source's
    rows of each set in `also`, under that set's name."""
    also = also or {}
    scored: dict[str, list[np.ndarray]] = {name: [] for name in ("clean", "resized", "labels", "sources", *also)}
    for held in sorted(set(rows.clean.sources) - {"real_photos"}):
        head = fit(rows.pool.subset(rows.pool.sources != held))
        test = rows.clean.sources == held
        scored["labels"].append(rows.clean.labels[test])
        scored["sources"].append(rows.clean.sources[test])
        scored["clean"].append(head.logits(rows.clean.subset(test)))
        for name, data in {"resized": rows.resized, **also}.items():
            scored[name].append(head.logits(data.subset(data.sources == held)))
    return {key: np.concatenate(parts) for key, parts in scored.items()}


def head_summary(
    rows: HeldOutRows,
    fit: Callable[[photo_path.ImageFeatures], photo_path.LinearHead],
    other_reals: dict[str, photo_path.ImageFeatures] | None = None,
) -> dict:
    """`held_out_summary` of the heads `fit` gives: source-held-out on the training sources (and on `other_reals`,
    real photos of those sources to count against the 1 % point), and fitted on every training image for the
    evaluation-only sets."""
    scored = leave_one_source_out(rows, fit, other_reals)
    full = fit(rows.pool)
    return held_out_summary(
        **{key: scored[key] for key in ("clean", "resized", "labels", "sources")},
        evaluated={name: full.logits(data) for name, data in rows.evaluation.items()},
        realorai_labels=rows.evaluation["realorai_dev"].labels,
        other_reals={name: scored[name] for name in other_reals or {}},
    )


def report_heads(
    setup: CnnExperiment,
    rows: HeldOutRows,
    heads: dict[str, Callable[[photo_path.ImageFeatures], photo_path.LinearHead]],
    report: dict,
) -> None:
    """Fill `report["heads"]` with each head's `head_summary`, printing each as it comes; write `report` to --out."""
    for name, fit in heads.items():
        report["heads"][name] = head_summary(rows, fit)
        print(name, json.dumps(printable(report["heads"][name])), flush=True)
    setup.args.out.parent.mkdir(parents=True, exist_ok=True)
    setup.args.out.write_text(json.dumps(report, indent=2) + "\n")


@dataclass
class PhotoPathRows:
    """Both branches' cached features of the training images and their copies (`everything`), which of those rows are
    the clean images (`clean`), and the rows the whole recipe learns from (`pool`)."""

    everything: dict[str, photo_path.ImageFeatures]
    clean: np.ndarray
    pool: dict[str, photo_path.ImageFeatures]


def photo_path_rows(
    shared: Path, items: list[LabelledImage], cache_dir: Path, augmentations: tuple[str, ...] = photo_path.RECIPE_COPIES
) -> PhotoPathRows:
    everything = photo_path.branch_features(
        shared, items, cache_dir=cache_dir, augment=True, augmentations=augmentations
    )
    clean = np.char.find(everything["cnn"].paths.astype(str), photo_path.AUGMENTED_SUFFIX) < 0
    pool, _ = photo_path._heads_inputs(everything, photo_path.RECIPE_COPIES, photo_path.Invariance())
    return PhotoPathRows(everything, clean, pool)


def source_held_out_paths(rows: PhotoPathRows) -> Iterator[tuple[str, np.ndarray, photo_path.PhotoPath]]:
    """For each of the 22 modern sources: its name, the pool rows kept without it, and the whole recipe (heads,
    fusion, points) fitted on those rows."""
    for held in tqdm(sorted(set(rows.pool["cnn"].sources) - {"real_photos"}), desc="leave one source out"):
        keep = rows.pool["cnn"].sources != held
        yield held, keep, fit_whole_path(rows, keep)


def fit_whole_path(rows: PhotoPathRows, keep: np.ndarray | None = None) -> photo_path.PhotoPath:
    """The whole recipe fitted on the pool's `keep` rows (all of them by default)."""
    cnn, vit = rows.pool["cnn"], rows.pool["vit"]
    if keep is not None:
        cnn, vit = cnn.subset(keep), vit.subset(keep)
    return photo_path.fit_photo_path(cnn, vit, photo_path.PolicyTargets())


def source_summary(labels: np.ndarray, sources: np.ndarray, scores: np.ndarray) -> dict:
    """Per-source AUROC of the two-class sources, their mean and worst, and the AUROC over every image."""
    two_class = photo_path.per_source_auroc(labels, sources, scores)
    return {
        "two_class_auroc": two_class,
        "mean_two_class_auroc": float(np.mean(list(two_class.values()))),
        "worst_two_class_auroc": min(two_class.items(), key=lambda kv: kv[1]),
        "pooled_auroc": auroc(labels, scores),
    }


def held_out_summary(
    *,
    labels: np.ndarray,
    sources: np.ndarray,
    clean: np.ndarray,
    resized: np.ndarray,
    evaluated: dict[str, np.ndarray],
    realorai_labels: np.ndarray,
    other_reals: dict[str, np.ndarray] | None = None,
) -> dict:
    """Source-held-out logits of the clean images and their resized copies (rows aligned with `labels` and
    `sources`), and the evaluation sets' logits from the head fitted on everything: per-source, mean, worst and pooled
    AUROC, AI caught at 5 % of held-out reals flagged, and the real photos over the held-out reals' 1 % point
    (`other_reals`: more held-out real logits to count against that point)."""
    two_class_resized = photo_path.per_source_auroc(labels, sources, resized)
    reals = clean[labels == 0]
    one_pct, five_pct = float(np.quantile(reals, 0.99, method="higher")), float(np.quantile(reals, 0.95))
    realorai = evaluated["realorai_dev"]
    over_1pct = {
        "clean": reals,
        "resized": resized[labels == 0],
        **(other_reals or {}),
        "real_photos_test": evaluated["real_photos_test"],
        "camera_photos_real": evaluated["camera_photos_real"],
        "realorai_dev_reals": realorai[realorai_labels == 0],
    }
    return {
        **source_summary(labels, sources, clean),
        "pooled_tpr_at_5pct_fpr": float((clean[labels == 1] > five_pct).mean()),
        "resized_two_class_auroc": two_class_resized,
        "resized_mean_two_class_auroc": float(np.mean(list(two_class_resized.values()))),
        "resized_pooled_auroc": auroc(labels, resized),
        "held_out_reals_over_1pct_point": {
            name: float((scores > one_pct).mean()) for name, scores in over_1pct.items()
        },
        "realorai_dev_auroc": auroc(realorai_labels, realorai),
        "realorai_dev_caught_at_5pct_point": float((realorai[realorai_labels == 1] > five_pct).mean()),
    }


def printable(report: dict) -> dict:
    """A report's summaries without its per-source tables."""
    return {key: value for key, value in report.items() if key not in ("two_class_auroc", "resized_two_class_auroc")}
