"""Detector v2's photo path, trained on frozen backbones: per-view features, linear heads, a stacking fusion fitted
on out-of-fold scores, and operating points read off those scores.

- The CNN (EfficientNet-Lite0 with texture statistics, `tf_efficientnet_lite0_texture`) looks at up to five 224-px
  crops at native resolution; its head is fitted on single crops and its image logit is the mean over the crops.
- The ViT (DINOv2 ViT-S/14, `vit_small_patch14_dinov2_multilayer`) looks at the whole image resized; its head reads
  the class and mean patch tokens of blocks 4, 8 and 12.
- Out-of-fold scores come from folds that hold out whole sources (GroupKFold), so the fusion and the operating points
  are fitted on scores of sources each head never saw, the situation they will meet in production.

Features are cached on disk per model, per view policy and per image list; every training image also contributes an
upload-like copy (JPEG recompression, downscaling), so the heads do not learn one pipeline's traces.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from tqdm import tqdm

from detector import ImageRejected, ModelCard, decode_image
from detector.cascade import Fusion, OperatingPoint, decision_score, distance_apart, escalate, label_for
from detector.onnx_scorer import OnnxScorer, model_key
from detector.registry import build_model
from detector.views import decode_side, model_views

from .datasets import LabelledImage, folder_images, stratified_split

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The grid `--head-c search` lets each head choose its inverse L2 strength from (`choose_head_c`), fixed before its
# first run. The shipped recipe keeps C=0.05 for both heads: choosing C this way lost held-out AUROC (README).
HEAD_C_SEARCH = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
HEAD_C_CRITERIA = ("within-source", "pooled")


@dataclass(frozen=True)
class BranchSpec:
    """What one model of the photo path is built from."""

    name: str
    architecture: str
    weights: str  # relative to shared/weights
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    views: str
    max_crops: int = 1
    canonical_side: int = 0
    c_grid: tuple[float, ...] = (0.05,)  # inverse L2 strengths of the head on standardised features (one: fixed)
    c_by: str = "within-source"  # how `choose_head_c` ranks them, when there are several
    input_size: int = 224

    def card(self, *, version: str, threshold: float = 0.5, **extra: Any) -> ModelCard:
        return ModelCard(
            name=self.name,
            version=version,
            architecture=self.architecture,
            input_size=self.input_size,
            mean=self.mean,
            std=self.std,
            views=self.views,
            max_crops=self.max_crops,
            canonical_side=self.canonical_side,
            threshold=threshold,
            **extra,
        )


BRANCHES = {
    "cnn": BranchSpec(
        name="effnet-lite0-texture-crops",
        architecture="tf_efficientnet_lite0_texture",
        weights="efficientnet_lite0/tf_efficientnet_lite0.timm.safetensors",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        views="native_crops",
        max_crops=5,
        canonical_side=512,
    ),
    "vit": BranchSpec(
        name="dinov2-s14-multilayer",
        architecture="vit_small_patch14_dinov2_multilayer",
        weights="vit_small_patch14_dinov2/vit_small_patch14_dinov2.img224.fp16.safetensors",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        views="resize",
    ),
}


def branches_with_vit_views(views: str) -> dict[str, BranchSpec]:
    """The recipe's branches with the ViT looking at `views`: "resize" (as shipped) or "native_crops", the CNN's
    crops (same canonical side, same number), for comparing the two with `cross-source --vit-views`."""
    if views == BRANCHES["vit"].views:
        return BRANCHES
    cnn = BRANCHES["cnn"]
    crops = replace(BRANCHES["vit"], views=views, max_crops=cnn.max_crops, canonical_side=cnn.canonical_side)
    return {**BRANCHES, "vit": crops}


def branches_with_head_c(
    branches: dict[str, BranchSpec], grid: tuple[float, ...], by: str = "within-source"
) -> dict[str, BranchSpec]:
    """`branches` with every head's C chosen from `grid` `by` that criterion (one value: that C, fixed)."""
    return {name: replace(spec, c_grid=tuple(grid), c_by=by) for name, spec in branches.items()}


def photo_sets(shared: Path, *, seed: int = 0) -> tuple[list[LabelledImage], dict[str, list[LabelledImage]]]:
    """(training images, evaluation-only sets) from ../shared.

    Training: every source of modern_mix_norm512 and modern_train_2026 ("modern_mix:<tag>", "modern_train:<tag>") and
    the train+val part of real_photos. Evaluation only: the real_photos test part (the split every earlier model used),
    camera_photos_real and realorai_dev, which nothing is ever fitted on.
    """
    datasets = shared / "datasets"
    train: list[LabelledImage] = []
    for item in folder_images(datasets / "modern_mix_norm512", source="modern_mix"):
        train.append(LabelledImage(item.path, item.label, f"modern_mix:{item.path.name.split('__', 1)[0]}"))
    for folder in sorted(p for p in (datasets / "modern_train_2026").iterdir() if p.is_dir()):
        train += folder_images(folder, source=f"modern_train:{folder.name}")
    photos_train, photos_val, photos_test = stratified_split(
        folder_images(datasets / "real_photos", source="real_photos"), seed=seed
    )
    train += photos_train + photos_val
    evaluation = {
        "real_photos_test": photos_test,
        "camera_photos_real": folder_images(datasets / "camera_photos_real", source="camera_photos_real"),
        "realorai_dev": folder_images(datasets / "realorai_dev", source="realorai_dev"),
    }
    return train, evaluation


