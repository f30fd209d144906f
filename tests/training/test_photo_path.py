"""Detector v2's photo path on a generated miniature of ../shared: leave-one-source-out, and a trained checkpoint
that serving scores exactly as the trainer did."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from detector import DetectorConfig, create_detector
from detector.cascade import LABEL_AI, LABEL_REAL, LABEL_REVIEW, Fusion, OperatingPoint
from tests.training.conftest import TARGETS, TINY
from training.metrics import auroc
from training.photo_path import (
    AUGMENTED_SUFFIX,
    ImageFeatures,
    Invariance,
    branch_features,
    choose_head_c,
    copy_differences,
    cross_source_report,
    disagreement_distance,
    fit_head,
    fit_photo_path,
    out_of_fold_logits,
    photo_sets,
    risk_coverage,
    sigmoid,
    source_held_out_heads,
    train_photo_path,
    within_source_auroc,
)


def test_every_source_is_held_out_once_and_reported_as_the_issue_asks(shared, cache):
    # With heads invariant to the resized copies (the same copies the robustness check scores: no extra features).
    invariance = Invariance(copies=("resized",), strength=1.0)
    report = cross_source_report(shared, cache_dir=cache, targets=TARGETS, branches=TINY, invariance=invariance)

    expected = {f"modern_mix:{t}" for t in ("aaa", "bbb", "ccc")} | {f"modern_train:{t}" for t in ("ddd", "eee", "fff")}
    assert set(report["sources"]) == expected | {"realorai_dev", "camera_photos_real", "real_photos_test"}
    for name, row in report["sources"].items():
        if row["fake"] and row["real"]:
            assert 0.0 <= row["auroc"] <= 1.0 and 0.0 <= row["auroc_cnn"] <= 1.0 and 0.0 <= row["auroc_vit"] <= 1.0
            assert "tpr_at_1pct_fpr" in row
        if row["fake"]:
            assert 0.0 <= row["auto_tagged"] <= row["caught"] <= 1.0, name
        if row["real"]:
            assert 0.0 <= row["real_tagged_ai"] + row["real_to_review"] <= 1.0, name
    assert report["sources"]["modern_train:ddd"]["real"] == 0  # a fake-only source reports its catch rate
    assert report["sources"]["modern_train:fff"]["fake"] == 0  # a real-only one its false positives
    assert report["summary"]["two_class_sources"] == 5
    assert report["invariance"]["copies"] == ("resized",) and report["invariance"]["strength"] == 1.0
    # Each fold chose its heads' C without its held-out source; the fit on everything made its own choice.
    assert set(report["head_c"]) == expected | {"all sources"}
    for choice in report["head_c"].values():
        assert choice["cnn"] in TINY["cnn"].c_grid and choice["vit"] == 1.0
    # The miniature is easy: held-out sources are still told apart.
    assert report["summary"]["mean_auroc"] > 0.8
    curve = risk_coverage(report["held_out_scores"])
    abstained = [flag for part in report["held_out_scores"].values() for flag in part["abstained"]]
    assert curve[0]["coverage"] == 1.0 - sum(abstained) / len(abstained), "what abstains is never decided"
    assert curve[-1]["coverage"] <= curve[0]["coverage"]
    # Abstentions stay in review at every margin.
    fake = {"s": {"labels": [1, 0, 1, 0], "score": [0.9, 0.1, 0.8, 0.95], "abstained": [False, False, False, True]}}
    assert risk_coverage(fake, margins=np.array([0.0]))[0] == {"margin": 0.0, "coverage": 0.75, "risk": 0.0}
    # The robustness check: every held-out training source again, on its resized copies, same images and labels.
    assert set(report["resized"]) == expected
    for name, row in report["resized"].items():
        assert (row["fake"], row["real"]) == (report["sources"][name]["fake"], report["sources"][name]["real"])
    rates = report["resized_summary"]
    assert rates["real_images"] == sum(report["sources"][name]["real"] for name in expected)
    assert 0 <= rates["real_tagged_ai"] <= rates["real_images"]


def test_a_trained_photo_path_is_served_exactly_as_the_trainer_scored_it(shared, cache, tmp_path):
    out = tmp_path / "model"
    training = train_photo_path(
        shared, out, cache_dir=cache, thumbnail=None, thumbnail_max_side=0, version="9.9.9",
        targets=TARGETS, branches=TINY,
    )  # fmt: skip
    assert training["out_of_fold"]["auroc_fused"] > 0.8
    assert 0.0 <= training["out_of_fold"]["disagreement_rate"] <= training["out_of_fold"]["escalation_rate"]
    assert set(training["head_c"]["cnn"]["out_of_fold_auroc_by_c"]) == {"0.1", "1.0"}
    assert training["head_c"]["cnn"]["c"] in (0.1, 1.0) and training["head_c"]["vit"]["c"] == 1.0
    cascade = json.loads((out / "cascade.json").read_text())
    assert cascade["name"] == "photo-fusion" and cascade["version"] == "9.9.9"
    assert cascade["escalation_band"][0] <= cascade["escalation_band"][1]

    _, evaluation = photo_sets(shared)
    items = evaluation["realorai_dev"]
    train_items, _ = photo_sets(shared)
    pool = branch_features(shared, train_items, cache_dir=cache, augment=True, branches=TINY)
    path = fit_photo_path(pool["cnn"], pool["vit"], TARGETS, branches=TINY)
    features = branch_features(shared, items, cache_dir=cache, augment=False, branches=TINY)
    expected = path.scores(features["cnn"], features["vit"])

    # The runtime the trainer scores with (a ViT may run in bf16 by default; detector tests bound that difference).
    detector = create_detector(DetectorConfig(checkpoint=out, device="cpu", cpu_runtime="onnxruntime"))
    outcomes = detector.predict([item.path.read_bytes() for item in items])
    served = np.array([outcome.verdict.score for outcome in outcomes])
    assert served == pytest.approx(expected["score"], abs=2e-3)
    for outcome, escalated in zip(outcomes, expected["escalated"], strict=True):
        verdict = outcome.verdict
        assert (verdict.path == "cnn+vit") == bool(escalated)
        assert verdict.label in (LABEL_AI, LABEL_REVIEW, LABEL_REAL)
        if escalated:
            assert verdict.model_name == "photo-fusion" and verdict.model_version == "9.9.9"
        else:
            assert verdict.model_name == "tiny-crops"


def test_the_vit_can_be_compared_on_the_cnns_crops():
    from training.photo_path import BRANCHES, branches_with_vit_views

    assert branches_with_vit_views("resize") == BRANCHES
    crops = branches_with_vit_views("native_crops")
    assert crops["cnn"] == BRANCHES["cnn"] and crops["vit"].weights == BRANCHES["vit"].weights
    assert (crops["vit"].views, crops["vit"].max_crops, crops["vit"].canonical_side) == ("native_crops", 5, 512)


def _images_and_copies(seed: int = 0) -> ImageFeatures:
    """Two features: `signal` tells the label and survives a copy; `crispness` tells it too in these images, but a
    copy (a downscale, say) moves it a lot."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], 200)
    signal = labels + rng.normal(0, 0.8, labels.size)
    crispness = labels + rng.normal(0, 0.5, labels.size)
    clean = np.c_[signal, crispness]
    copy = np.c_[signal, crispness + rng.normal(0, 2.0, labels.size)]
    paths = np.array([f"img{i}.jpg" for i in range(labels.size)])
    return ImageFeatures(
        np.r_[clean, copy].astype(np.float32),
        np.r_[labels, labels],
        np.array(["a" if i % 2 else "b" for i in range(labels.size)] * 2),
        np.r_[paths, np.char.add(paths, f"{AUGMENTED_SUFFIX}-resized")],
    )


