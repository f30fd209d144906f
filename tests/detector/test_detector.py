"""The detector's public API on a tiny model checkpoint written by the tests, and on the shipped default."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from detector import DEFAULT_CHECKPOINT, DetectorConfig, ModelCard, create_detector, load_checkpoint, save_checkpoint
from detector.device import cpu_has_native_bf16
from detector.registry import build_model
from tests.conftest import REPO_ROOT
from tests.detector.conftest import write_tiny
from tests.images import jpeg_bytes


def test_checkpoint_round_trip_is_exact_in_fp16_with_a_float32_head(tmp_path):
    torch.manual_seed(0)
    model = build_model("test_efficientnet")
    card = ModelCard(name="tiny", version="1", architecture="test_efficientnet", input_size=64)
    loaded, loaded_card = load_checkpoint(save_checkpoint(model, card, tmp_path / "ckpt"))
    weights = (tmp_path / "ckpt" / "model.safetensors").read_bytes()
    assert loaded_card == replace(card, weights_sha256=hashlib.sha256(weights).hexdigest())
    for key, value in model.state_dict().items():
        head = key.startswith("classifier.")  # tiny, and folded standardisation can exceed float16's range
        expected = value.half().float() if value.is_floating_point() and not head else value
        assert torch.equal(loaded.state_dict()[key], expected), key


def test_the_same_weights_always_make_the_same_file(tmp_path):
    torch.manual_seed(0)
    model = build_model("test_efficientnet")
    card = ModelCard(name="tiny", version="1", architecture="test_efficientnet", input_size=64)
    files = {(save_checkpoint(model, card, tmp_path / str(n)) / "model.safetensors").read_bytes() for n in range(16)}
    assert len(files) == 1


def test_weights_that_do_not_match_their_card_are_refused(tmp_path, tiny_checkpoint):
    checkpoint = shutil.copytree(tiny_checkpoint, tmp_path / "copy")
    other = save_checkpoint(build_model("test_efficientnet"), ModelCard.load(checkpoint / "card.json"), tmp_path / "o")
    shutil.copy(other / "model.safetensors", checkpoint / "model.safetensors")
    with pytest.raises(ValueError, match="does not match its card"):
        load_checkpoint(checkpoint)


def test_shipped_cards_name_their_weights():
    for card_file in DEFAULT_CHECKPOINT.glob("*/card.json"):
        card = json.loads(card_file.read_text())
        weights = (card_file.parent / "model.safetensors").read_bytes()
        assert card["weights_sha256"] == hashlib.sha256(weights).hexdigest(), card_file


def test_card_refuses_unknown_architecture_and_fields(tmp_path, tiny_checkpoint):
    checkpoint = shutil.copytree(tiny_checkpoint, tmp_path / "copy")
    card = json.loads((checkpoint / "card.json").read_text())
    with pytest.raises(ValueError, match="unknown fields"):
        ModelCard.from_dict({**card, "pickle_me": True})
    (checkpoint / "card.json").write_text(json.dumps({**card, "architecture": "os.system"}))
    with pytest.raises(ValueError, match="unknown architecture"):
        load_checkpoint(checkpoint)


def test_predict_scores_good_images_and_rejects_bad_ones_in_one_batch(tiny_checkpoint):
    detector = create_detector(DetectorConfig(checkpoint=tiny_checkpoint, device="cpu"))
    outcomes = detector.predict([jpeg_bytes(seed=1), b"not an image", jpeg_bytes(seed=2, width=2000, height=100)])
    assert [outcome.error is None for outcome in outcomes] == [True, False, True]
    assert outcomes[1].error == "not a recognised image format"
    for outcome in (outcomes[0], outcomes[2]):
        verdict = outcome.verdict
        assert 0.0 <= verdict.score <= 1.0 and verdict.path == "cnn" and verdict.batch_size == 2
        assert verdict.is_ai == (verdict.score >= 0.5)


def test_a_model_that_returns_nan_records_an_error_not_a_verdict(tmp_path):
    torch.manual_seed(0)
    model = build_model("test_efficientnet")
    with torch.no_grad():
        model.get_classifier().bias.fill_(float("nan"))
    card = ModelCard(name="broken", version="1", architecture="test_efficientnet", input_size=64, threshold=0.5)
    detector = create_detector(DetectorConfig(checkpoint=save_checkpoint(model, card, tmp_path / "cnn"), device="cpu"))
    outcomes = detector.predict([jpeg_bytes(seed=1), b"not an image"])
    assert [outcome.verdict for outcome in outcomes] == [None, None]
    assert [outcome.error for outcome in outcomes] == [
        "the model returned no finite score for this image",
        "not a recognised image format",
    ]


def test_batched_scores_equal_one_at_a_time(tiny_checkpoint):
    detector = create_detector(DetectorConfig(checkpoint=tiny_checkpoint, device="cpu", max_batch_size=2))
    images = [jpeg_bytes(seed=seed) for seed in range(5)]
    together = [o.verdict.score for o in detector.predict(images)]
    alone = [detector.predict([image])[0].verdict.score for image in images]
    assert together == pytest.approx(alone, abs=1e-5)
    assert len(set(together)) > 1, "different images should get different scores"


def test_cpu_scores_through_onnxruntime_exactly_as_pytorch_does(tmp_path):
    # Unscaled heads keep probabilities off 0 and 1, so a wrong normalisation or layout would show.
    write_tiny(tmp_path / "cascade" / "cnn", "test_efficientnet", seed=0, head_scale=1.0)
    write_tiny(tmp_path / "cascade" / "vit", "test_vit", seed=1, input_size=160, head_scale=1.0)
    (tmp_path / "cascade" / "cascade.json").write_text(
        json.dumps({"cnn": "cnn", "vit": "vit", "escalation_band": [0.0, 1.0]})
    )
    images = [jpeg_bytes(seed=seed) for seed in range(6)] + [jpeg_bytes(seed=9, width=2000, height=100)]
    # The run's shared ONNX cache (tests/settings.py): the next test exports the same two models.
    config = DetectorConfig(checkpoint=tmp_path / "cascade", device="cpu", cpu_runtime="onnxruntime")
    fast = create_detector(config)
    eager = create_detector(replace(config, cpu_runtime="torch"))
    assert fast.cnn.placement.runtime == fast.vit.placement.runtime == "onnxruntime"
    assert eager.cnn.placement.runtime == "torch"
    ours, theirs = fast.predict(images), eager.predict(images)
    assert [o.verdict.path for o in ours] == [o.verdict.path for o in theirs]
    assert "cnn+vit" in {o.verdict.path for o in ours}, "the band should send some of these to the ViT"
    assert len({o.verdict.cnn_score for o in ours}) == len(images) and len({o.verdict.vit_score for o in ours}) > 1
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.verdict.cnn_score == pytest.approx(reference.verdict.cnn_score, abs=1e-6)
        assert mine.verdict.vit_score == pytest.approx(reference.verdict.vit_score, abs=1e-6)
    assert fast.explain(images[0])[:8] == b"\x89PNG\r\n\x1a\n", "heatmaps still come from the PyTorch module"


def test_on_a_cpu_with_native_bf16_the_vit_runs_in_bf16_and_scores_as_fp32_does(tmp_path):
    write_tiny(tmp_path / "cascade" / "cnn", "test_efficientnet", seed=0, head_scale=1.0)
    write_tiny(tmp_path / "cascade" / "vit", "test_vit", seed=1, input_size=160, head_scale=1.0)
    (tmp_path / "cascade" / "cascade.json").write_text(
        json.dumps({"cnn": "cnn", "vit": "vit", "escalation_band": [0.0, 1.0]})
    )
    config = DetectorConfig(checkpoint=tmp_path / "cascade", device="cpu")
    auto = create_detector(config)
    assert auto.cnn.placement.runtime == "onnxruntime" and auto.cnn.placement.dtype == torch.float32
    if not cpu_has_native_bf16():
        assert auto.vit.placement == auto.cnn.placement
        return
    assert (auto.vit.placement.runtime, auto.vit.placement.dtype) == ("torch", torch.bfloat16)
    images = [jpeg_bytes(seed=seed) for seed in range(4)]
    reference = create_detector(replace(config, cpu_runtime="torch")).predict(images)
    for mine, fp32 in zip(auto.predict(images), reference, strict=True):
        assert mine.verdict.vit_score == pytest.approx(fp32.verdict.vit_score, abs=0.02)
    assert auto.explain(images[0], use_vit=True)[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnx_exports_are_cached_per_model_and_refreshed_when_the_weights_change(tmp_path):
    checkpoint = write_tiny(tmp_path / "cnn", "test_efficientnet", seed=0)
    cache = tmp_path / "cache"
    first = create_detector(DetectorConfig(checkpoint=checkpoint, device="cpu", onnx_cache_dir=cache))
    exported = first.cnn.onnx_scorer.path
    stamp = exported.stat().st_mtime_ns
    again = create_detector(DetectorConfig(checkpoint=checkpoint, device="cpu", onnx_cache_dir=cache))
    assert again.cnn.onnx_scorer.path == exported and exported.stat().st_mtime_ns == stamp, "loaded, not re-exported"
    write_tiny(checkpoint, "test_efficientnet", seed=1)
    changed = create_detector(DetectorConfig(checkpoint=checkpoint, device="cpu", onnx_cache_dir=cache))
    assert changed.cnn.onnx_scorer.path != exported
    image = [jpeg_bytes(seed=3)]
    assert changed.predict(image)[0].verdict.cnn_score != first.predict(image)[0].verdict.cnn_score
    assert sorted(path.suffix for path in cache.iterdir()) == [".onnx", ".onnx"], "no partial files left behind"


def test_shipped_default_is_a_fused_photo_cascade_with_its_out_of_fold_evaluation():
    detector = create_detector(DetectorConfig(device="cpu"))
    assert detector.cnn.card.architecture == "tf_efficientnet_lite0_texture"
    assert detector.cnn.card.views == "native_crops"
    assert detector.vit is not None and detector.vit.card.architecture == "vit_small_patch14_dinov2_multilayer"
    lo, hi = detector.band
    assert 0.0 <= lo <= hi <= 1.0
    assert detector.fusion is not None and detector.model_version.startswith("photo-fusion@")
    assert 0.0 < detector.fusion.point.real < detector.fusion.point.ai < 1.0
    training = json.loads((DEFAULT_CHECKPOINT / "cascade.json").read_text())["training"]
    assert training["fingerprint"] and training["images"] > 0
    assert 0.5 < training["out_of_fold"]["auroc_fused"] <= 1.0


def test_cli_predict_prints_json(tmp_path, tiny_checkpoint):
    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "detector", "predict", str(image), "--json", "--checkpoint", str(tiny_checkpoint)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    record = json.loads(result.stdout)
    assert record["file"] == str(image) and record["error"] is None and 0 <= record["verdict"]["score"] <= 1


def test_cli_predict_gives_each_unreadable_file_its_own_error_and_scores_the_rest(tmp_path, tiny_checkpoint):
    good, missing, folder, corrupt = (tmp_path / name for name in ("good.jpg", "missing.jpg", "folder", "bad.jpg"))
    good.write_bytes(jpeg_bytes())
    folder.mkdir()
    corrupt.write_bytes(b"not an image")
    result = subprocess.run(
        [sys.executable, "-m", "detector", "predict", str(missing), str(good), str(folder), str(corrupt), "--json",
         "--checkpoint", str(tiny_checkpoint)],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    records = {Path(record["file"]).name: record for record in map(json.loads, result.stdout.splitlines())}
    assert list(records) == ["missing.jpg", "good.jpg", "folder", "bad.jpg"], "one record per file, in order"
    assert records["good.jpg"]["verdict"] is not None and records["good.jpg"]["error"] is None
    assert records["missing.jpg"]["error"].startswith("cannot read file") and records["folder"]["error"]
    assert records["bad.jpg"]["verdict"] is None and "not a recognised image format" in records["bad.jpg"]["error"]


def test_detector_and_training_import_no_django():
    code = (
        "import sys, detector, training.probe, training.cli; "
        "assert not [m for m in sys.modules if m.startswith('django')]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