def upload_like(image: Image.Image, rng: random.Random) -> Image.Image:
    """What a platform does to an upload: often a downscale, always a JPEG re-encode at some quality."""
    if rng.random() < 0.5:
        scale = rng.uniform(0.5, 0.9)
        size = (max(224, round(image.width * scale)), max(224, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(60, 95))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


_RESAMPLING = (Image.Resampling.BOX, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)


def resized_like(image: Image.Image, rng: random.Random) -> Image.Image:
    """A real and an AI image both shrunk the way sites and apps do (0.35-0.75x, any common filter), then re-encoded:
    downscaling makes a photograph's pixels crisper, which texture statistics would otherwise take for a generator's
    polish."""
    scale = rng.uniform(0.35, 0.75)
    size = (max(112, round(image.width * scale)), max(112, round(image.height * scale)))
    image = image.resize(size, rng.choice(_RESAMPLING))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(70, 95))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def polished_like(image: Image.Image, rng: random.Random) -> Image.Image:
    """What a photographer's editing does to a photograph: noise reduction, half the time a shallow depth of field
    (everything outside an elliptical subject blurred, feathered), sharpening, a contrast curve and richer colour, a
    high-quality re-encode. Learnt with the image's own label, so that polish alone stops meaning "AI": modern real
    photographs are edited like this, and the old photo pools the recipe learns "real" from mostly are not."""
    import cv2

    array = cv2.bilateralFilter(np.asarray(image, dtype=np.uint8), 5, rng.uniform(15, 40), 5).astype(np.float32)
    height, width = array.shape[:2]
    if rng.random() < 0.5:
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        centre = (rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width)
        radii = (rng.uniform(0.2, 0.4) * height, rng.uniform(0.15, 0.35) * width)
        distance = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2
        far = np.clip((distance - 1.0) / 1.5, 0.0, 1.0)[..., None]
        array = array * (1 - far) + cv2.GaussianBlur(array, (0, 0), rng.uniform(2.0, 6.0)) * far
    array = array + rng.uniform(0.3, 0.8) * (array - cv2.GaussianBlur(array, (0, 0), 1.0))
    unit = np.clip(array / 255.0, 0.0, 1.0)
    # An S-curve: darker below mid-grey, brighter above, black and white kept (monotone for a strength <= 1).
    unit = unit - rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * unit) / (2 * np.pi)
    grey = unit.mean(axis=2, keepdims=True)
    unit = grey + rng.uniform(1.05, 1.3) * (unit - grey)
    edited = Image.fromarray((np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    buffer = io.BytesIO()
    edited.save(buffer, format="JPEG", quality=rng.randint(88, 95))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


# Copies of an image the photo path can learn from or be tested on; "upload-like" is the recipe's, "resized" the
# robustness check of cross-source (learning from it too was measured and not adopted: README), "polished" an
# experiment (README). The cache keys of "upload-like" predate the others.
AUGMENTATIONS = {"upload-like": upload_like, "resized": resized_like, "polished": polished_like}
RECIPE_COPIES = ("upload-like",)
_CACHE_KEY = {None: False, "upload-like": True}


@dataclass
class ImageFeatures:
    """The mean head-input feature vector over each image's views. A linear head's logit of that mean is the mean of
    its view logits, which is what serving computes, so fitting on it is fitting the served model."""

    features: np.ndarray  # (images, D) float32
    labels: np.ndarray  # (images,) 0 real / 1 AI
    sources: np.ndarray  # (images,) str
    paths: np.ndarray  # (images,) str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> ImageFeatures:
        return ImageFeatures(self.features[mask], self.labels[mask], self.sources[mask], self.paths[mask])

    @classmethod
    def concat(cls, parts: list[ImageFeatures]) -> ImageFeatures:
        return cls(
            *(
                np.concatenate([getattr(part, name) for part in parts])
                for name in ("features", "labels", "sources", "paths")
            )
        )


def load_branch(spec: BranchSpec, shared: Path, *, version: str = "0") -> tuple[torch.nn.Module, ModelCard]:
    """The branch's network with its frozen backbone weights from ../shared (head untrained) and its card."""
    model = build_model(spec.architecture)
    # Through float16 and back: checkpoints store backbones in float16, so training sees the weights serving loads.
    state = {key: value.half().float() for key, value in load_file(str(shared / "weights" / spec.weights)).items()}
    if hasattr(model, "load_pretrained") and not hasattr(model, "blocks"):
        model.load_pretrained(state)
    else:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) != {"head.weight", "head.bias"}:
            raise ValueError(f"{spec.weights} does not fit {spec.architecture}: {missing} {unexpected}")
    # A zero head, not a random one: the feature cache is keyed by every weight, the head's included.
    with torch.no_grad():
        model.get_classifier().weight.zero_()
        model.get_classifier().bias.zero_()
    return model.eval(), spec.card(version=version)


def image_features(
    module: torch.nn.Module,
    card: ModelCard,
    items: list[LabelledImage],
    *,
    cache_dir: Path | None,
    augmented: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
    desc: str = "",
) -> ImageFeatures:
    """Head-input features of the views the serving path scores, through the ONNX graph it runs, averaged per image.

    Images the service would reject are left out. `augmented` (a name in AUGMENTATIONS) scores that copy of each
    image instead.
    """
    augment = AUGMENTATIONS[augmented] if augmented else None
    key = hashlib.sha256(
        json.dumps(
            [
                model_key(module, card),
                card.views,
                card.max_crops,
                card.canonical_side,
                _CACHE_KEY.get(augmented, augmented),
                seed,
            ]
            + [f"{item.path}:{item.path.stat().st_size}:{item.label}:{item.source}" for item in items]
        ).encode()
    ).hexdigest()[:20]
    cache_file = Path(cache_dir) / f"features-{card.name}-{key}.npz" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as cached:
            return ImageFeatures(cached["features"], cached["labels"], cached["sources"], cached["paths"])
    scorer = OnnxScorer(module, card, threads=torch.get_num_threads(), cache_dir=cache_dir, output="features")
    means: list[np.ndarray] = []
    kept: list[LabelledImage] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            rows = scorer.logits(np.concatenate(pending))
            bounds = np.cumsum([len(views) for views in pending])[:-1]
            means.extend(part.mean(0) for part in np.split(rows, bounds))
            pending.clear()

    for item in tqdm(items, desc=desc or card.name, unit="img", leave=False):
        try:
            image = decode_image(item.path.read_bytes(), min_side=decode_side(card))
        except ImageRejected:
            continue
        if augment is not None:
            image = augment(image, random.Random(f"{seed}:{item.path.name}"))
        kept.append(item)
        pending.append(model_views(image, card))
        if sum(len(views) for views in pending) >= batch_size:
            flush()
    flush()
    result = ImageFeatures(
        np.asarray(means, dtype=np.float32).reshape(len(kept), -1),
        np.asarray([item.label for item in kept], dtype=np.int64),
        np.asarray([item.source for item in kept]),
        np.asarray([str(item.path) for item in kept]),
    )
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_file, **{name: getattr(result, name) for name in ("features", "labels", "sources", "paths")})
    return result


