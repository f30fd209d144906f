"""Experiment (2026-12-07): is an INT8 texture CNN faster on this CPU, and does it keep the verdicts?

Detection is the service's first bottleneck on a CPU (README, capacity model), and its model is the shipped CNN
through ONNX Runtime in fp32. EfficientNet-Lite0 was designed to quantize (ReLU6, no squeeze-excite), but this CNN's
head reads fine texture statistics (channel correlations, spatial autocorrelation) that quantization noise could
disturb. This measures both sides in one run:

- speed: the fp32 graph the service exports against ONNX Runtime's static QDQ quantization of the same graph
  (convolutions only, per-channel int8 weights, uint8 activations calibrated on crops of training images), timed
  alternately on batches of real crops;
- fidelity: per-image logits of both graphs on images the calibration never saw (the evaluation-only sets and
  training images outside the calibration sample), the AUROC of each, and how many verdicts of the CNN's zones
  (`likely-real` / `needs-review` / escalated to the ViT) change.

    .venv/bin/python docs/experiments/int8_cnn.py --out reports/experiments/int8_cnn.json

Needs ../shared; about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)
from tqdm import tqdm

from detector.card import ModelCard
from detector.cascade import CascadeSpec, escalate
from detector.checkpoint import load_checkpoint
from detector.onnx_scorer import cpu_session, export_onnx
from detector.preprocess import decode_image
from detector.views import decode_side, model_views
from training.datasets import LabelledImage
from training.metrics import auroc
from training.photo_path import photo_sets

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "detector" / "models" / "default"


def crops_of(items: list[LabelledImage], card: ModelCard) -> list[np.ndarray]:
    views = []
    for item in tqdm(items, desc="crops", leave=False):
        image = decode_image(item.path.read_bytes(), min_side=decode_side(card))
        views.append(model_views(image, card))
    return views


class Crops(CalibrationDataReader):
    def __init__(self, views: list[np.ndarray], batch: int = 16) -> None:
        stacked = np.concatenate(views)
        self._batches = iter([{"images": stacked[i : i + batch]} for i in range(0, len(stacked), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def image_logits(sess: onnxruntime.InferenceSession, views: list[np.ndarray]) -> np.ndarray:
    out = []
    for image_views in views:
        out.append(float(sess.run(None, {"images": image_views})[0].mean()))
    return np.array(out)


def timed(sess: onnxruntime.InferenceSession, batch: np.ndarray) -> float:
    start = time.perf_counter()
    sess.run(None, {"images": batch})
    return len(batch) / (time.perf_counter() - start)


def zones(probability: np.ndarray, real_below: float, band: tuple[float, float]) -> np.ndarray:
    """0 likely-real, 1 review, 2 escalated to the ViT: where the CNN alone sends each image."""
    return np.where(escalate(probability, band), 2, np.where(probability <= real_below, 0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--calibration-images", type=int, default=64)
    parser.add_argument("--fidelity-train-images", type=int, default=300)
    parser.add_argument("--timing-rounds", type=int, default=7)
    # Without VNNI, x86 runs u8 x s8 products through a 16-bit intermediate that can saturate; 7-bit weights avoid it.
    parser.add_argument("--reduce-range", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(2)
    module, card = load_checkpoint(MODEL / "cnn")
    spec = CascadeSpec.load(MODEL)
    real_below = spec.fusion.cnn_point.real

    train, evaluation = photo_sets(args.shared)
    shuffled = random.Random(0).sample(train, len(train))
    calibration = shuffled[: args.calibration_images]
    unseen_train = shuffled[args.calibration_images : args.calibration_images + args.fidelity_train_images]

    work = Path(tempfile.mkdtemp(prefix="int8-cnn-"))
    fp32_path, prepared_path, int8_path = work / "fp32.onnx", work / "prepared.onnx", work / "int8.onnx"
    export_onnx(module, card, fp32_path)
    quant_pre_process(str(fp32_path), str(prepared_path), skip_symbolic_shape=True)
    started = time.perf_counter()
    quantize_static(
        str(prepared_path),
        str(int8_path),
        Crops(crops_of(calibration, card)),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["Conv"],
        calibrate_method=CalibrationMethod.MinMax,
        reduce_range=args.reduce_range,
    )
    quantize_seconds = time.perf_counter() - started

    fp32, int8 = cpu_session(fp32_path, threads=2), cpu_session(int8_path, threads=2)
    sets = {**evaluation, "training_not_calibrated": unseen_train}
    fidelity = {}
    for name, items in sets.items():
        views = crops_of(items, card)
        a, b = image_logits(fp32, views), image_logits(int8, views)
        labels = np.array([item.label for item in items])
        pa, pb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
        za, zb = zones(pa, real_below, spec.escalation_band), zones(pb, real_below, spec.escalation_band)
        row = {
            "images": len(items),
            "logit_abs_diff_mean": float(np.abs(a - b).mean()),
            "logit_abs_diff_max": float(np.abs(a - b).max()),
            "logit_correlation": float(np.corrcoef(a, b)[0, 1]),
            "probability_abs_diff_max": float(np.abs(pa - pb).max()),
            "zone_changes": int((za != zb).sum()),
        }
        if 0 < labels.sum() < len(labels):
            row["auroc_fp32"], row["auroc_int8"] = auroc(labels, a), auroc(labels, b)
        fidelity[name] = row
        print(name, json.dumps(row))

    batch = np.concatenate(crops_of(evaluation["realorai_dev"][:40], card))[:32]
    timing: dict[str, dict[str, float]] = {}
    for threads in (1, 2):
        sessions = {"fp32": cpu_session(fp32_path, threads=threads), "int8": cpu_session(int8_path, threads=threads)}
        for s in sessions.values():
            timed(s, batch)  # first run allocates
        rounds: dict[str, list[float]] = {"fp32": [], "int8": []}
        for _ in range(args.timing_rounds):
            for name, s in sessions.items():
                rounds[name].append(timed(s, batch))
        timing[f"{threads}_threads"] = {
            "fp32_img_s": statistics.median(rounds["fp32"]),
            "int8_img_s": statistics.median(rounds["int8"]),
            "speedup": statistics.median(i / f for f, i in zip(rounds["fp32"], rounds["int8"], strict=True)),
        }
        print(threads, json.dumps(timing[f"{threads}_threads"]))

    cpu_flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "model": f"{card.name}@{card.version}",
        "calibration": {
            "images": len(calibration),
            "method": "minmax",
            "reduce_range": args.reduce_range,
            "seconds": quantize_seconds,
        },
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "simd": sorted({f for f in cpu_flags.split() if f.startswith(("avx", "amx")) or "vnni" in f}),
            "onnxruntime": onnxruntime.__version__,
        },
        "fidelity": fidelity,
        "timing_32_crops": timing,
        "size_bytes": {"fp32": fp32_path.stat().st_size, "int8": int8_path.stat().st_size},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