def test_copy_differences_pair_each_copy_with_its_own_image():
    data = _images_and_copies()
    pairs = copy_differences(data, ("resized",))
    assert len(pairs) == 400 and copy_differences(data, ("upload-like",)).features.shape == (0, 2)
    np.testing.assert_allclose(pairs.features, data.features[400:] - data.features[:400])
    assert (pairs.labels == data.labels[:400]).all() and (pairs.sources == data.sources[:400]).all()


def test_an_invariant_head_leans_on_what_a_copy_keeps_not_on_what_it_changes():
    data = _images_and_copies()
    clean = data.subset(np.char.find(data.paths.astype(str), AUGMENTED_SUFFIX) < 0)
    pairs = copy_differences(data, ("resized",))
    plain = fit_head(clean, c=1.0)
    invariant = fit_head(clean, c=1.0, nuisance=pairs, invariance=Invariance(copies=("resized",), strength=10.0))

    # Without the pairs the head trusts crispness most (it is the cleaner cue in these images); with them, signal.
    assert abs(plain.weight[1]) > abs(plain.weight[0])
    assert abs(invariant.weight[0]) > 3 * abs(invariant.weight[1])
    moved = {
        name: np.abs(head.logits(pairs) - head.bias).mean() for name, head in (("plain", plain), ("inv", invariant))
    }
    assert moved["inv"] < moved["plain"] / 3
    # Off by default: no strength, or no copies named, is the plain head.
    np.testing.assert_allclose(fit_head(clean, c=1.0, nuisance=pairs).weight, plain.weight)