@dataclass(frozen=True)
class LinearHead:
    weight: np.ndarray
    bias: float

    def logits(self, data: ImageFeatures) -> np.ndarray:
        return data.features.astype(np.float64) @ self.weight + self.bias


def copy_differences(features: ImageFeatures, copies: tuple[str, ...]) -> ImageFeatures:
    """For every image that has a copy of these kinds among `features`, the copy's features minus the image's own:
    what a re-encode or a downscale changes and the label must not depend on. Rows keep the image's label and
    source, so a fold that holds out a source drops its pairs too."""
    paths = features.paths.astype(str)
    row_of = {path: row for row, path in enumerate(paths) if AUGMENTED_SUFFIX not in path}
    copy_rows, clean_rows = [], []
    for kind in copies:
        suffix = f"{AUGMENTED_SUFFIX}-{kind}"
        for row in np.flatnonzero(np.char.endswith(paths, suffix)):
            clean = row_of.get(paths[row][: -len(suffix)])
            if clean is not None:
                copy_rows.append(row)
                clean_rows.append(clean)
    copy_rows, clean_rows = np.asarray(copy_rows, dtype=np.int64), np.asarray(clean_rows, dtype=np.int64)
    return ImageFeatures(
        features.features[copy_rows] - features.features[clean_rows],
        features.labels[clean_rows],
        features.sources[clean_rows],
        features.paths[copy_rows],
    )


@dataclass(frozen=True)
class Invariance:
    """A head that should not move when an upload is re-encoded or shrunk: its weights are penalised along the
    directions such copies change, `strength` times the ridge that every weight pays, per pair of (image, copy).
    With `real_pools`, also along what sets one source's real photographs apart from the others' (each source's mean
    offset, weighted by its number of real images): which photo pool a real image came from is not evidence.

    Why: downscaling makes a photograph's pixels crisper and a linear head on texture statistics reads that as a
    generator's polish; the upload-like copies teach the labels, these pairs teach what the label must ignore. Old
    Flickr photos against 2025 polish is the same shortcut between pools.
    """

    copies: tuple[str, ...] = ()
    strength: float = 0.0
    real_pools: bool = False
    rank: int = 128  # directions of the copies' changes kept (the rest carry little of their variance)

    def __bool__(self) -> bool:
        return (bool(self.copies) or self.real_pools) and self.strength > 0


MIN_POOL_REALS = 5


def _real_pool_offsets(data: ImageFeatures) -> np.ndarray:
    """sqrt(n) * (the source's mean - the mean of every real image), for each source with real images."""
    real = data.labels == 0
    overall = data.features[real].mean(0, dtype=np.float64)
    rows = [
        np.sqrt(count) * (data.features[real & (data.sources == source)].mean(0, dtype=np.float64) - overall)
        for source, count in zip(*np.unique(data.sources[real], return_counts=True), strict=True)
        if count >= MIN_POOL_REALS
    ]
    return np.asarray(rows).reshape(len(rows), data.features.shape[1])


def _invariance_whitening(
    changes: np.ndarray, *, c: float, invariance: Invariance
) -> Callable[[np.ndarray], np.ndarray]:
    """Right-multiplication by A^-1/2 = I - V diag(1 - (1 + g s^2)^-1/2) V', V and s the top singular directions and
    values of the standardised changes, g = strength * c (a pair weighs like an image does in the loss)."""
    from sklearn.utils.extmath import randomized_svd

    rank = min(invariance.rank, *changes.shape)
    _, singular, directions = randomized_svd(changes, rank, random_state=0)
    shrink = 1.0 - 1.0 / np.sqrt(1.0 + invariance.strength * c * singular**2)
    return lambda matrix: matrix - ((matrix @ directions.T) * shrink) @ directions


def fit_head(
    data: ImageFeatures, *, c: float, nuisance: ImageFeatures | None = None, invariance: Invariance = Invariance()
) -> LinearHead:
    """Class-balanced logistic regression. Standardisation is folded into the weights, so serving needs only the
    linear layer.

    With an `invariance`, the L2 penalty becomes w'(I + strength * c * D'D)w on standardised features, D's rows the
    `nuisance` pairs (copy minus image, `copy_differences`) and, with `real_pools`, the real-pool offsets: fitting
    plain logistic regression on X A^-1/2 and mapping the weights back by A^-1/2 (A from the top `rank` singular
    directions of D) is exactly that penalty.
    """
    from sklearn.linear_model import LogisticRegression

    mean = data.features.mean(0, dtype=np.float64)
    scale = np.maximum(data.features.std(0, dtype=np.float64), 1e-3)
    standardised = (data.features - mean) / scale

    changes = []
    if invariance and nuisance is not None and len(nuisance):
        changes.append(nuisance.features)
    if invariance and invariance.real_pools:
        changes.append(_real_pool_offsets(data))
    whiten = (
        _invariance_whitening(np.concatenate(changes) / scale, c=c, invariance=invariance)
        if changes
        else lambda matrix: matrix
    )
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit(whiten(standardised), data.labels)
    weight = whiten(model.coef_[0][None, :])[0] / scale
    return LinearHead(weight, float(model.intercept_[0] - (weight * mean).sum()))


@dataclass(frozen=True)
class SourceHeldOutHeads:
    """Heads each fitted without one group of the sources (`held`): an image is scored by the head that did not see
    its source."""

    held: tuple[np.ndarray, ...]
    heads: tuple[LinearHead, ...]

    def logits(self, images: ImageFeatures) -> np.ndarray:
        """Each image's logit from the head fitted without its source; the training images themselves (out of fold)
        or copies of them that the heads never learnt from."""
        if not np.isin(images.sources, np.concatenate(self.held)).all():
            raise ValueError("every scored image must come from one of the sources the heads learn from")
        logits = np.zeros(len(images))
        for sources, head in zip(self.held, self.heads, strict=True):
            rows = np.isin(images.sources, sources)
            logits[rows] = head.logits(images.subset(rows))
        return logits


