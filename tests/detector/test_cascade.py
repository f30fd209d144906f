"""The CNN → ViT cascade: routing by band, decision scale, heatmaps, and the bench on tiny models."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from detector import DetectorConfig, create_detector
from detector.bench import run_bench
from detector.cascade import decision_score
from detector.detector import Detector
from tests.images import jpeg_bytes


def test_only_scores_inside_the_band_go_to_the_vit(tiny_cascade):
    detector = create_detector(DetectorConfig(checkpoint=tiny_cascade, device="cpu"))
    images = [jpeg_bytes(200 + 10 * seed, 150, seed=seed) for seed in range(8)]
    # Same decode size as the cascade (the ViT's input), with a band nothing falls into.
    cnn_only = Detector(detector.cnn, detector.vit, (1.0, 1.0), detector.config).predict(images)
    cnn_scores = np.array([o.verdict.cnn_score for o in cnn_only])
    ordered = np.sort(cnn_scores)
    # Band edges halfway between neighbours, so tiny float differences between runs cannot flip a routing.
    lo, hi = (ordered[1] + ordered[2]) / 2, (ordered[5] + ordered[6]) / 2
    banded = Detector(detector.cnn, detector.vit, (float(lo), float(hi)), detector.config)
    for outcome, cnn_score in zip(banded.predict(images), cnn_scores, strict=True):
        verdict = outcome.verdict
        inside = lo <= cnn_score <= hi
        assert (verdict.vit_score is not None) == inside
        assert verdict.path == ("cnn+vit" if inside else "cnn")
        assert verdict.cnn_score == pytest.approx(cnn_score, abs=1e-4)
        if inside:
            assert verdict.vit_model_version == "tiny-test_vit@1"
            assert verdict.score == pytest.approx(float(decision_score(verdict.vit_score, 0.4)), abs=1e-6)
        else:
            assert verdict.score == pytest.approx(float(decision_score(verdict.cnn_score, 0.5)), abs=1e-6)
        assert verdict.is_ai == (verdict.score >= 0.5)


def test_decision_scale_puts_each_threshold_at_one_half():
    assert decision_score(0.8, 0.8) == pytest.approx(0.5)
    assert decision_score(0.81, 0.8) > 0.5 > decision_score(0.79, 0.8)
    assert decision_score(0.3, 0.5) == pytest.approx(0.3)


@pytest.mark.parametrize(("width", "height"), [(300, 200), (120, 480)])
@pytest.mark.parametrize("use_vit", [False, True])
def test_heatmap_keeps_the_aspect_and_is_not_constant(tiny_cascade, width, height, use_vit):
    detector = create_detector(DetectorConfig(checkpoint=tiny_cascade, device="cpu"))
    png = detector.explain(jpeg_bytes(width, height, seed=3), use_vit=use_vit)
    overlay = Image.open(io.BytesIO(png))
    assert overlay.format == "PNG"
    assert overlay.width / overlay.height == pytest.approx(width / height, rel=0.02)
    assert np.asarray(overlay, dtype=np.float32).std() > 1.0


def test_bench_reports_every_ratio_from_one_run(tiny_cascade, monkeypatch):
    from detector import bench

    monkeypatch.setattr(bench, "INPUT_KINDS", {"tiny_jpeg": (320, 240, "JPEG", 4), "tiny_png": (200, 100, "PNG", 4)})
    report = run_bench(tiny_cascade, quick=True)
    json.dumps(report)
    assert report["gemm_gflops_per_second"] > 0 and report["cnn_gflops_per_image"] > 0
    assert report["ratio_d_over_e"] == pytest.approx(report["d_cnn_forward_img_s"] / report["e_roofline_img_s"])
    for entry in report["inputs"].values():
        for key in ("a_reference_img_s", "b_cnn_stage_img_s", "c_cascade_img_s", "ratio_c_over_a", "ratio_b_over_d"):
            assert entry[key] > 0
        assert entry["c_escalation_rate"] == pytest.approx(0.5)
        assert set(entry["c_at_escalation_rate"]) == {"0.12", "0.25"}
        for at_rate in entry["c_at_escalation_rate"].values():
            assert at_rate["img_s"] > 0 and at_rate["ratio_c_over_a"] == pytest.approx(
                at_rate["img_s"] / entry["a_reference_img_s"]
            )
        assert entry["b_shared_cores_bound_img_s"] < min(entry["decode_only_img_s"], report["d_cnn_forward_img_s"])
    assert set(report["cpu_layouts_img_s"]) >= {"onnxruntime_fp32", "torch_fp32_channels_last"}
    assert report["machine"]["device"].endswith("/onnxruntime")


def test_multiscale_cnn_scores_and_explains(tmp_path):
    from tests.detector.conftest import write_tiny

    checkpoint = write_tiny(tmp_path / "ms", "test_efficientnet_multiscale", seed=2)
    detector = create_detector(DetectorConfig(checkpoint=checkpoint, device="cpu"))
    outcomes = detector.predict([jpeg_bytes(seed=seed) for seed in range(3)])
    assert len({round(o.verdict.score, 6) for o in outcomes}) == 3
    overlay = Image.open(io.BytesIO(detector.explain(jpeg_bytes(400, 300))))
    assert overlay.width / overlay.height == pytest.approx(4 / 3, rel=0.02)
    assert np.asarray(overlay, dtype=np.float32).std() > 1.0


@pytest.fixture(scope="module")
def cascade_with_thumbnail(tmp_path_factory):
    from tests.detector.conftest import write_tiny

    root = tmp_path_factory.mktemp("thumb-cascade")
    write_tiny(root / "cnn", "test_efficientnet", seed=0)
    write_tiny(root / "vit", "test_vit", seed=1, input_size=160, threshold=0.4)
    write_tiny(root / "thumb", "test_efficientnet_multiscale", seed=5, input_size=96, threshold=0.3)
    (root / "cascade.json").write_text(
        json.dumps(
            {"cnn": "cnn", "vit": "vit", "escalation_band": [0.0, 1.0], "thumbnail": {"model": "thumb", "max_side": 64}}
        )
    )
    return root


def test_images_no_larger_than_the_thumbnail_side_go_to_the_thumbnail_expert_alone(cascade_with_thumbnail):
    detector = create_detector(DetectorConfig(checkpoint=cascade_with_thumbnail, device="cpu", max_batch_size=3))
    sizes = [(32, 32), (320, 240), (64, 40), (65, 65), (20, 60), (400, 300), (32, 32)]
    images = [jpeg_bytes(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    thumb = detector.thumbnail
    assert thumb is not None
    assert detector.model_version == "tiny-test_efficientnet@1+tiny-test_vit@1+tiny-test_efficientnet_multiscale@1"
    outcomes = detector.predict([*images, b"not an image"])
    assert outcomes[-1].verdict is None and outcomes[-1].error
    for data, (w, h), outcome in zip(images, sizes, outcomes, strict=False):
        verdict = outcome.verdict
        if max(w, h) <= 64:
            expected = thumb.score([thumb.model_input(detector.decode(data))])[0]
            assert verdict.path == "cnn" and verdict.vit_score is None and verdict.model_version == "1"
            assert verdict.model_name == "tiny-test_efficientnet_multiscale"
            assert verdict.cnn_score == pytest.approx(float(expected), abs=1e-5)
            assert verdict.score == pytest.approx(float(decision_score(expected, 0.3)), abs=1e-5)
        else:
            # The band covers everything: every screened image is escalated, and the ViT that decided is named (#14).
            assert verdict.path == "cnn+vit" and verdict.vit_score is not None
            assert verdict.model_name == "tiny-test_vit"
    # Grad-CAM of a thumbnail comes from the model that decided it.
    overlay = Image.open(io.BytesIO(detector.explain(images[0])))
    assert overlay.size[0] == overlay.size[1]


def test_a_thumbnail_side_the_decoder_could_not_tell_apart_is_refused(cascade_with_thumbnail):
    spec = json.loads((cascade_with_thumbnail / "cascade.json").read_text())
    spec["thumbnail"]["max_side"] = 160
    (cascade_with_thumbnail / "cascade.json").write_text(json.dumps(spec))
    try:
        with pytest.raises(ValueError, match="thumbnail_max_side"):
            create_detector(DetectorConfig(checkpoint=cascade_with_thumbnail, device="cpu"))
    finally:
        spec["thumbnail"]["max_side"] = 64
        (cascade_with_thumbnail / "cascade.json").write_text(json.dumps(spec))


@pytest.fixture(scope="module")
def fused_cascade(tmp_path_factory):
    """A photo-path cascade: a CNN on native crops, a multi-layer ViT, a stacking fusion that abstains when they
    disagree."""
    from tests.detector.conftest import write_tiny

    root = tmp_path_factory.mktemp("fused")
    write_tiny(root / "cnn", "test_efficientnet_texture", seed=0, head_scale=30.0)
    card = json.loads((root / "cnn" / "card.json").read_text())
    (root / "cnn" / "card.json").write_text(
        json.dumps({**card, "views": "native_crops", "max_crops": 3, "canonical_side": 128})
    )
    write_tiny(root / "vit", "test_vit_multilayer", seed=1, head_scale=30.0)
    fusion = {"cnn_weight": 0.6, "vit_weight": 0.4, "bias": 0.1, "operating_point": [0.3, 0.7],
              "cnn_operating_point": [0.3, 0.7], "disagreement": 0.3,
              "cnn_threshold": 0.5, "vit_threshold": 0.5}  # fmt: skip
    (root / "cascade.json").write_text(
        json.dumps(
            {
                "name": "fused-test",
                "version": "2",
                "cnn": "cnn",
                "vit": "vit",
                "escalation_band": [0.0, 1.0],
                "fusion": fusion,
            }
        )
    )
    return root


def test_a_fusion_combines_both_models_logits_and_abstains_when_they_disagree(fused_cascade, tmp_path):
    import shutil

    from detector.cascade import OperatingPoint

    images = [jpeg_bytes(150 + 20 * seed, 140, seed=seed) for seed in range(10)]
    probe = create_detector(DetectorConfig(checkpoint=fused_cascade, device="cpu"))
    decoded = [probe.decode(data) for data in images]
    cnn = probe.cnn.logits([probe.cnn.model_input(image) for image in decoded])
    vit = probe.vit.logits([probe.vit.model_input(image) for image in decoded])
    assert probe.cnn.model_input(decoded[-1]).shape[0] == 3  # native crops, averaged
    # Each model's own threshold at its median here, so they fall on opposite sides for some images.
    cnn_mid, vit_mid = float(np.median(cnn)), float(np.median(vit))
    checkpoint = shutil.copytree(fused_cascade, tmp_path / "fused")
    spec = json.loads((checkpoint / "cascade.json").read_text())
    spec["fusion"].update(
        cnn_threshold=float(1 / (1 + np.exp(-cnn_mid))), vit_threshold=float(1 / (1 + np.exp(-vit_mid)))
    )
    (checkpoint / "cascade.json").write_text(json.dumps(spec))
    detector = create_detector(DetectorConfig(checkpoint=checkpoint, device="cpu"))
    outcomes = detector.predict(images)
    fused = 1 / (1 + np.exp(-(0.6 * cnn + 0.4 * vit + 0.1)))
    disagree = (np.sign(cnn - cnn_mid) != np.sign(vit - vit_mid)) & (np.abs((cnn - cnn_mid) - (vit - vit_mid)) >= 0.3)
    assert disagree.any() and not disagree.all(), "the tiny models should disagree on some images only"
    for outcome, expected, abstains in zip(outcomes, fused, disagree, strict=True):
        verdict = outcome.verdict
        assert verdict.path == "cnn+vit"
        assert verdict.model_name == "fused-test" and verdict.model_version == "2"
        assert verdict.score == pytest.approx(float(decision_score(expected, OperatingPoint(0.3, 0.7))), abs=1e-4)
        assert (verdict.review_reason is not None) == bool(abstains)
        if abstains:
            assert verdict.label == "needs-review"
    # The heatmap covers every crop the CNN scored.
    overlay = Image.open(io.BytesIO(detector.explain(images[0], use_vit=False)))
    assert overlay.size == decoded[0].size


def test_outside_its_band_the_cnn_decides_alone_at_its_own_operating_point(fused_cascade):
    from detector.cascade import OperatingPoint

    detector = create_detector(DetectorConfig(checkpoint=fused_cascade, device="cpu"))
    images = [jpeg_bytes(150 + 20 * seed, 140, seed=seed) for seed in range(10)]
    probabilities = np.array([o.verdict.cnn_score for o in detector.predict(images)])
    lo, hi = np.quantile(probabilities, [0.3, 0.7])
    banded = Detector(detector.cnn, detector.vit, (float(lo), float(hi)), detector.config, fusion=detector.fusion,
                      name="fused-test", version="2")  # fmt: skip
    for outcome, probability in zip(banded.predict(images), probabilities, strict=True):
        verdict = outcome.verdict
        if probability < lo or probability > hi:
            assert verdict.path == "cnn" and verdict.model_name == detector.cnn.card.name
            assert verdict.score == pytest.approx(
                float(decision_score(probability, OperatingPoint(0.3, 0.7))), abs=1e-6
            )
        else:
            assert verdict.path == "cnn+vit"
