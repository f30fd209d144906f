"""Train a detector head on frozen backbone features: minutes on a CPU, honest metrics, a servable checkpoint.

The backbone runs exactly the serving preprocessing (`detector.load_model_input`), so what the head learns is what the
service sees. Only the final linear layer is trained; the backbone keeps its ImageNet weights.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm import tqdm

from detector import ImageRejected, ModelCard, load_checkpoint, load_model_input, save_checkpoint
from detector.registry import MultiScaleClassifier, backbone_features, build_model

from .datasets import LabelledImage, fingerprint
from .metrics import auroc, photo_threshold, report_by_source


@dataclass(frozen=True)
class ProbeConfig:
    architecture: str = "tf_efficientnet_lite0"
    backbone_weights: Path | None = None
    # Start from a whole trained checkpoint instead (retraining from the active model).
    init_checkpoint: Path | None = None
    input_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    target_fpr: float = 0.01
    l2_choices: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    batch_size: int = 32
    seed: int = 0


@dataclass(frozen=True)
class ProbeResult:
    card: dict[str, Any]
    # Per evaluated set: (labels, AI probabilities), in the order of its items (rejected images left out).
    scores: dict[str, tuple[np.ndarray, np.ndarray]]


def build_backbone(config: ProbeConfig) -> torch.nn.Module:
    if config.init_checkpoint is not None:
        model, _ = load_checkpoint(config.init_checkpoint)
        return model
    model = build_model(config.architecture)
    if config.backbone_weights is not None:
        state = {key: value.float() for key, value in load_file(str(config.backbone_weights)).items()}
        # Not hasattr(model, "load_pretrained"): timm's VisionTransformer has one too, for JAX .npz files.
        if isinstance(model, MultiScaleClassifier):
            model.load_pretrained(state)
        else:
            head = {key for key in state if key.startswith(("classifier.", "head.", "fc."))}
            missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in head}, strict=False)
            if unexpected or any(not key.startswith(("classifier.", "head.", "fc.")) for key in missing):
                raise ValueError(
                    f"backbone weights do not fit {config.architecture}: missing={missing} unexpected={unexpected}"
                )
    return model.eval()


@torch.inference_mode()
def extract_features(
    model: torch.nn.Module,
    items: list[LabelledImage],
    config: ProbeConfig,
    *,
    cache_dir: Path | None = None,
    desc: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features and labels; images the service would reject are skipped (and counted in the log)."""
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(
            json.dumps(
                [config.architecture, config.input_size, str(config.backbone_weights), [str(i.path) for i in items]]
            ).encode()
        ).hexdigest()[:16]
        cache_file = Path(cache_dir) / f"features-{key}.npz"
        if cache_file.exists():
            cached = np.load(cache_file)
            return cached["features"], cached["labels"]
    model = model.to(memory_format=torch.channels_last)
    mean = torch.tensor(config.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(config.std).view(1, 3, 1, 1) * 255.0
    features: list[np.ndarray] = []
    labels: list[int] = []
    skipped = 0
    for start in tqdm(range(0, len(items), config.batch_size), desc=desc or "features", unit="batch"):
        arrays, batch_labels = [], []
        for item in items[start : start + config.batch_size]:
            try:
                arrays.append(load_model_input(item.path.read_bytes(), config.input_size))
                batch_labels.append(item.label)
            except ImageRejected:
                skipped += 1
        if not arrays:
            continue
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
        batch = ((batch - mean) / std).contiguous(memory_format=torch.channels_last)
        features.append(backbone_features(model, batch).numpy())
        labels.extend(batch_labels)
    if skipped:
        print(f"{desc}: skipped {skipped} undecodable images")
    result = np.concatenate(features).astype(np.float32), np.asarray(labels, dtype=np.int64)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_file, features=result[0], labels=result[1])
    return result