def source_held_out_heads(
    data: ImageFeatures,
    *,
    c: float,
    folds: int = 4,
    nuisance: ImageFeatures | None = None,
    invariance: Invariance = Invariance(),
) -> SourceHeldOutHeads:
    """Heads on `folds` groups of these images' sources, each without its group's images (nor their copy pairs)."""
    from sklearn.model_selection import GroupKFold

    held, heads = [], []
    splits = GroupKFold(n_splits=min(folds, len(np.unique(data.sources))))
    for train, rows in splits.split(np.arange(len(data)), groups=data.sources):
        pairs = None if nuisance is None else nuisance.subset(np.isin(nuisance.sources, data.sources[train]))
        heads.append(fit_head(data.subset(train), c=c, nuisance=pairs, invariance=invariance))
        held.append(np.unique(data.sources[rows]))
    return SourceHeldOutHeads(tuple(held), tuple(heads))


def out_of_fold_logits(
    data: ImageFeatures,
    *,
    c: float,
    folds: int = 4,
    nuisance: ImageFeatures | None = None,
    invariance: Invariance = Invariance(),
) -> np.ndarray:
    """Each image's logit from a head fitted without any image of its source (nor its source's copy pairs)."""
    heads = source_held_out_heads(data, c=c, folds=folds, nuisance=nuisance, invariance=invariance)
    return heads.logits(data)


@dataclass(frozen=True)
class HeadChoice:
    """The C a head is fitted with, the out-of-fold logits at that C (and the source-held-out heads that gave them),
    and each tried C's out-of-fold AUROC."""

    c: float
    oof: np.ndarray
    auroc_by_c: dict[float, float]
    held_out_heads: SourceHeldOutHeads


def per_source_auroc(labels: np.ndarray, sources: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC of every source that holds both AI images and real photos."""
    from .metrics import auroc

    return {
        source: auroc(labels[sources == source], scores[sources == source])
        for source in sorted(set(sources.tolist()))
        if len(set(labels[sources == source].tolist())) == 2
    }


def within_source_auroc(labels: np.ndarray, sources: np.ndarray, scores: np.ndarray) -> float:
    """The mean of `per_source_auroc`: how well AI is told from real within a photo pool, not which pool an image
    came from. Pooled AUROC when no source has both classes."""
    from .metrics import auroc

    per_source = per_source_auroc(labels, sources, scores)
    return float(np.mean(list(per_source.values()))) if per_source else float(auroc(labels, scores))


def choose_head_c(
    data: ImageFeatures,
    grid: tuple[float, ...],
    *,
    by: str = "within-source",
    nuisance: ImageFeatures | None = None,
    invariance: Invariance = Invariance(),
) -> HeadChoice:
    """The grid's C whose source-held-out logits (`out_of_fold_logits`) rank these images best, `by` the mean
    `within_source_auroc` or by the AUROC of all images pooled; a tie goes to the smaller C, the stronger penalty.
    Only `data` is looked at, so inside a leave-one-source-out fold the held-out source plays no part in the choice.

    Pooled AUROC also rewards ranking whole sources (one photo pool's reals below another's AI images), which the
    strongest penalties do best: chosen by it, C went to the grid's edge and held-out sources lost AUROC (README)."""
    from .metrics import auroc

    if by not in HEAD_C_CRITERIA:
        raise ValueError(f"unknown criterion {by!r}; expected one of {HEAD_C_CRITERIA}")
    heads = {c: source_held_out_heads(data, c=c, nuisance=nuisance, invariance=invariance) for c in sorted(grid)}
    logits = {c: held_out.logits(data) for c, held_out in heads.items()}
    if len(logits) == 1:
        ((c, oof),) = logits.items()
        return HeadChoice(c, oof, {}, heads[c])
    if by == "pooled":
        scores = {c: float(auroc(data.labels, oof)) for c, oof in logits.items()}
    else:
        scores = {c: within_source_auroc(data.labels, data.sources, oof) for c, oof in logits.items()}
    best = max(scores, key=scores.__getitem__)
    return HeadChoice(best, logits[best], scores, heads[best])


def sigmoid(value: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(value, dtype=np.float64)))


@dataclass(frozen=True)
class FusionFit:
    cnn_weight: float
    vit_weight: float
    bias: float

    def logits(self, cnn_logit: np.ndarray, vit_logit: np.ndarray) -> np.ndarray:
        return self.cnn_weight * cnn_logit + self.vit_weight * vit_logit + self.bias


