"""Experiment (2026-12-07): on a CPU with AMX, is the texture CNN faster in PyTorch bf16, and does it keep the verdicts?

The CNN runs on the CPU in ONNX Runtime fp32 because PyTorch bf16 was slower on this project's earlier machines
(AVX-512 BF16 without AMX: `cpu_layouts_img_s` in the bench; depthwise convolutions gain nothing). Today's VM is an
Intel Xeon with AMX tiles, where oneDNN runs bf16 convolutions and matrix products on the tile unit. The CNN's head
reads fine texture statistics (channel correlations, spatial autocorrelation), and INT8 did not keep them
(`int8_cnn.py`); bf16 keeps an 8-bit mantissa but fp32's range. Two bf16 arms against the shipped fp32 graph:

- `bf16`: the whole module in bf16, channels_last (what `Placement(dtype=bfloat16, runtime="torch")` serves);
- `bf16_backbone`: the backbone in bf16, the texture statistics and the linear head in fp32 on its activations.

Speed: batches of 32 real crops, the arms timed in alternation, median of the rounds, on 1 and 2 threads. Fidelity:
per-image logits (the mean over the crops, as served) on the evaluation-only sets and 300 training images, the AUROC
of each, and how many images change the CNN's zone (`likely-real` / `needs-review` / escalated to the ViT).

Decision rule, fixed before the run: an arm ships for CPUs with AMX only if it is at least 1.3x the fp32 graph on
2 threads, no more than 1 % of any evaluation-only set's images change zone (rounded down: 0 of 68 or 77), and
`realorai_dev`'s AUROC moves by at most 0.005.

    .venv/bin/python docs/experiments/bf16_cnn.py --out reports/experiments/bf16_cnn.json

Needs ../shared; about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from int8_cnn import MODEL, REPO, crops_of, zones

from detector.cascade import CascadeSpec
from detector.checkpoint import load_checkpoint
from detector.detector import LoadedModel
from detector.device import Placement
from training.metrics import auroc
from training.photo_path import photo_sets

CPU = torch.device("cpu")


def arms(module: torch.nn.Module, card) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each arm: (N, S, S, 3) uint8 crops -> N logits (float64)."""
    fp32 = LoadedModel(copy.deepcopy(module), card, Placement(CPU, torch.float32, True, "onnxruntime"))
    bf16 = LoadedModel(copy.deepcopy(module), card, Placement(CPU, torch.bfloat16, True, "torch"))
    head = copy.deepcopy(module).float().eval()
    backbone = copy.deepcopy(module).to(torch.bfloat16, memory_format=torch.channels_last).eval()

    def bf16_backbone(views: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            final, stages = backbone.forward_features(bf16.to_batch(list(views)))
            logits = head.forward_head((final.float(), [stage.float() for stage in stages]))
        return logits.squeeze(1).numpy().astype(np.float64)

    return {"fp32_onnxruntime": fp32.view_logits, "bf16": bf16.view_logits, "bf16_backbone": bf16_backbone}


def image_logits(arm: Callable[[np.ndarray], np.ndarray], views: list[np.ndarray]) -> np.ndarray:
    return np.array([arm(image_views).mean() for image_views in views])


def gemm_gflops(dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(8):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2.0 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fidelity-train-images", type=int, default=300)
    parser.add_argument("--timing-rounds", type=int, default=7)
    args = parser.parse_args()

    torch.set_num_threads(2)
    module, card = load_checkpoint(MODEL / "cnn")
    spec = CascadeSpec.load(MODEL)
    real_below = spec.fusion.cnn_point.real
    train, evaluation = photo_sets(args.shared)
    sets = {**evaluation, "training": random.Random(0).sample(train, args.fidelity_train_images)}
    scorers = arms(module, card)

    fidelity = {}
    for name, items in sets.items():
        views = crops_of(items, card)
        labels = np.array([item.label for item in items])
        logits = {arm: image_logits(score, views) for arm, score in scorers.items()}
        reference = logits["fp32_onnxruntime"]
        reference_zones = zones(1 / (1 + np.exp(-reference)), real_below, spec.escalation_band)
        row: dict[str, object] = {"images": len(items)}
        if 0 < labels.sum() < len(labels):
            row["auroc_fp32_onnxruntime"] = auroc(labels, reference)
        for arm in ("bf16", "bf16_backbone"):
            moved = logits[arm]
            row[arm] = {
                "logit_abs_diff_mean": float(np.abs(moved - reference).mean()),
                "logit_abs_diff_max": float(np.abs(moved - reference).max()),
                "logit_correlation": float(np.corrcoef(moved, reference)[0, 1]),
                "zone_changes": int(
                    (zones(1 / (1 + np.exp(-moved)), real_below, spec.escalation_band) != reference_zones).sum()
                ),
            }
            if 0 < labels.sum() < len(labels):
                row[arm]["auroc"] = auroc(labels, moved)
        fidelity[name] = row
        print(name, json.dumps(row))

    batch = np.concatenate(crops_of(evaluation["realorai_dev"][:40], card))[:32]
    timing: dict[str, dict[str, float]] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        timed = arms(module, card)
        for score in timed.values():
            score(batch)  # the first batch allocates (and lets oneDNN pick its kernels)
        rounds: dict[str, list[float]] = {arm: [] for arm in timed}
        for _ in range(args.timing_rounds):
            for arm, score in timed.items():
                started = time.perf_counter()
                score(batch)
                rounds[arm].append(len(batch) / (time.perf_counter() - started))
        timing[f"{threads}_threads"] = {f"{arm}_img_s": statistics.median(rates) for arm, rates in rounds.items()}
        for arm in ("bf16", "bf16_backbone"):
            timing[f"{threads}_threads"][f"{arm}_speedup"] = statistics.median(
                b / f for f, b in zip(rounds["fp32_onnxruntime"], rounds[arm], strict=True)
            )
        print(threads, json.dumps(timing[f"{threads}_threads"]))

    cpuinfo = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
    cpuinfo = {key.strip(): value.strip() for key, value in cpuinfo.items()}
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "model": f"{card.name}@{card.version}",
        "machine": {
            "cpu": cpuinfo.get("model name", platform.processor()),
            "simd": sorted(
                {f for f in cpuinfo.get("flags", "").split() if f.startswith(("avx", "amx")) or "vnni" in f}
            ),
            "amx": bool(torch.cpu._is_amx_tile_supported()),
            "torch": torch.__version__,
            "gemm_2048_gflops_2_threads": {"fp32": gemm_gflops(torch.float32), "bf16": gemm_gflops(torch.bfloat16)},
        },
        "fidelity": fidelity,
        "timing_32_crops": timing,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
