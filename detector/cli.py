"""`python -m detector predict FILE… [--json] [--heatmap DIR]`, `python -m detector bench` and
`python -m detector bench-hashes`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from .detector import DEFAULT_CHECKPOINT, Detector, DetectorConfig, ScanOutcome, create_detector

# Files read, decoded and scored at a time: a folder of any size holds one chunk in memory.
PREDICT_CHUNK = 32


def _read(path: Path) -> tuple[bytes | None, str | None]:
    try:
        return path.read_bytes(), None
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"


def _predict(args: argparse.Namespace) -> int:
    """Every file gets a line (a record with `--json`), an unreadable or unscorable one with its error; exit 1 if any
    failed."""
    detector = create_detector(DetectorConfig(checkpoint=args.checkpoint, device=args.device))
    if args.heatmap:
        args.heatmap.mkdir(parents=True, exist_ok=True)
    failed = 0
    for start in range(0, len(args.files), PREDICT_CHUNK):
        paths = args.files[start : start + PREDICT_CHUNK]
        read = [_read(path) for path in paths]
        scored = iter(detector.predict([data for data, _ in read if data is not None]))
        for path, (data, error) in zip(paths, read, strict=True):
            outcome = next(scored) if data is not None else ScanOutcome(error=error)
            failed += outcome.verdict is None
            _print_outcome(args, detector, path, data, outcome)
    return 1 if failed else 0


def _print_outcome(
    args: argparse.Namespace, detector: Detector, path: Path, data: bytes | None, outcome: ScanOutcome
) -> None:
    heatmap = None
    if outcome.verdict is not None and args.heatmap and data is not None:
        heatmap = args.heatmap / f"{path.stem}.heatmap.png"
        heatmap.write_bytes(detector.explain(data, use_vit=outcome.verdict.vit_score is not None))
    if args.json:
        record = {"file": str(path), "error": outcome.error, "heatmap": str(heatmap) if heatmap else None}
        record["verdict"] = asdict(outcome.verdict) if outcome.verdict else None
        print(json.dumps(record), flush=True)
    elif outcome.verdict is None:
        print(f"{path}\tERROR\t{outcome.error}", flush=True)
    else:
        verdict = outcome.verdict
        reason = f"\t({verdict.review_reason})" if verdict.review_reason else ""
        print(
            f"{path}\t{verdict.label}\t{verdict.score:.4f}\t{verdict.path}\t{detector.model_version}{reason}",
            flush=True,
        )


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
