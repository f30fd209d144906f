"""`python -m detector predict FILE… [--json] [--heatmap DIR]`, `python -m detector bench` and
`python -m detector bench-hashes`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from .detector import DEFAULT_CHECKPOINT, DetectorConfig, create_detector


def _predict(args: argparse.Namespace) -> int:
    detector = create_detector(DetectorConfig(checkpoint=args.checkpoint, device=args.device))
    images = [path.read_bytes() for path in args.files]
    outcomes = detector.predict(images)
    if args.heatmap:
        args.heatmap.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path, data, outcome in zip(args.files, images, outcomes, strict=True):
        heatmap = None
        if outcome.verdict is None:
            failed += 1
        elif args.heatmap:
            heatmap = args.heatmap / f"{path.stem}.heatmap.png"
            heatmap.write_bytes(detector.explain(data, use_vit=outcome.verdict.vit_score is not None))
        if args.json:
            record = {"file": str(path), "error": outcome.error, "heatmap": str(heatmap) if heatmap else None}
            record["verdict"] = asdict(outcome.verdict) if outcome.verdict else None
            print(json.dumps(record))
        elif outcome.verdict is None:
            print(f"{path}\tERROR\t{outcome.error}")
        else:
            verdict = outcome.verdict
            reason = f"\t({verdict.review_reason})" if verdict.review_reason else ""
            print(f"{path}\t{verdict.label}\t{verdict.score:.4f}\t{verdict.path}\t{detector.model_version}{reason}")
    return 1 if failed else 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    print(json.dumps(run_bench(args.checkpoint, quick=args.quick), indent=2))
    return 0


def _bench_hashes(args: argparse.Namespace) -> int:
    from .bench_hashes import run_hash_bench

    print(json.dumps(run_hash_bench(args.size, args.queries), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detector", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="score image files")
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    predict.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line; verdict.label is ai-generated / needs-review / likely-real under the default "
        "policy (threshold 0.5, review margin 0.1)",
    )
    predict.add_argument("--heatmap", type=Path, help="write a Grad-CAM overlay PNG per image into this folder")
    predict.set_defaults(handler=_predict)
    bench = commands.add_parser("bench", help="throughput vs the naive path and the GEMM roofline, as JSON")
    bench.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    bench.add_argument("--quick", action="store_true", help="fewer images and batch sizes (a smoke run)")
    bench.set_defaults(handler=_bench)
    hashes = commands.add_parser("bench-hashes", help="PDQ near-duplicate lookups against a large bank, as JSON")
    hashes.add_argument("--size", type=int, default=1_000_000, help="hashes in the bank")
    hashes.add_argument("--queries", type=int, default=2000)
    hashes.set_defaults(handler=_bench_hashes)
    args = parser.parse_args(argv)
    return args.handler(args)
