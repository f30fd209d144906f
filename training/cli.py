"""`python -m training train-photo-path|cross-source|pool-matched|report-default|evaluate|train-thumbnail|…`.

See `--help` of each.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.views import VIEW_KINDS

from .datasets import LabelledImage, folder_images, stratified_split
from .probe import ProbeConfig, train_probe

if TYPE_CHECKING:  # the commands import photo_path (ONNX Runtime, timm) when they run
    from .photo_path import Invariance, PolicyTargets

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = REPO_ROOT / "detector" / "models" / "default"
# Where training writes unless told otherwise: replacing the shipped default is always an explicit --out.
TRAIN_DIR = REPO_ROOT / "var" / "train-default"
# modern_mix_norm512 is split by source repository so near-duplicate prompts never straddle train and test.
MODERN_MIX_SPLIT = {"aigt": "train", "ytr": "train", "hsai": "train", "memq": "train", "gdad": "val", "byai": "test"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MODELS = {
    # Multi-scale pooled features: +4.4 points on CIFAKE test over the last stage alone (90.8 % vs 86.4 %).
    "cnn": {
        "architecture": "tf_efficientnet_lite0_multiscale",
        "weights": "efficientnet_lite0/tf_efficientnet_lite0.timm.safetensors",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "name": "effnet-lite0-ms-probe",
    },
    "vit": {
        "architecture": "vit_small_patch14_dinov2",
        "weights": "vit_small_patch14_dinov2/vit_small_patch14_dinov2.img224.fp16.safetensors",
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "name": "dinov2-s14-probe",
    },
}


# The copies of a training image the photo path can make (`training.photo_path.AUGMENTATIONS`, which loads torch:
# the CLI names them here and a test keeps the two in step).
COPY_KINDS = ("upload-like", "resized", "polished")


def default_training_sets(
    shared: Path, *, cifake_per_class: int, seed: int, train_cifake_per_class: int | None = None
) -> dict[str, list[LabelledImage]]:
    """The default splits. `train_cifake_per_class` keeps fewer CIFAKE images in train only (a slow model's features),
    so validation and test stay exactly those of another run with the same `cifake_per_class`."""
    datasets = shared / "datasets"
    splits: dict[str, list[LabelledImage]] = {"train": [], "val": [], "test": []}
    for items in (
        folder_images(datasets / "cifake_sd14", source="cifake", limit_per_class=cifake_per_class, seed=seed),
        folder_images(datasets / "real_photos", source="real_photos"),
    ):
        for name, part in zip(("train", "val", "test"), stratified_split(items, seed=seed), strict=True):
            splits[name] += part
    if train_cifake_per_class is not None:
        kept = []
        for label in (0, 1):
            group = [item for item in splits["train"] if item.source == "cifake" and item.label == label]
            kept += random.Random(seed).sample(group, min(train_cifake_per_class, len(group)))
        chosen = {item.path for item in kept}
        splits["train"] = [item for item in splits["train"] if item.source != "cifake" or item.path in chosen]
    for item in folder_images(datasets / "modern_mix_norm512", source="modern_mix"):
        repo = item.path.name.split("__", 1)[0]
        splits[MODERN_MIX_SPLIT[repo]].append(LabelledImage(item.path, item.label, f"modern_mix:{repo}"))
    return splits


def _default_sets(args: argparse.Namespace) -> tuple[dict[str, list[LabelledImage]], dict[str, list[LabelledImage]]]:
    """The default train/val/test splits, and the real-photo and cross-source sets every run also reports on."""
    splits = default_training_sets(
        args.shared,
        cifake_per_class=args.cifake_per_class,
        seed=args.seed,
        train_cifake_per_class=getattr(args, "train_cifake_per_class", None),
    )
    datasets = args.shared / "datasets"
    extra = {name: folder_images(datasets / name, source=name) for name in ("camera_photos_real", "realorai_dev")}
    return splits, extra


def _save_scores(path: Path, scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Per-set labels and probabilities, for fitting the cascade band later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        f"{name}_{part}": array
        for name, pair in scores.items()
        for part, array in zip(("labels", "scores"), pair, strict=True)
    }
    np.savez(path, **arrays)


def _print_summary(checkpoint: Path, card: dict) -> None:
    keys = ("n", "accuracy", "auroc", "false_positive_rate")
    summary = {name: {k: card["metrics"][name][k] for k in keys} for name in card["metrics"]}
    print(json.dumps({"checkpoint": str(checkpoint), "threshold": card["threshold"], "summary": summary}, indent=2))


def _train_default(args: argparse.Namespace) -> int:
    spec = MODELS[args.model]
    splits, extra = _default_sets(args)
    config = ProbeConfig(
        architecture=spec["architecture"],
        backbone_weights=args.shared / "weights" / spec["weights"],
        mean=spec["mean"],
        std=spec["std"],
        target_fpr=args.target_fpr,
        seed=args.seed,
    )
    out = args.out or TRAIN_DIR / args.model
    result = train_probe(
        config=config,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        extra_eval=extra,
        card_name=spec["name"],
        card_version=args.version,
        out_dir=out,
        cache_dir=args.cache,
    )
    _save_scores(args.cache / f"scores-{args.model}.npz", result.scores)
    _print_summary(out, result.card)
    return 0


def _finetune_cnn(args: argparse.Namespace) -> int:
    from .finetune_tail import TailConfig, finetune_tail

    splits, extra = _default_sets(args)
    result = finetune_tail(
        init_checkpoint=args.init,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        extra_eval=extra,
        out_dir=args.out,
        version=args.version,
        config=TailConfig(epochs=args.epochs, seed=args.seed, target_fpr=args.target_fpr),
    )
    _save_scores(args.cache / "scores-cnn.npz", result["scores"])
    _print_summary(args.out, json.loads(result["card"].to_json()))
    return 0


def _train_thumbnail(args: argparse.Namespace) -> int:
    from .thumbnail import train_thumbnail

    splits = default_training_sets(args.shared, cifake_per_class=args.cifake_per_class, seed=args.seed)
    cifake = {name: [item for item in items if item.source == "cifake"] for name, items in splits.items()}
    result = train_thumbnail(
        screen=args.init, **cifake, out=args.out, version=args.version, epochs=args.epochs, seed=args.seed
    )
    _print_summary(args.out, json.loads(result["card"].to_json()))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from detector import DEFAULT_CHECKPOINT

    from .evaluate import evaluate, public_report, write_plots, write_report

    items = folder_images(args.data, source=args.data.name)
    report = evaluate(args.checkpoint or DEFAULT_CHECKPOINT, items, robustness=not args.no_robustness)
    if args.out:
        write_report(report, args.out)
        report["plots"] = [str(path) for path in write_plots(report, args.out)]
    if args.json:
        print(json.dumps(public_report(report), indent=2))
        return 0
    clean = report["clean"]
    auroc = "n/a (one class)" if clean["auroc"] is None else f"{clean['auroc']:.3f}"
    fpr = "n/a" if clean["false_positive_rate"] is None else f"{clean['false_positive_rate']:.1%}"
    print(f"{report['model']} on {args.data} ({report['n']} images, {clean['rejected']} rejected)")
    print(f"accuracy {clean['accuracy']:.1%}  AUROC {auroc}  false-positive rate {fpr}")
    print(f"escalated to the ViT: {clean['escalation_rate']:.1%}")
    outcomes = clean["outcomes"]
    if "caught" in outcomes:
        caught, tagged = outcomes["caught"], outcomes["auto_tagged"]
        print(f"AI images caught (tagged or to review) {caught:.1%}, auto-tagged {tagged:.1%}")
    if "real_tagged_ai" in outcomes:
        print(
            f"real photos tagged AI {outcomes['real_tagged_ai']:.1%}, sent to review {outcomes['real_to_review']:.1%}"
        )
    for kind, row in report["robustness"].items():
        print(f"  {kind:<14} accuracy {row['accuracy']:.1%}")
    return 0


def _report_default(args: argparse.Namespace) -> int:
    """The shipped cascade through the serving path on every set it was never fitted on: the CIFAKE test split (the
    thumbnail route), the real_photos test split, camera_photos_real and realorai_dev. Reports, plots and a summary
    in `--out`; the modern sources are judged by `cross-source` (each held out in turn)."""
    from .evaluate import OUTCOME_KEYS, evaluate, public_report, write_plots, write_report
    from .photo_path import photo_sets

    cifake = folder_images(
        args.shared / "datasets" / "cifake_sd14", source="cifake", limit_per_class=args.cifake_per_class, seed=args.seed
    )
    _, _, cifake_test = stratified_split(cifake, seed=args.seed)  # the split the thumbnail expert was tested on
    # The real_photos test split of seed 0, the one train-photo-path always learns the rest of: another seed's test
    # split would hold photos the model trained on.
    _, evaluation = photo_sets(args.shared)
    sets = {"test_cifake": cifake_test, **evaluation}
    summary = {}
    for name, items in sets.items():
        report = evaluate(args.models, items, robustness=True)
        write_report(report, args.out / name)
        write_plots(report, args.out / name)
        clean = public_report(report)["clean"]
        summary[name] = {
            "n": report["n"],
            **{key: clean[key] for key in ("accuracy", "auroc", "false_positive_rate", "escalation_rate")},
            **{key: clean["outcomes"][key] for key in OUTCOME_KEYS if key in clean["outcomes"]},
            "robustness": report["robustness"],
        }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from .finetune import FinetuneConfig, finetune

    splits = default_training_sets(args.shared, cifake_per_class=args.cifake_per_class, seed=args.seed)
    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        num_workers=args.workers,
        seed=args.seed,
        version=args.version,
    )
    result = finetune(
        args.init, splits["train"], splits["val"], args.out, config, device=args.device, epochs_now=args.epochs_now
    )
    if result is None:
        print(f"stopped after {args.epochs_now} epoch(s); run the same command again to go on")
        return 0
    print(json.dumps({"checkpoint": str(args.out), "best_epoch": result["best_epoch"], "history": result["history"]}))
    return 0


def _cross_source(args: argparse.Namespace) -> int:
    from .photo_path import (
        RECIPE_COPIES,
        branches_with_head_c,
        branches_with_vit_views,
        cross_source_report,
        risk_coverage,
    )
    from .plots import write_cross_source_plots

    targets = _policy_targets(args)
    copies = tuple(args.copy or RECIPE_COPIES)
    branches = branches_with_head_c(branches_with_vit_views(args.vit_views), args.head_c, args.head_c_by)
    report = cross_source_report(
        args.shared, cache_dir=args.cache, targets=targets, copies=copies, branches=branches,
        invariance=_invariance(args),
    )  # fmt: skip
    report["branch_views"] = {name: [b.views, b.max_crops, b.canonical_side] for name, b in branches.items()}
    report["risk_coverage"] = risk_coverage(report["held_out_scores"])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        write_cross_source_plots(report, args.out)
    print(
        json.dumps(
            {key: report[key] for key in ("summary", "clean_real_rates", "resized_summary", "sources")},
            indent=2,
            default=str,
        )
    )
    return 0


def _pool_matched(args: argparse.Namespace) -> int:
    from .photo_path import pool_matched_set

    print(json.dumps(pool_matched_set(args.shared, args.out, seed=args.seed), indent=2))
    return 0


def _policy_targets(args: argparse.Namespace) -> PolicyTargets:
    from .photo_path import PolicyTargets

    return PolicyTargets(
        target_fpr=args.target_fpr,
        miss_rate=args.miss_rate,
        cnn_alone_fpr=args.cnn_alone_fpr,
        disagreement_share=args.disagreement_share,
        ai_point_copies=tuple(args.ai_point_copy or ()),
    )


def _head_c_grid(value: str) -> tuple[float, ...]:
    from .photo_path import HEAD_C_SEARCH

    if value == "search":
        return HEAD_C_SEARCH
    try:
        grid = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, or 'search'; got {value!r}") from None
    if not grid or min(grid) <= 0:
        raise argparse.ArgumentTypeError("every C must be above 0")
    return grid


def _invariance(args: argparse.Namespace) -> Invariance:
    from .photo_path import Invariance

    kinds = args.invariant_to or ["upload-like", "resized"]
    copies = tuple(kind for kind in kinds if kind != "real-pools")
    return Invariance(copies=copies, strength=args.invariance, real_pools="real-pools" in kinds)


def _train_photo_path(args: argparse.Namespace) -> int:
    from .photo_path import BRANCHES, RECIPE_COPIES, branches_with_head_c, train_photo_path
    from .thumbnail import THUMBNAIL_MAX_SIDE

    thumbnail = args.thumbnail if (args.thumbnail / "card.json").is_file() else None
    training = train_photo_path(
        args.shared,
        args.out,
        cache_dir=args.cache,
        thumbnail=thumbnail,
        thumbnail_max_side=THUMBNAIL_MAX_SIDE,
        version=args.version,
        targets=_policy_targets(args),
        exclude=frozenset(args.exclude_source),
        copies=tuple(args.copy or RECIPE_COPIES),
        invariance=_invariance(args),
        branches=branches_with_head_c(BRANCHES, args.head_c, args.head_c_by),
    )
    print(json.dumps({"checkpoint": str(args.out), **training}, indent=2))
    return 0


def _operating_points(args: argparse.Namespace) -> int:
    from .operating_points import operating_points

    saved = np.load(args.scores)
    names = [key.removesuffix("_labels") for key in saved.files if key.endswith("_labels")]
    scores = {name: (saved[f"{name}_labels"], saved[f"{name}_scores"]) for name in names}
    splits = default_training_sets(args.shared, cifake_per_class=args.cifake_per_class, seed=args.seed)
    rows = operating_points(scores, splits)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows, indent=2))
    return 0


def _hash_eval(args: argparse.Namespace) -> int:
    from .hash_eval import evaluate_hash_bank

    report = evaluate_hash_bank(args.data, limit_per_folder=args.limit_per_folder)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "false_match_examples"}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training")
    commands = parser.add_subparsers(dest="command", required=True)
    default = commands.add_parser("train-default", help="train one shipped default model from ../shared")
    default.add_argument("--model", choices=sorted(MODELS), default="cnn")
    default.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    default.add_argument("--out", type=Path, default=None, help="default: detector/models/default/<model>")
    default.add_argument("--cifake-per-class", type=int, default=10000)
    default.add_argument(
        "--train-cifake-per-class", type=int, default=None, help="fewer CIFAKE images in train only (same val/test)"
    )
    default.add_argument("--target-fpr", type=float, default=0.01, help="on validation photographs")
    default.add_argument("--version", default="0.1.0")
    default.add_argument("--cache", type=Path, default=REPO_ROOT / "var" / "cache")
    default.add_argument("--seed", type=int, default=0)
    default.set_defaults(handler=_train_default)

    tail = commands.add_parser("finetune-cnn", help="fine-tune the multi-scale CNN's last stages from its probe")
    tail.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    tail.add_argument("--init", type=Path, default=TRAIN_DIR / "cnn-probe")
    tail.add_argument("--out", type=Path, default=TRAIN_DIR / "cnn")
    tail.add_argument("--cifake-per-class", type=int, default=10000)
    tail.add_argument("--target-fpr", type=float, default=0.01, help="on validation photographs")
    tail.add_argument("--epochs", type=int, default=12)
    tail.add_argument("--version", default="0.2.0")
    tail.add_argument("--cache", type=Path, default=REPO_ROOT / "var" / "cache")
    tail.add_argument("--seed", type=int, default=0)
    tail.set_defaults(handler=_finetune_cnn)

    thumb = commands.add_parser("train-thumbnail", help="specialise the screen CNN on CIFAKE thumbnails")
    thumb.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    thumb.add_argument("--init", type=Path, default=TRAIN_DIR / "cnn", help="the CIFAKE-tuned CNN to start from")
    thumb.add_argument("--out", type=Path, default=TRAIN_DIR / "thumb")
    thumb.add_argument("--cifake-per-class", type=int, default=10000)
    thumb.add_argument("--epochs", type=int, default=5)
    thumb.add_argument("--version", default="0.3.0")
    thumb.add_argument("--seed", type=int, default=0)
    thumb.set_defaults(handler=_train_thumbnail)

    evaluation = commands.add_parser("evaluate", help="report a checkpoint on any real/ (+ fake/) folder")
    evaluation.add_argument("--data", type=Path, required=True, help="folder with real/ and/or fake/")
    evaluation.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model")
    evaluation.add_argument("--out", type=Path, default=None, help="write report.json and PNG plots here")
    evaluation.add_argument("--json", action="store_true")
    evaluation.add_argument("--no-robustness", action="store_true", help="skip the JPEG/downscale/upscale re-runs")
    evaluation.set_defaults(handler=_evaluate)

    shipped = commands.add_parser(
        "report-default", help="the shipped cascade through the serving path on the test split and extra sets"
    )
    shipped.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    shipped.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    shipped.add_argument("--cifake-per-class", type=int, default=10000)
    shipped.add_argument(
        "--seed", type=int, default=0, help="the seed the thumbnail expert was trained with (its CIFAKE test split)"
    )
    shipped.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "default")
    shipped.set_defaults(handler=_report_default)

    full = commands.add_parser("finetune", help="fine-tune every layer with upload-like augmentation (resumable)")
    full.add_argument("--init", type=Path, default=TRAIN_DIR / "cnn", help="checkpoint to start from")
    full.add_argument("--out", type=Path, required=True, help="checkpoint folder (also holds the resumable state)")
    full.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    full.add_argument("--cifake-per-class", type=int, default=2500)
    full.add_argument("--epochs", type=int, default=10)
    full.add_argument("--epochs-now", type=int, default=None, help="stop after this many epochs; rerun to resume")
    full.add_argument("--batch-size", type=int, default=32)
    full.add_argument("--lr", type=float, default=1e-4)
    full.add_argument("--workers", type=int, default=2, help="data-loading processes")
    full.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    full.add_argument("--version", default="0.3.0")
    full.add_argument("--seed", type=int, default=0)
    full.set_defaults(handler=_finetune)

    def policy_targets(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--target-fpr", type=float, default=0.01, help="share of real photos the fused path may tag AI"
        )
        command.add_argument(
            "--miss-rate", type=float, default=0.2, help="share of AI images it may call likely-real (the rest: review)"
        )
        command.add_argument(
            "--cnn-alone-fpr",
            type=float,
            default=0.0,
            help="share of real photos the CNN may tag AI without the ViT (default 0: every AI tag needs the fusion)",
        )
        command.add_argument(
            "--copy",
            action="append",
            choices=COPY_KINDS,
            default=None,
            help="copies of each training image to learn from (repeatable; default: upload-like)",
        )
        command.add_argument(
            "--ai-point-copy",
            action="append",
            choices=COPY_KINDS,
            default=None,
            help="copies of the training images whose real photos the AI-tag thresholds must also hold --target-fpr "
            "on, source-held-out (repeatable; default: none, as shipped)",
        )
        command.add_argument(
            "--disagreement-share",
            type=float,
            default=None,
            help="send to review the escalated images on which the models disagree most, this share of the training "
            "images at most (default: those 4 logits apart or more, as shipped; a share keeps its reach when a head's "
            "logit scale changes)",
        )
        command.add_argument(
            "--head-c",
            type=_head_c_grid,
            default=(0.05,),
            help="the heads' inverse L2 strength: one value (default 0.05, as shipped), a comma-separated grid, or "
            "'search' (0.0005-0.2) to choose each head's from by source-held-out AUROC of the training sources",
        )
        command.add_argument(
            "--head-c-by",
            choices=["within-source", "pooled"],
            default="within-source",
            help="with a grid: rank each C by the mean AUROC within each training source (default) or pooled",
        )
        command.add_argument(
            "--invariance",
            type=float,
            default=0.0,
            help="penalise the heads' weights along what re-encoding and shrinking change, this many times the ridge "
            "per (image, copy) pair (default 0: off)",
        )
        command.add_argument(
            "--invariant-to",
            action="append",
            choices=["upload-like", "resized", "real-pools"],
            default=None,
            help="what the heads should ignore: what these copies change, or which source a real photo came from "
            "(repeatable; default: both copies)",
        )

    photo = commands.add_parser(
        "train-photo-path",
        help="detector v2: heads on frozen CNN-crop and ViT features, stacking fusion, operating points (~40 min)",
    )
    photo.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    photo.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "var" / "models" / "photo-path",
        help="checkpoint folder; the shipped default is replaced only with --out detector/models/default",
    )
    photo.add_argument("--thumbnail", type=Path, default=DEFAULT_MODELS / "thumb", help="thumbnail expert to keep")
    photo.add_argument("--cache", type=Path, default=REPO_ROOT / "var" / "cache" / "photo")
    photo.add_argument("--version", default="1.0.0")
    photo.add_argument(
        "--exclude-source",
        action="append",
        default=[],
        help="leave this source out of training (repeatable), e.g. for a learning curve on it",
    )
    policy_targets(photo)
    photo.set_defaults(handler=_train_photo_path)

    matched = commands.add_parser(
        "pool-matched", help="a real/ + fake/ folder of every source with both classes, balanced within each source"
    )
    matched.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    matched.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "pool_matched")
    matched.add_argument("--seed", type=int, default=0)
    matched.set_defaults(handler=_pool_matched)

    cross = commands.add_parser(
        "cross-source",
        help="leave each shared modern source out in turn: AUROC, TPR at 1 %% FPR, caught / auto-tagged / real "
        "tagged AI / real to review (~60 min, features cached)",
    )
    cross.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    cross.add_argument("--cache", type=Path, default=REPO_ROOT / "var" / "cache" / "photo")
    cross.add_argument("--out", type=Path, default=None, help="write report.json and plots here")
    cross.add_argument(
        "--vit-views",
        choices=VIEW_KINDS,
        default="resize",
        help="what the ViT looks at: the resized image (as shipped) or the CNN's native-resolution crops",
    )
    policy_targets(cross)
    cross.set_defaults(handler=_cross_source)

    points = commands.add_parser(
        "operating-points", help="thresholds for target FPRs on validation photographs, from a run's saved scores"
    )
    points.add_argument("--scores", type=Path, default=REPO_ROOT / "var" / "cache" / "scores-cnn.npz")
    points.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    points.add_argument("--cifake-per-class", type=int, default=10000, help="as the run that saved the scores")
    points.add_argument("--seed", type=int, default=0)
    points.add_argument("--out", type=Path, default=None, help="write the JSON here")
    points.set_defaults(handler=_operating_points)

    hashes = commands.add_parser("hash-eval", help="PDQ bank: near-duplicate match rate and false matches, as JSON")
    hashes.add_argument("--data", type=Path, nargs="+", required=True, help="folders of images (searched recursively)")
    hashes.add_argument("--limit-per-folder", type=int, default=None)
    hashes.add_argument("--out", type=Path, default=None, help="write report.json here")
    hashes.set_defaults(handler=_hash_eval)

    args = parser.parse_args(argv)
    return args.handler(args)