def test_with_real_pools_a_head_stops_telling_old_photos_from_new_ones():
    """Most real photos are old ("old": no polish); AI images and a few modern photos ("new") are polished. Only
    `signal` tells AI from real within the modern look."""
    rng = np.random.default_rng(1)
    groups = [("old", 0, 160, 0.0), ("new", 0, 40, 1.5), ("gen-a", 1, 100, 1.5), ("gen-b", 1, 100, 1.5)]
    sources = np.concatenate([[name] * n for name, _, n, _ in groups])
    labels = np.concatenate([[label] * n for _, label, n, _ in groups])
    polish = np.concatenate([rng.normal(level, 0.4, n) for _, _, n, level in groups])
    signal = labels + rng.normal(0, 0.8, labels.size)
    data = ImageFeatures(np.c_[signal, polish].astype(np.float32), labels, sources, sources)
    plain = fit_head(data, c=1.0)
    pools = fit_head(data, c=1.0, invariance=Invariance(strength=1.0, real_pools=True))

    # Without it the head leans on polish (2.8 against 1.2 here), and calls the modern photos AI on average.
    assert abs(plain.weight[1]) > 2 * abs(plain.weight[0])
    assert abs(pools.weight[1]) < abs(pools.weight[0])
    modern_reals = data.subset(sources == "new")
    assert plain.logits(modern_reals).mean() > 0 > pools.logits(modern_reals).mean()


def test_each_head_takes_the_c_whose_source_held_out_logits_rank_best():
    """Two informative features among 300 of noise, 12 sources of 10 images: the unpenalised head fits the noise,
    so held out it ranks worse than a strongly penalised one."""
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 60)
    sources = np.repeat([f"s{i}" for i in range(12)], 10)
    signal = labels[:, None] * 0.8 + rng.normal(0, 1, (120, 2))
    data = ImageFeatures(np.c_[signal, rng.normal(0, 1, (120, 300))].astype(np.float32), labels, sources, sources)
    held_out = {c: out_of_fold_logits(data, c=c) for c in (0.001, 1.0, 100.0)}

    for by, rank in (("within-source", lambda oof: within_source_auroc(labels, sources, oof)),
                     ("pooled", lambda oof: auroc(labels, oof))):  # fmt: skip
        choice = choose_head_c(data, (100.0, 0.001, 1.0), by=by)
        expected = {c: rank(oof) for c, oof in held_out.items()}
        assert choice.auroc_by_c == pytest.approx(expected)
        assert choice.c == max(expected, key=expected.get) == 0.001
        np.testing.assert_allclose(choice.oof, held_out[0.001])
    # One C: nothing to choose, and the logits are those at that C.
    single = choose_head_c(data, (1.0,))
    assert single.c == 1.0 and single.auroc_by_c == {}
    np.testing.assert_allclose(single.oof, out_of_fold_logits(data, c=1.0))
    with pytest.raises(ValueError, match="unknown criterion"):
        choose_head_c(data, (0.1, 1.0), by="accuracy")


