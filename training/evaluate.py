"""Evaluate a checkpoint on any labelled folder through the serving path: metrics, robustness table and plots."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detector import DetectorConfig, ImageRejected, create_detector, decode_image

from .datasets import LabelledImage, fingerprint
from .metrics import average_precision, expected_calibration_error, outcome_rates, report_by_source, roc_points

OUTCOME_KEYS = ("caught", "auto_tagged", "real_tagged_ai", "real_to_review")

# Re-encodings that real uploads go through: platforms recompress and resize what users post, shrinking large images
# and enlarging small ones to a display size.
PERTURBATIONS = ("clean", "jpeg_q95", "jpeg_q75", "jpeg_q50", "downscale_0.5", "upscale_2")


def perturb(data: bytes, kind: str) -> bytes:
    if kind == "clean":
        return data
    image = decode_image(data, min_side=1_000_000)  # never draft-decoded: perturb the full image
    if kind == "downscale_0.5":
        image = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS)
        quality = 95
    elif kind == "upscale_2":
        image = image.resize((image.width * 2, image.height * 2), Image.Resampling.BICUBIC)
        quality = 95
    else:
        quality = int(kind.removeprefix("jpeg_q"))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def evaluate(
    checkpoint: Path, items: list[LabelledImage], *, robustness: bool = True, device: str = "auto"
) -> dict[str, Any]:
    detector = create_detector(DetectorConfig(checkpoint=checkpoint, device=device))
    originals = [item.path.read_bytes() for item in items]
    labels = np.array([item.label for item in items])
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "model": detector.model_version,
        "n": len(items),
        "fingerprint": fingerprint(items),
    }
    runs = PERTURBATIONS if robustness else ("clean",)
    table = {}
    for kind in runs:
        images = []
        for data in originals:
            try:
                images.append(perturb(data, kind))
            except ImageRejected:
                images.append(data)  # the detector will reject it too and it is counted below
        outcomes = detector.predict(images)
        ok = np.array([outcome.verdict is not None for outcome in outcomes])
        scores = np.array([outcome.verdict.score for outcome in outcomes if outcome.verdict is not None])
        predicted = np.array([outcome.verdict.label for outcome in outcomes if outcome.verdict is not None])
        sources = [item.source for item, kept in zip(items, ok, strict=True) if kept]
        row = report_by_source(labels[ok], scores, 0.5, sources)
        row["outcomes"] = outcome_rates(labels[ok], predicted)
        row["rejected"] = int((~ok).sum())
        if kind == "clean":
            row["average_precision"] = average_precision(labels[ok], scores)
            row["expected_calibration_error"] = expected_calibration_error(labels[ok], scores)
            row["escalation_rate"] = float(
                np.mean([o.verdict.vit_score is not None for o in outcomes if o.verdict is not None])
            )
            report["clean"] = row
            report["_scores"] = (labels[ok], scores)
        table[kind] = _headline(row)
        if "by_source" in row:
            table[kind]["by_source"] = {source: _headline(part) for source, part in row["by_source"].items()}
    report["robustness"] = table
    return report


def _headline(row: dict[str, Any]) -> dict[str, Any]:
    headline = {key: row[key] for key in ("accuracy", "auroc", "false_positive_rate")}
    outcomes = row.get("outcomes", {})
    return headline | {key: outcomes[key] for key in OUTCOME_KEYS if key in outcomes}


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Confusion matrix, ROC curve and reliability diagram as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    labels, scores = report["_scores"]
    written = []

    figure, axis = plt.subplots(figsize=(4, 4))
    matrix = np.array(report["clean"]["confusion_matrix"]["matrix"])
    axis.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        dark = value > matrix.max() / 2
        axis.text(col, row, str(value), ha="center", va="center", fontsize=14, color="white" if dark else "black")
    axis.set_xticks([0, 1], ["real", "AI"])
    axis.set_yticks([0, 1], ["real", "AI"])
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    # A cascade's name joins its models with "+": one per line, so the title fits.
    models = "\n".join(report["model"].split("+"))
    axis.set_title(f"{models}\naccuracy {report['clean']['accuracy']:.1%}", fontsize=8)
    written.append(_save(figure, out_dir / "confusion_matrix.png"))

    if len(set(labels.tolist())) == 2:
        figure, axis = plt.subplots(figsize=(4, 4))
        fpr, tpr = roc_points(labels, scores)
        axis.plot(fpr, tpr, label=f"AUROC {report['clean']['auroc']:.3f}")
        axis.plot([0, 1], [0, 1], "--", color="grey")
        axis.set_xlabel("false-positive rate")
        axis.set_ylabel("true-positive rate")
        axis.legend(loc="lower right")
        written.append(_save(figure, out_dir / "roc.png"))

        figure, axis = plt.subplots(figsize=(4, 4))
        edges = np.linspace(0, 1, 11)
        index = np.clip(np.digitize(scores, edges[1:-1]), 0, 9)
        centres = [(scores[index == b].mean(), labels[index == b].mean()) for b in range(10) if (index == b).any()]
        axis.plot(*zip(*centres, strict=True), "o-", label=f"ECE {report['clean']['expected_calibration_error']:.3f}")
        axis.plot([0, 1], [0, 1], "--", color="grey")
        axis.set_xlabel("score (decision scale)")
        axis.set_ylabel("fraction AI")
        axis.legend(loc="upper left")
        written.append(_save(figure, out_dir / "reliability.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


def public_report(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if not key.startswith("_")}


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(public_report(report), indent=2) + "\n")
    return path