def fit_fusion(cnn_logit: np.ndarray, vit_logit: np.ndarray, labels: np.ndarray) -> FusionFit:
    """Stacking: a two-weight logistic regression on out-of-fold logits (class-balanced)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, class_weight="balanced").fit(np.c_[cnn_logit, vit_logit], labels)
    return FusionFit(float(model.coef_[0][0]), float(model.coef_[0][1]), float(model.intercept_[0]))


@dataclass(frozen=True)
class PolicyTargets:
    """What the operating points are read for, on out-of-fold scores of training sources."""

    # Share of real photographs the photo path may tag AI (its `ai` points), and share of AI images it may call
    # real (its `real` points; the images between go to review).
    target_fpr: float = 0.01
    miss_rate: float = 0.2
    # The ViT sees the images the CNN ranks among this top share of real photographs (where an AI tag is at stake)...
    escalation_share: float = 0.05
    # ...up to where the CNN alone is sure: above the band it tags AI without the ViT, for this few real photos.
    # 0: never; the fusion confirms every AI tag. Measured source-held-out on resized copies, the CNN alone (at 0.002)
    # tagged 14 of 437 real photos AI and the fusion 6, at the same catch rate (README, "Resized uploads").
    cnn_alone_fpr: float = 0.0
    # Abstain on disagreement: escalated images on opposite sides of each model's own `target_fpr` threshold, this far
    # apart in logits (None: never)...
    disagreement: float | None = 4.0
    # ...or, when set, as far apart as this share of the training images at most (`disagreement_distance`). A distance
    # in logits holds only for heads of one scale: kept while C changed, it stopped firing (README). 1.1.0's 4 logits
    # reach 3.51 % of its training images; as a share, that moved one resized real photo of 437 held out (README).
    disagreement_share: float | None = None
    # Copies of the training images (`AUGMENTATIONS`; the heads never learn from them) whose real photos the `ai`
    # points must also hold `target_fpr` on: each is the stricter of the point read on the training images and the
    # one read on these copies, source-held-out. "resized" (a shrunk photograph looks crisper) was measured and not
    # adopted: resized held-out real photos tagged AI 6 -> 5 of 437 for a third fewer AI images auto-tagged (README).
    ai_point_copies: tuple[str, ...] = ()


def quantile_threshold(scores: np.ndarray, share_at_or_above: float) -> float:
    """The probability at or above which `share_at_or_above` of these scores lie."""
    return float(np.quantile(scores, 1.0 - share_at_or_above)) if len(scores) else 0.5


def operating_point(
    labels: np.ndarray, logits: np.ndarray, targets: PolicyTargets, *, real_copy_logits: np.ndarray | None = None
) -> OperatingPoint:
    """`ai` at `target_fpr` of the real photographs (and, when given, at `target_fpr` of their copies' logits too: the
    stricter of both); `real` where `miss_rate` of the AI images lie below."""
    probabilities = sigmoid(logits)
    ai = quantile_threshold(probabilities[labels == 0], targets.target_fpr)
    if real_copy_logits is not None and len(real_copy_logits):
        ai = max(ai, quantile_threshold(sigmoid(real_copy_logits), targets.target_fpr))
    return OperatingPoint(min(quantile_threshold(probabilities[labels == 1], 1.0 - targets.miss_rate), ai), ai)


def disagreement_distance(
    cnn_logit: np.ndarray,
    vit_logit: np.ndarray,
    *,
    band: tuple[float, float],
    cnn_threshold: float,
    vit_threshold: float,
    share: float | None,
) -> float | None:
    """The distance apart (`Fusion.disagree`) at or beyond which `share` of these images disagree, at most (ties
    aside); None, never, when the share allows no image."""
    if share is None:
        return None
    apart = distance_apart(cnn_logit, vit_logit, cnn_threshold, vit_threshold)[escalate(sigmoid(cnn_logit), band)]
    distances = np.sort(apart[~np.isnan(apart)])
    allowed = int(np.floor(share * len(cnn_logit) + 1e-9))
    if allowed == 0:
        return None
    return float(distances[-allowed]) if allowed <= len(distances) else 0.0


def escalation_band(labels: np.ndarray, cnn_logit: np.ndarray, targets: PolicyTargets) -> tuple[float, float]:
    real = sigmoid(cnn_logit[labels == 0])
    hi = quantile_threshold(real, targets.cnn_alone_fpr) if targets.cnn_alone_fpr > 0 else 1.0
    return min(quantile_threshold(real, targets.escalation_share), hi), hi


@dataclass(frozen=True)
class PhotoPath:
    """A fitted photo path: both heads, the fusion, the CNN's band and the fused operating point, and the
    out-of-fold logits they were read from."""

    cnn_head: LinearHead
    vit_head: LinearHead
    fusion: FusionFit
    band: tuple[float, float]
    cnn_point: OperatingPoint
    point: OperatingPoint
    cnn_threshold: float  # each model alone at `target_fpr`, for the disagreement rule
    vit_threshold: float
    disagreement: float | None
    oof: dict[str, np.ndarray]
    head_c: dict[str, HeadChoice]

    def scores(self, cnn: ImageFeatures, vit: ImageFeatures) -> dict[str, np.ndarray]:
        """What serving decides for these images: per-model logits, the escalated mask, the decision score and
        whether it abstains. The ViT features may cover the escalated images only (any order is checked)."""
        cnn_logit, vit_logit = self.cnn_head.logits(cnn), self.vit_head.logits(vit)
        if not np.array_equal(cnn.paths, vit.paths):
            raise ValueError("CNN and ViT features must describe the same images in the same order")
        fusion = self.serving_fusion()
        escalated = escalate(sigmoid(cnn_logit), self.band)
        fused = fusion.probability(cnn_logit, vit_logit)
        score = np.where(
            escalated, decision_score(fused, self.point), decision_score(sigmoid(cnn_logit), self.cnn_point)
        )
        abstained = escalated & fusion.disagree(cnn_logit, vit_logit)
        return {"cnn": cnn_logit, "vit": vit_logit, "escalated": escalated, "score": score, "abstained": abstained}

    def serving_fusion(self) -> Fusion:
        return Fusion(
            cnn_weight=self.fusion.cnn_weight,
            vit_weight=self.fusion.vit_weight,
            bias=self.fusion.bias,
            point=self.point,
            cnn_point=self.cnn_point,
            disagreement=self.disagreement,
            cnn_threshold=self.cnn_threshold,
            vit_threshold=self.vit_threshold,
        )


def fit_photo_path(
    cnn: ImageFeatures,
    vit: ImageFeatures,
    targets: PolicyTargets = PolicyTargets(),
    *,
    branches: dict[str, BranchSpec] = BRANCHES,
    nuisance: dict[str, ImageFeatures] | None = None,
    invariance: Invariance = Invariance(),
    real_copies: dict[str, ImageFeatures] | None = None,
) -> PhotoPath:
    """Heads on all of these images, each with the C of its branch's grid that its source-held-out logits rank best;
    fusion and operating points on those logits. `nuisance`: each branch's copy pairs (`copy_differences`) for an
    `invariance`; only the pairs of these images' sources are used. `real_copies`: each branch's features of copies
    of these images' real photos (`targets.ai_point_copies`), scored source-held-out for the `ai` points; only those
    of these images' sources are used."""
    if not np.array_equal(cnn.paths, vit.paths):
        raise ValueError("CNN and ViT features must describe the same images in the same order")
    labels = cnn.labels
    pairs = {
        name: None if nuisance is None else nuisance[name].subset(np.isin(nuisance[name].sources, cnn.sources))
        for name in ("cnn", "vit")
    }
    data = {"cnn": cnn, "vit": vit}
    choice = {
        name: choose_head_c(
            data[name], branches[name].c_grid, by=branches[name].c_by, nuisance=pairs[name], invariance=invariance
        )
        for name in ("cnn", "vit")
    }
    oof_cnn, oof_vit = choice["cnn"].oof, choice["vit"].oof
    fusion = fit_fusion(oof_cnn, oof_vit, labels)
    real = labels == 0
    heads = {
        name: fit_head(data[name], c=choice[name].c, nuisance=pairs[name], invariance=invariance)
        for name in ("cnn", "vit")
    }
    band = escalation_band(labels, oof_cnn, targets)
    cnn_threshold = quantile_threshold(sigmoid(oof_cnn[real]), targets.target_fpr)
    vit_threshold = quantile_threshold(sigmoid(oof_vit[real]), targets.target_fpr)
    copy_cnn = copy_fused = None
    if real_copies is not None:
        scored = {
            name: features.subset(np.isin(features.sources, cnn.sources) & (features.labels == 0))
            for name, features in real_copies.items()
        }
        if not np.array_equal(scored["cnn"].paths, scored["vit"].paths):
            raise ValueError("CNN and ViT copies must describe the same images in the same order")
        # Scored by the heads the out-of-fold logits came from: the copies' sources are the training images'.
        copy_logits = {name: choice[name].held_out_heads.logits(scored[name]) for name in ("cnn", "vit")}
        copy_cnn, copy_fused = copy_logits["cnn"], fusion.logits(copy_logits["cnn"], copy_logits["vit"])
    return PhotoPath(
        cnn_head=heads["cnn"],
        vit_head=heads["vit"],
        fusion=fusion,
        band=band,
        cnn_point=operating_point(labels, oof_cnn, targets, real_copy_logits=copy_cnn),
        point=operating_point(labels, fusion.logits(oof_cnn, oof_vit), targets, real_copy_logits=copy_fused),
        cnn_threshold=cnn_threshold,
        vit_threshold=vit_threshold,
        disagreement=targets.disagreement
        if targets.disagreement_share is None
        else disagreement_distance(
            oof_cnn,
            oof_vit,
            band=band,
            cnn_threshold=cnn_threshold,
            vit_threshold=vit_threshold,
            share=targets.disagreement_share,
        ),
        oof={"labels": labels, "cnn": oof_cnn, "vit": oof_vit, "sources": cnn.sources},
        head_c=choice,
    )