def test_within_source_auroc_ignores_which_pool_an_image_came_from():
    # Each source's AI images score above its own reals, but one pool's reals score above the other's AI images.
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    sources = np.array(["old"] * 4 + ["new"] * 4)
    scores = np.array([0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9])
    assert within_source_auroc(labels, sources, scores) == 1.0
    assert auroc(labels, scores) == pytest.approx(0.75)
    # Sources with one class are left out; with none of both, the pooled AUROC.
    one_class = np.array(["a", "a", "b", "b", "c", "c", "c", "c"])
    assert within_source_auroc(labels, one_class, scores) == 1.0
    by_class = np.where(labels == 1, "fakes", "reals")
    assert within_source_auroc(labels, by_class, scores) == pytest.approx(0.75)


def test_the_disagreement_rule_reaches_the_same_images_whatever_the_heads_logit_scale():
    """The distance is read off the training images for a share of them, so a head whose logits come out 3x smaller
    (another C) disagrees on the same images; a fixed distance would fall silent."""
    rng = np.random.default_rng(0)
    cnn, vit = rng.normal(0, 3, 2000), rng.normal(0, 3, 2000)

    def firing(scale: float) -> np.ndarray:
        threshold = float(sigmoid(scale * 1.0))
        distance = disagreement_distance(
            scale * cnn, scale * vit, band=(0.0, 1.0), cnn_threshold=threshold, vit_threshold=threshold, share=0.05
        )
        point = OperatingPoint(0.4, 0.6)
        fusion = Fusion(
            1.0, 1.0, 0.0, point, point, disagreement=distance, cnn_threshold=threshold, vit_threshold=threshold
        )
        return fusion.disagree(scale * cnn, scale * vit)

    assert firing(1.0).sum() == 100 and (firing(1.0) == firing(1 / 3)).all()
    # Outside the escalation band nothing counts; a share that allows no image turns the rule off.
    outside = disagreement_distance(cnn, vit, band=(0.0, 0.0), cnn_threshold=0.7, vit_threshold=0.7, share=0.05)
    assert outside == 0.0
    assert disagreement_distance(cnn, vit, band=(0.0, 1.0), cnn_threshold=0.7, vit_threshold=0.7, share=None) is None
    assert disagreement_distance(cnn, vit, band=(0.0, 1.0), cnn_threshold=0.7, vit_threshold=0.7, share=1e-4) is None


def _shrinkable_photos(seed: int = 0) -> tuple[ImageFeatures, ImageFeatures]:
    """Images of six sources and copies of their real photos that a shrink made look more like AI (`crispness` up)."""
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 1], 300)
    sources = np.repeat([f"s{i}" for i in range(6)], 100)
    features = np.c_[labels + rng.normal(0, 0.8, labels.size), labels + rng.normal(0, 0.8, labels.size)]
    paths = np.array([f"img{i}.jpg" for i in range(labels.size)])
    data = ImageFeatures(features.astype(np.float32), labels, sources, paths)
    real = labels == 0
    shrunk = features[real] + np.array([0.0, 1.0])
    copies = ImageFeatures(
        shrunk.astype(np.float32), labels[real], sources[real], np.char.add(paths[real], f"{AUGMENTED_SUFFIX}-resized")
    )
    return data, copies


