"""Plots of the leave-one-source-out report: AUROC per held-out source and branch, outcome rates, risk-coverage."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_cross_source_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir = Path(out_dir)
    rows = report["sources"]
    written = []

    two_class = [name for name, row in rows.items() if row.get("auroc") is not None]
    figure, axis = plt.subplots(figsize=(max(6, 0.7 * len(two_class)), 3.6))
    positions = np.arange(len(two_class))
    for offset, (key, label) in enumerate((("auroc_cnn", "CNN crops"), ("auroc_vit", "ViT"), ("auroc", "system"))):
        axis.bar(positions + (offset - 1) * 0.27, [rows[n][key] for n in two_class], 0.27, label=label)
    axis.axhline(0.8, color="grey", linestyle="--", linewidth=0.8)
    axis.set_xticks(positions, [n.split(":")[-1] for n in two_class], rotation=45, ha="right", fontsize=8)
    axis.set_ylim(0.3, 1.0)
    axis.set_ylabel("AUROC, source held out")
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    written.append(out_dir / "auroc_by_source.png")
    figure.savefig(written[-1], dpi=110)
    plt.close(figure)

    names = list(rows)
    keys = (("caught", "AI caught"), ("auto_tagged", "AI auto-tagged"), ("real_tagged_ai", "real tagged AI"),
            ("real_to_review", "real to review"))  # fmt: skip
    figure, axis = plt.subplots(figsize=(max(7, 0.55 * len(names)), 3.8))
    positions = np.arange(len(names))
    for offset, (key, label) in enumerate(keys):
        values = [rows[n].get(key, np.nan) for n in names]
        axis.bar(positions + (offset - 1.5) * 0.2, values, 0.2, label=label)
    axis.set_xticks(positions, [n.split(":")[-1] for n in names], rotation=60, ha="right", fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_ylabel("share (default policy)")
    axis.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, 1.15))
    figure.tight_layout()
    written.append(out_dir / "outcomes_by_source.png")
    figure.savefig(written[-1], dpi=110)
    plt.close(figure)

    if report.get("risk_coverage"):
        curve = report["risk_coverage"]
        figure, axis = plt.subplots(figsize=(4.2, 3.4))
        axis.plot([p["coverage"] for p in curve], [p["risk"] for p in curve], "o-", markersize=3)
        axis.set_xlabel("coverage (share decided without a person)")
        axis.set_ylabel("risk (errors among those)")
        axis.set_title("held-out sources, widening the review margin", fontsize=8)
        figure.tight_layout()
        written.append(out_dir / "risk_coverage.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    return written
