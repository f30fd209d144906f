"""Experiment (2026-12-07): can the ViT run in INT8 on a CPU without native bf16?

Where the CPU has AVX-512 BF16 or AMX the ViT runs in PyTorch bf16 (`detector/device.py`); elsewhere it runs fp32
through ONNX Runtime, and on a 224-px upload it is what holds the cascade back. ONNX Runtime's dynamic quantization
(int8 weights per channel, activations quantized per batch; no calibration data) is the usual way to speed up a
transformer on such CPUs. This measures its speed and how far it moves the ViT's logits, on the evaluation-only
`realorai_dev` and the first 30 `camera_photos_real` JPEGs.

    .venv/bin/python docs/experiments/int8_vit.py --out reports/experiments/int8_vit.json

Needs ../shared; a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.quantization import QuantType, quantize_dynamic

from detector.cascade import CascadeSpec
from detector.checkpoint import load_checkpoint
from detector.onnx_scorer import cpu_session, export_onnx
from detector.preprocess import decode_image
from detector.views import decode_side, model_views

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "detector" / "models" / "default"
BATCH = 8


def logits(sess: onnxruntime.InferenceSession, views: np.ndarray) -> np.ndarray:
    return np.concatenate([sess.run(None, {"images": views[i : i + BATCH]})[0] for i in range(0, len(views), BATCH)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timing-rounds", type=int, default=7)
    args = parser.parse_args()

    module, card = load_checkpoint(MODEL / "vit")
    vit_weight = CascadeSpec.load(MODEL).fusion.vit_weight
    work = Path(tempfile.mkdtemp(prefix="int8-vit-"))
    fp32_path, int8_path = work / "fp32.onnx", work / "int8.onnx"
    export_onnx(module, card, fp32_path)
    started = time.perf_counter()
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    quantize_seconds = time.perf_counter() - started

    datasets = args.shared / "datasets"
    paths = sorted((datasets / "realorai_dev").rglob("*.jpg"))
    paths += sorted(p for p in (datasets / "camera_photos_real").rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"})[
        :30
    ]
    views = np.concatenate([model_views(decode_image(p.read_bytes(), min_side=decode_side(card)), card) for p in paths])
    fp32, int8 = cpu_session(fp32_path, threads=2), cpu_session(int8_path, threads=2)
    a, b = logits(fp32, views), logits(int8, views)
    diff = np.abs(a - b)

    batch = views[:BATCH]
    fp32.run(None, {"images": batch})
    int8.run(None, {"images": batch})
    rounds: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(args.timing_rounds):
        for name, sess in (("fp32", fp32), ("int8", int8)):
            start = time.perf_counter()
            sess.run(None, {"images": batch})
            rounds[name].append(BATCH / (time.perf_counter() - start))

    cpu_flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "model": f"{card.name}@{card.version}",
        "quantization": {"kind": "dynamic", "weights": "int8 per channel", "seconds": quantize_seconds},
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "simd": sorted({f for f in cpu_flags.split() if f.startswith(("avx", "amx")) or "vnni" in f}),
            "onnxruntime": onnxruntime.__version__,
        },
        "images": len(views),
        "logit_abs_diff_mean": float(diff.mean()),
        "logit_abs_diff_p95": float(np.quantile(diff, 0.95)),
        "logit_abs_diff_max": float(diff.max()),
        "logit_correlation": float(np.corrcoef(a, b)[0, 1]),
        "fused_logit_abs_diff_max": float(vit_weight * diff.max()),
        "timing_8_images": {
            "fp32_img_s": statistics.median(rounds["fp32"]),
            "int8_img_s": statistics.median(rounds["int8"]),
            "speedup": statistics.median(i / f for f, i in zip(rounds["fp32"], rounds["int8"], strict=True)),
        },
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