def test_ai_points_hold_the_target_on_the_real_photos_copies_too():
    data, copies = _shrinkable_photos()
    fixed = {name: replace(spec, c_grid=(1.0,)) for name, spec in TINY.items()}
    plain = fit_photo_path(data, data, TARGETS, branches=fixed)
    aware = fit_photo_path(data, data, TARGETS, branches=fixed, real_copies={"cnn": copies, "vit": copies})

    # The copies' logits come from the heads that did not see their source, as the training images' do.
    held_out = source_held_out_heads(data, c=1.0).logits(copies)
    fused = aware.fusion.logits(held_out, held_out)
    assert aware.point.ai == pytest.approx(max(plain.point.ai, float(np.quantile(sigmoid(fused), 0.9))))
    assert aware.point.ai > plain.point.ai and aware.cnn_point.ai > plain.cnn_point.ai
    # What else the recipe fits is untouched: heads, fusion, band, the disagreement rule's thresholds.
    assert (aware.fusion, aware.band, aware.cnn_threshold) == (plain.fusion, plain.band, plain.cnn_threshold)
    np.testing.assert_allclose(aware.cnn_head.weight, plain.cnn_head.weight)
    # Copies that look like their originals change nothing; copies of a source the heads never saw are refused.
    same = data.subset(data.labels == 0)
    unchanged = fit_photo_path(data, data, TARGETS, branches=fixed, real_copies={"cnn": same, "vit": same})
    assert unchanged.point == plain.point
    stranger = ImageFeatures(copies.features, copies.labels, np.full(len(copies), "elsewhere"), copies.paths)
    with pytest.raises(ValueError, match="every scored image"):
        source_held_out_heads(data, c=1.0).logits(stranger)


def test_the_recipe_reads_its_ai_points_on_the_copies_it_names(shared, cache, tmp_path):
    plain, aware = tmp_path / "plain", tmp_path / "aware"
    for out, targets in ((plain, TARGETS), (aware, replace(TARGETS, ai_point_copies=("resized",)))):
        train_photo_path(
            shared, out, cache_dir=cache, thumbnail=None, thumbnail_max_side=0, version="1", targets=targets,
            branches=TINY,
        )  # fmt: skip
    cascades = {out: json.loads((out / "cascade.json").read_text()) for out in (plain, aware)}
    assert cascades[aware]["training"]["targets"]["ai_point_copies"] == ["resized"]
    fusion = {out: cascade["fusion"] for out, cascade in cascades.items()}
    # The miniature's resized real photos score higher than its training images' (fused; the CNN's point holds).
    assert fusion[aware]["operating_point"][1] > fusion[plain]["operating_point"][1]
    assert fusion[aware]["cnn_operating_point"][1] >= fusion[plain]["cnn_operating_point"][1]
    for key in ("cnn_weight", "vit_weight", "bias", "cnn_threshold", "vit_threshold"):
        assert fusion[aware][key] == fusion[plain][key]


def test_a_polished_copy_is_the_same_photo_edited_and_reproducible():
    import random

    from PIL import Image

    from tests.images import natural_photo
    from training.photo_path import AUGMENTATIONS

    photo = natural_photo(160, 120, 3)
    edited = [AUGMENTATIONS["polished"](photo, random.Random(seed)) for seed in ("a", "a", "b")]
    assert all(copy.size == photo.size and copy.mode == "RGB" for copy in edited)
    assert np.array_equal(np.asarray(edited[0]), np.asarray(edited[1]))
    assert not np.array_equal(np.asarray(edited[0]), np.asarray(edited[2]))

    def colourfulness(image: Image.Image) -> float:
        array = np.asarray(image, dtype=np.float64)
        return float(np.abs(array - array.mean(axis=2, keepdims=True)).mean())

    # Richer colour, and still the same picture (edited, not replaced).
    assert all(colourfulness(copy) > colourfulness(photo) for copy in edited)
    original = np.asarray(photo, dtype=np.float64).ravel()
    assert all(np.corrcoef(original, np.asarray(copy, dtype=np.float64).ravel())[0, 1] > 0.9 for copy in edited)
