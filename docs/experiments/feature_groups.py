"""Experiment (2026-12-07): which of the texture CNN's feature groups carry to sources the head never saw.

The CNN branch's linear head reads, per crop, four groups of features of the frozen ImageNet EfficientNet-Lite0
(`detector.registry.TextureStatsClassifier`): the final pooled features (1,280, the most semantic: what the crop
shows), the mean and spread of every stage's activations (first order, colour and tone included), the channel
correlations of stages 1-3 (Gram) and each stage's spatial autocorrelation at small shifts. The shared sources tie
content and photo pool to the label (old Flickr photos against 2025 polish, issue #15), and the final features are
where content lives; a head that cannot read them must rank by texture. Measured here on the cached features (five
native crops, averaged; the CNN branch alone), heads that read only some groups, each `photo_path.fit_head` with
C=0.05 on the rows the recipe learns from (clean images and their upload-like copies):

- **all**: every group (the shipped CNN branch);
- **texture**: all but the final features (first order + Gram + autocorrelation);
- **second-order**: Gram + autocorrelation only;
- **final**: the final features alone (a plain linear probe), for reference.

Leave one source out over the 22 modern sources, then each head fitted on everything scored on `realorai_dev`,
`real_photos` test and the camera photos; reported as `scale_response.py` reports (`held_out.held_out_summary`).

Rule, fixed before the one run: a group set is a candidate for the recipe only if, against **all**, its mean two-class
AUROC and its pooled AUROC are each at most 0.005 lower, one of them is at least 0.01 higher (or AI caught at 5 % of
held-out real photos flagged is 2 points higher), held-out real photos over the 1 % point (clean and resized) are not
more, and `realorai_dev` is at most 0.02 lower. A candidate then needs the whole recipe's `cross-source` and the
serving-path checks before it ships.

    .venv/bin/python docs/experiments/feature_groups.py --out reports/experiments/feature_groups.json
"""

from __future__ import annotations

import numpy as np
from held_out import HEAD_C_1_1, cnn_experiment, held_out_rows, report_heads

import training.photo_path as photo_path
from detector.registry import TextureStatsClassifier


def group_columns(module: TextureStatsClassifier) -> dict[str, np.ndarray]:
    """The column indices of each feature group in the head's input, in `TextureStatsClassifier.forward_head`'s
    order: final features, then per stage its mean, spread, Gram (stages 1-3) and autocorrelations."""
    groups: dict[str, list[int]] = {"final": [], "first_order": [], "gram": [], "autocorrelation": []}
    position = 0

    def take(group: str, count: int) -> None:
        nonlocal position
        groups[group].extend(range(position, position + count))
        position += count

    take("final", module.backbone.num_features)
    for index, info in enumerate(module.backbone.feature_info):
        channels = info["num_chs"]
        take("first_order", 2 * channels)
        if index < module.GRAM_STAGES:
            take("gram", channels * (channels - 1) // 2)
        take("autocorrelation", len(module.SHIFTS))
    if position != module.classifier.in_features:
        raise ValueError(f"feature layout read as {position} columns, the head has {module.classifier.in_features}")
    return {name: np.asarray(columns) for name, columns in groups.items()}


ARMS = {
    "all": ("final", "first_order", "gram", "autocorrelation"),
    "texture": ("first_order", "gram", "autocorrelation"),
    "second-order": ("gram", "autocorrelation"),
    "final": ("final",),
}


def columns_of(data: photo_path.ImageFeatures, columns: np.ndarray) -> photo_path.ImageFeatures:
    return photo_path.ImageFeatures(data.features[:, columns], data.labels, data.sources, data.paths)


def head_on_columns(data: photo_path.ImageFeatures, columns: np.ndarray) -> photo_path.LinearHead:
    """`photo_path.fit_head` on these columns only, as a head over every column (zero weight on the others)."""
    head = photo_path.fit_head(columns_of(data, columns), c=HEAD_C_1_1)
    weight = np.zeros(data.features.shape[1])
    weight[columns] = head.weight
    return photo_path.LinearHead(weight, head.bias)


def main() -> None:
    setup = cnn_experiment(__doc__)
    rows = held_out_rows(setup)
    groups = group_columns(setup.module)
    report: dict = {"groups": {name: len(columns) for name, columns in groups.items()}, "heads": {}}
    columns = {arm: np.concatenate([groups[name] for name in names]) for arm, names in ARMS.items()}
    heads = {arm: lambda data, arm=arm: head_on_columns(data, columns[arm]) for arm in ARMS}
    report_heads(setup, rows, heads, report)


if __name__ == "__main__":
    main()
