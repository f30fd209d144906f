"""Experiment (2026-12-07): the texture CNN's head learning only from sources that hold both classes.

Issue #15 asks for heads that learn generators, not photo pools. In a source that publishes both AI images and real
photos through one pipeline (`byai`, `gdad`, `hsai`, `memq`, `hiyo`, `necz`, `pnp`), the two classes share the pool's
subjects, sizes and processing, so what separates them is closer to how the pixels were made. A source with one class
only (the 11 AI-only `modern_*` sources, the four real-only `modern_train` pools and `real_photos`) can be told from the
others by its pool alone, and the shipped head learns from all of them. Here two heads (`photo_path.fit_head`,
C=0.05, clean images and their upload-like copies, the cached features of five native crops):

- **all sources**: the shipped CNN branch's rows;
- **two-class sources only**: the same rows of the sources that hold both classes (about a third of the images).

Leave one source out over the 22 modern sources (a held-out two-class source leaves six to learn from), then both
heads fitted on everything scored on `realorai_dev`, `real_photos` test and the camera photos; reported as
`feature_groups.py` reports (`held_out.head_summary`).

Rule, fixed before the one run (the same as `feature_groups.py`'s): the two-class head is a candidate for the recipe
only if, against the shipped head, its mean two-class AUROC and its pooled AUROC are each at most 0.005 lower, one of
them is at least 0.01 higher (or AI caught at 5 % of held-out real photos flagged is 2 points higher), held-out real
photos over the 1 % point (clean and resized) are not more, and `realorai_dev` is at most 0.02 lower. Whatever the
outcome, it says which kind of data the next sources should be.

    .venv/bin/python docs/experiments/matched_sources_head.py --out reports/experiments/matched_sources_head.json
"""

from __future__ import annotations

import numpy as np
from held_out import HEAD_C_1_1, cnn_experiment, held_out_rows, report_heads

import training.photo_path as photo_path


def main() -> None:
    setup = cnn_experiment(__doc__)
    rows = held_out_rows(setup)
    two_class = sorted(photo_path.per_source_auroc(rows.clean.labels, rows.clean.sources, rows.clean.labels))
    heads = {
        "all sources": lambda data: photo_path.fit_head(data, c=HEAD_C_1_1),
        "two-class sources only": lambda data: photo_path.fit_head(
            data.subset(np.isin(data.sources, two_class)), c=HEAD_C_1_1
        ),
    }
    report: dict = {"two_class_sources": two_class, "heads": {}}
    report_heads(setup, rows, heads, report)


if __name__ == "__main__":
    main()