AUGMENTED_SUFFIX = "#copy"


def branch_features(
    shared: Path,
    items: list[LabelledImage],
    *,
    cache_dir: Path | None,
    augment: bool,
    branches: dict[str, BranchSpec] = BRANCHES,
    augmentations: tuple[str, ...] = RECIPE_COPIES,
) -> dict[str, ImageFeatures]:
    """Both branches' features of `items`, aligned; with `augment`, each of `augmentations`' copies of every image
    follows (paths suffixed `#copy-<name>`)."""
    result = {}
    for name, spec in branches.items():
        module, card = load_branch(spec, shared)
        parts = [image_features(module, card, items, cache_dir=cache_dir, desc=f"{name} features")]
        for augmentation in augmentations if augment else ():
            copies = image_features(
                module, card, items, cache_dir=cache_dir, augmented=augmentation, desc=f"{name} {augmentation}"
            )
            copies.paths = np.char.add(copies.paths.astype(str), f"{AUGMENTED_SUFFIX}-{augmentation}")
            parts.append(copies)
        result[name] = ImageFeatures.concat(parts)
    if not np.array_equal(result["cnn"].paths, result["vit"].paths):
        raise ValueError("the branches kept different images")
    return result


def _copy_rows(features: ImageFeatures, copies: tuple[str, ...]) -> np.ndarray:
    """The rows of these kinds of copies."""
    paths = features.paths.astype(str)
    rows = np.zeros(len(paths), dtype=bool)
    for copy in copies:
        rows |= np.char.endswith(paths, f"{AUGMENTED_SUFFIX}-{copy}")
    return rows


def _learning_rows(features: ImageFeatures, copies: tuple[str, ...]) -> np.ndarray:
    """The clean images and their `copies`: the rows a head learns labels from."""
    return (np.char.find(features.paths.astype(str), AUGMENTED_SUFFIX) < 0) | _copy_rows(features, copies)


def _real_copies(everything: dict[str, ImageFeatures], copies: tuple[str, ...]) -> dict[str, ImageFeatures] | None:
    """Each branch's features of the real photos' `copies` (None when it names none)."""
    if not copies:
        return None
    rows = _copy_rows(everything["cnn"], copies) & (everything["cnn"].labels == 0)
    return {name: features.subset(rows) for name, features in everything.items()}


def _heads_inputs(
    everything: dict[str, ImageFeatures], copies: tuple[str, ...], invariance: Invariance
) -> tuple[dict[str, ImageFeatures], dict[str, ImageFeatures] | None]:
    """Each branch's rows to learn labels from, and its copy pairs for `invariance` (None when it names no copies)."""
    pool = {name: features.subset(_learning_rows(features, copies)) for name, features in everything.items()}
    if not invariance.copies:
        return pool, None
    return pool, {name: copy_differences(features, invariance.copies) for name, features in everything.items()}


