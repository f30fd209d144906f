"""`python -m detector predict FILE… [--json]`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from .detector import DEFAULT_CHECKPOINT, DetectorConfig, create_detector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detector", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="score image files")
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)

    detector = create_detector(DetectorConfig(checkpoint=args.checkpoint, device=args.device))
    outcomes = detector.predict([path.read_bytes() for path in args.files])
    failed = 0
    for path, outcome in zip(args.files, outcomes, strict=True):
        if outcome.verdict is None:
            failed += 1
        if args.json:
            record = {"file": str(path), "error": outcome.error}
            record["verdict"] = asdict(outcome.verdict) if outcome.verdict else None
            print(json.dumps(record))
        elif outcome.verdict is None:
            print(f"{path}\tERROR\t{outcome.error}")
        else:
            label = "ai-generated" if outcome.verdict.is_ai else "real"
            print(f"{path}\t{label}\t{outcome.verdict.score:.4f}\t{detector.model_version}")
    return 1 if failed else 0