def fit_logistic_head(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    l2: float,
    seed: int,
    prior: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, float]:
    """Class-balanced L2-regularised logistic regression, solved with L-BFGS. Returns (weight, bias).

    With `prior` (a head's raw weight and bias), the penalty pulls toward that head instead of toward zero: a few
    hundred new labels adjust what the head knows rather than replace it.
    """
    torch.manual_seed(seed)
    x = torch.from_numpy(features).double()
    y = torch.from_numpy(labels).double()
    mean = x.mean(0)
    scale = x.std(0).clamp_min(1e-6)
    z = (x - mean) / scale
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    sample_weight = torch.where(y > 0, len(y) / (2 * n_pos), len(y) / (2 * n_neg))
    # In standardised units the prior head is w * scale, and its bias absorbs the mean.
    centre = torch.zeros(z.shape[1], dtype=torch.float64)
    start_bias = 0.0
    if prior is not None:
        centre = torch.from_numpy(prior[0]).double() * scale
        start_bias = float(prior[1] + (torch.from_numpy(prior[0]).double() * mean).sum())
    weight = centre.clone().requires_grad_(True)
    bias = torch.full((1,), start_bias, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = z @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=sample_weight)
        loss = loss + l2 * ((weight - centre) ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    # Fold the standardisation into the linear layer so serving needs nothing but the checkpoint.
    raw_weight = (weight / scale).detach()
    raw_bias = (bias - (weight * mean / scale).sum()).detach()
    return raw_weight.numpy(), float(raw_bias.item())


def probe_scores(features: np.ndarray, weight: np.ndarray, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(features.astype(np.float64) @ weight + bias)))


def train_probe(
    *,
    config: ProbeConfig,
    train: list[LabelledImage],
    val: list[LabelledImage],
    test: list[LabelledImage],
    extra_eval: dict[str, list[LabelledImage]],
    card_name: str,
    card_version: str,
    out_dir: Path,
    cache_dir: Path | None = None,
) -> ProbeResult:
    """Fit the head, pick L2 and the threshold on validation, report on test and extra sets, save the checkpoint."""
    started = time.time()
    model = build_backbone(config)
    feats = {
        name: extract_features(model, items, config, cache_dir=cache_dir, desc=name)
        for name, items in [("train", train), ("val", val), ("test", test), *extra_eval.items()]
    }
    best: tuple[float, float, np.ndarray, float] | None = None
    for l2 in config.l2_choices:
        weight, bias = fit_logistic_head(*feats["train"], l2=l2, seed=config.seed)
        val_auroc = auroc(feats["val"][1], probe_scores(feats["val"][0], weight, bias)) or 0.0
        print(f"l2={l2:g}: val AUROC {val_auroc:.4f}")
        if best is None or val_auroc > best[0]:
            best = (val_auroc, l2, weight, bias)
    assert best is not None
    _, l2, weight, bias = best
    val_features, val_labels = feats["val"]
    val_scores = probe_scores(val_features, weight, bias)
    threshold = photo_threshold(val_labels, val_scores, [item.source for item in val], config.target_fpr)

    def report(name: str, items: list[LabelledImage]) -> dict[str, Any]:
        features, labels = feats[name]
        return report_by_source(
            labels, probe_scores(features, weight, bias), threshold, [item.source for item in items]
        )

    metrics = {"val": report("val", val), "test": report("test", test)}
    metrics.update({name: report(name, items) for name, items in extra_eval.items()})

    classifier = build_model(config.architecture)
    classifier.load_state_dict(model.state_dict())
    head = classifier.get_classifier()
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight).float().view(1, -1))
        head.bias.fill_(bias)
    card = ModelCard(
        name=card_name,
        version=card_version,
        architecture=config.architecture,
        input_size=config.input_size,
        mean=config.mean,
        std=config.std,
        threshold=threshold,
        metrics=metrics,
        training={
            "method": "linear probe on frozen ImageNet backbone features (class-balanced logistic regression)",
            "l2": l2,
            "target_fpr_on_val_photos": config.target_fpr,
            "seed": config.seed,
            "counts": {"train": len(train), "val": len(val), "test": len(test)},
            "fingerprints": {"train": fingerprint(train), "val": fingerprint(val), "test": fingerprint(test)},
            "seconds": round(time.time() - started, 1),
        },
    )
    save_checkpoint(classifier, card, out_dir)
    scores = {name: (labels, probe_scores(features, weight, bias)) for name, (features, labels) in feats.items()}
    return ProbeResult(card=json.loads(card.to_json()), scores=scores)