def evaluate_scores(labels: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-branch and system AUROC, TPR at 1 % FPR on this set's own real photos, and the outcome rates."""
    from .metrics import auroc, outcome_rates

    predicted = [
        label_for(float(s), abstained=bool(a)) for s, a in zip(scores["score"], scores["abstained"], strict=True)
    ]
    report = outcome_rates(labels, np.asarray(predicted))
    report["escalated"] = float(scores["escalated"].mean())
    report["abstained"] = float(scores["abstained"].mean())
    if 0 < labels.sum() < len(labels):
        report["auroc"] = auroc(labels, scores["score"])
        report["auroc_cnn"] = auroc(labels, scores["cnn"])
        report["auroc_vit"] = auroc(labels, scores["vit"])
        reals = scores["score"][labels == 0]
        cut = np.quantile(reals, 0.99, method="higher")
        report["tpr_at_1pct_fpr"] = float((scores["score"][labels == 1] > cut).mean())
    return report


def cross_source_report(
    shared: Path,
    *,
    cache_dir: Path | None,
    targets: PolicyTargets = PolicyTargets(),
    branches: dict[str, BranchSpec] = BRANCHES,
    copies: tuple[str, ...] = RECIPE_COPIES,
    invariance: Invariance = Invariance(),
) -> dict:
    """Leave one source out, for every training source with AI images or real photos of its own: the whole recipe
    (heads, fusion, operating points, learning from `copies` of each image) refitted without it, then its clean
    images scored, and its resized copies (`resized_like`: shrunk 0.35-0.75x, re-encoded) as the robustness check.
    realorai_dev, never trained on, is scored by the recipe fitted on everything, as are the real-photo sets kept
    for evaluation."""
    train_items, evaluation = photo_sets(shared)
    kinds = tuple(dict.fromkeys((*copies, "resized", *invariance.copies, *targets.ai_point_copies)))
    everything = branch_features(shared, train_items, cache_dir=cache_dir, augment=True, branches=branches,
                                 augmentations=kinds)  # fmt: skip
    paths = everything["cnn"].paths.astype(str)
    clean = np.char.find(paths, AUGMENTED_SUFFIX) < 0
    resized = np.char.endswith(paths, f"{AUGMENTED_SUFFIX}-resized")
    pool, nuisance = _heads_inputs(everything, copies, invariance)
    fit = {
        "branches": branches,
        "nuisance": nuisance,
        "invariance": invariance,
        "real_copies": _real_copies(everything, targets.ai_point_copies),
    }
    sources = sorted(set(pool["cnn"].sources) - {"real_photos"})
    report: dict[str, Any] = {
        "targets": targets.__dict__,
        "copies": list(copies),
        "invariance": invariance.__dict__,
        "sources": {},
        "resized": {},
        "held_out_scores": {},
        "head_c": {},  # each fold's choice, made without its held-out source
    }
    for held in tqdm(sources, desc="leave one source out", unit="source"):
        keep = pool["cnn"].sources != held
        path = fit_photo_path(pool["cnn"].subset(keep), pool["vit"].subset(keep), targets, **fit)
        report["head_c"][held] = {name: choice.c for name, choice in path.head_c.items()}
        for kind, mask, rows in (("sources", clean, report["sources"]), ("resized", resized, report["resized"])):
            test = mask & (everything["cnn"].sources == held)
            scores = path.scores(everything["cnn"].subset(test), everything["vit"].subset(test))
            rows[held] = evaluate_scores(everything["cnn"].labels[test], scores)
            if kind == "sources":
                report["held_out_scores"][held] = {
                    "labels": everything["cnn"].labels[test].tolist(),
                    "score": scores["score"].tolist(),
                    "abstained": scores["abstained"].tolist(),
                }
    full = fit_photo_path(pool["cnn"], pool["vit"], targets, **fit)
    report["head_c"]["all sources"] = {name: choice.c for name, choice in full.head_c.items()}
    for name, items in evaluation.items():
        features = branch_features(shared, items, cache_dir=cache_dir, augment=False, branches=branches)
        scores = full.scores(features["cnn"], features["vit"])
        report["sources"][name] = evaluate_scores(features["cnn"].labels, scores)
        report["held_out_scores"][name] = {
            "labels": features["cnn"].labels.tolist(),
            "score": scores["score"].tolist(),
            "abstained": scores["abstained"].tolist(),
        }
    report["summary"] = summarise(report["sources"])
    report["resized_summary"] = {**summarise(report["resized"]), **pooled_real_rates(report["resized"])}
    report["clean_real_rates"] = pooled_real_rates({k: v for k, v in report["sources"].items() if k in sources})
    return report


def pooled_real_rates(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Real images tagged AI and sent to review, pooled over the sources' real images (counts and shares)."""
    reals = sum(row["real"] for row in rows.values())
    tagged = sum(round(row.get("real_tagged_ai", 0.0) * row["real"]) for row in rows.values())
    review = sum(round(row.get("real_to_review", 0.0) * row["real"]) for row in rows.values())
    return {
        "real_images": reals,
        "real_tagged_ai": tagged,
        "real_tagged_ai_share": tagged / reals if reals else None,
        "real_to_review_share": review / reals if reals else None,
    }


def summarise(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    two_class = {name: row["auroc"] for name, row in rows.items() if row.get("auroc") is not None}
    fake_only = {name: row["caught"] for name, row in rows.items() if row["fake"] and not row["real"]}
    return {
        "two_class_sources": len(two_class),
        "mean_auroc": float(np.mean(list(two_class.values()))) if two_class else None,
        "worst_auroc": min(two_class.items(), key=lambda kv: kv[1]) if two_class else None,
        "fake_only_min_caught": min(fake_only.items(), key=lambda kv: kv[1]) if fake_only else None,
        "fake_only_mean_caught": float(np.mean(list(fake_only.values()))) if fake_only else None,
    }


def risk_coverage(held_out_scores: dict[str, dict[str, list]], margins: np.ndarray | None = None) -> list[dict]:
    """Widening the review margin around 0.5 on the decision scale: the share of held-out images decided
    automatically (coverage) and the error rate among them (risk). Images the service abstains on (its two models
    disagree) go to review at every margin: never counted as decided."""
    parts = list(held_out_scores.values())
    labels = np.concatenate([np.asarray(part["labels"]) for part in parts])
    score = np.concatenate([np.asarray(part["score"]) for part in parts])
    abstained = np.concatenate(
        [np.asarray(part.get("abstained", [False] * len(part["score"])), bool) for part in parts]
    )
    points = []
    for margin in margins if margins is not None else np.linspace(0.0, 0.45, 19):
        decided = (np.abs(score - 0.5) >= margin) & ~abstained
        errors = (score[decided] >= 0.5) != (labels[decided] == 1)
        points.append(
            {
                "margin": float(margin),
                "coverage": float(decided.mean()),
                "risk": float(errors.mean()) if decided.any() else 0.0,
            }
        )
    return points


def write_checkpoint(
    out: Path,
    path: PhotoPath,
    *,
    shared: Path,
    thumbnail: Path | None,
    thumbnail_max_side: int,
    version: str,
    training: dict[str, Any],
    branches: dict[str, BranchSpec] = BRANCHES,
) -> Path:
    """A servable cascade in `out`: cnn/ and vit/ (frozen backbones with the fitted heads), the thumbnail expert
    copied as it is, and cascade.json with the band, the fusion and the operating points."""
    import shutil

    from detector.cascade import CASCADE_FILENAME
    from detector.checkpoint import save_checkpoint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, head, threshold in (
        ("cnn", path.cnn_head, path.cnn_threshold),
        ("vit", path.vit_head, path.vit_threshold),
    ):
        module, _ = load_branch(branches[name], shared)
        layer = module.get_classifier()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(head.weight).float().view(1, -1))
            layer.bias.fill_(head.bias)
        save_checkpoint(module, branches[name].card(version=version, threshold=threshold), out / name)
    cascade: dict[str, Any] = {
        "name": "photo-fusion",
        "version": version,
        "cnn": "cnn",
        "vit": "vit",
        "escalation_band": list(path.band),
        "fusion": {
            "cnn_weight": path.fusion.cnn_weight,
            "vit_weight": path.fusion.vit_weight,
            "bias": path.fusion.bias,
            "operating_point": [path.point.real, path.point.ai],
            "cnn_operating_point": [path.cnn_point.real, path.cnn_point.ai],
            "disagreement": path.disagreement,
            "cnn_threshold": path.cnn_threshold,
            "vit_threshold": path.vit_threshold,
        },
        "training": training,
    }
    if thumbnail is not None:
        if Path(thumbnail).resolve() != (out / "thumb").resolve():
            shutil.copytree(thumbnail, out / "thumb", dirs_exist_ok=True)
        cascade["thumbnail"] = {"model": "thumb", "max_side": thumbnail_max_side}
    (out / CASCADE_FILENAME).write_text(json.dumps(cascade, indent=2, sort_keys=True) + "\n")
    return out


def train_photo_path(
    shared: Path,
    out: Path,
    *,
    cache_dir: Path | None,
    thumbnail: Path | None,
    thumbnail_max_side: int,
    version: str,
    targets: PolicyTargets = PolicyTargets(),
    branches: dict[str, BranchSpec] = BRANCHES,
    exclude: frozenset[str] = frozenset(),
    copies: tuple[str, ...] = RECIPE_COPIES,
    invariance: Invariance = Invariance(),
) -> dict[str, Any]:
    """Fit the photo path on every training source but `exclude` (with `copies` of each image); write the
    checkpoint."""
    from .datasets import fingerprint

    train_items, _ = photo_sets(shared)
    # Features of the whole pool (cached once), then the excluded sources dropped.
    kinds = tuple(dict.fromkeys((*copies, *invariance.copies, *targets.ai_point_copies)))
    everything = branch_features(
        shared, train_items, cache_dir=cache_dir, augment=True, branches=branches, augmentations=kinds
    )
    everything = {
        name: features.subset(~np.isin(features.sources, sorted(exclude))) for name, features in everything.items()
    }
    pool, nuisance = _heads_inputs(everything, copies, invariance)
    train_items = [item for item in train_items if item.source not in exclude]
    path = fit_photo_path(
        pool["cnn"], pool["vit"], targets, branches=branches, nuisance=nuisance, invariance=invariance,
        real_copies=_real_copies(everything, targets.ai_point_copies),
    )  # fmt: skip
    oof = path.oof
    fused = path.fusion.logits(oof["cnn"], oof["vit"])
    escalated = escalate(sigmoid(oof["cnn"]), path.band)
    real = oof["labels"] == 0
    training = {
        "method": "frozen backbones, linear heads on mean view features, stacking fitted on source-held-out logits",
        "targets": targets.__dict__,
        "copies": list(copies),
        "invariance": invariance.__dict__,
        "images": len(pool["cnn"]),
        "sources": sorted(set(pool["cnn"].sources.tolist())),
        "fingerprint": fingerprint(train_items),
        "head_c": {
            name: {
                "c": choice.c,
                "chosen_by": branches[name].c_by if choice.auroc_by_c else "fixed",
                "out_of_fold_auroc_by_c": {str(c): v for c, v in choice.auroc_by_c.items()},
            }
            for name, choice in path.head_c.items()
        },
        "out_of_fold": {
            "auroc_cnn": _auroc(oof["labels"], oof["cnn"]),
            "auroc_vit": _auroc(oof["labels"], oof["vit"]),
            "auroc_fused": _auroc(oof["labels"], fused),
            "escalation_rate_real_photos": float(escalated[real].mean()),
            "escalation_rate": float(escalated.mean()),
            # Sent to review because the two models disagree. The rule is set in raw logits: a head refitted with
            # another scale can silence it, which shows here as 0 (README, candidate 1.2.0).
            "disagreement_rate": float((escalated & path.serving_fusion().disagree(oof["cnn"], oof["vit"])).mean()),
        },
    }
    write_checkpoint(
        out, path, shared=shared, thumbnail=thumbnail, thumbnail_max_side=thumbnail_max_side,
        version=version, training=training, branches=branches,
    )  # fmt: skip
    return training


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from .metrics import auroc

    return auroc(labels, scores)


def pool_matched_set(shared: Path, out: Path, *, seed: int = 0) -> dict[str, Any]:
    """A mixed-generator real/ + fake/ folder in which no source tells the label: from every shared source that
    publishes both AI images and its own real photos (same repository, same subjects or prompts, same normalisation),
    as many real as AI images, sampled down to the smaller class. A head can then learn only what separates AI from
    real within each source, not which photo pool an image came from. Files are linked, not copied."""
    train, _ = photo_sets(shared)
    by_source: dict[str, dict[int, list[LabelledImage]]] = {}
    for item in train:
        if item.source != "real_photos":
            by_source.setdefault(item.source, {0: [], 1: []})[item.label].append(item)
    out = Path(out)
    counts = {}
    for source, classes in sorted(by_source.items()):
        keep = min(len(classes[0]), len(classes[1]))
        if keep == 0:
            continue
        counts[source] = keep
        for label, items in classes.items():
            folder = out / ("fake" if label else "real")
            folder.mkdir(parents=True, exist_ok=True)
            for item in random.Random(f"{seed}:{source}:{label}").sample(sorted(items, key=lambda i: i.path), keep):
                link = folder / f"{source.replace(':', '_')}__{item.path.name}"
                if not link.exists():
                    link.symlink_to(item.path.resolve())
    matching = {"per_source_each_class": counts, "images": 2 * sum(counts.values()), "seed": seed}
    (out / "matching.json").write_text(json.dumps(matching, indent=2) + "\n")
    return matching
