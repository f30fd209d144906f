"""Retraining from reviewer labels, the promotion gate, shadow mode, rollback and per-platform calibration."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command

from moderation.models import AuditEvent, Upload
from registry.models import ModelStatus, ModelVersion
from registry.services import model_version_ensure_default
from retraining.services import model_retrain, model_version_gate, model_version_promote, platform_calibrate
from reviews.models import ReviewDecision
from scanning.models import Scan, ShadowScore, Tag
from tests.conftest import TEST_ACTOR, post_webhook, signed_headers, upload_body
from tests.detector.conftest import write_tiny
from tests.images import flat_or_noisy_png
from webhooks.services import upload_create

pytestmark = pytest.mark.django_db


def _image(label: int, seed: int) -> bytes:
    return flat_or_noisy_png(label, np.random.default_rng(seed))


@pytest.fixture
def registry(settings, tmp_path):
    """A tiny active model that knows nothing (its head outputs 0.5), a frozen evaluation set and a model store."""
    active = write_tiny(tmp_path / "active", "test_efficientnet", seed=0, head_scale=0.0)
    eval_dir = tmp_path / "eval"
    for label, folder in ((0, "real"), (1, "fake")):
        (eval_dir / folder).mkdir(parents=True)
        for index in range(16):
            (eval_dir / folder / f"{index}.png").write_bytes(_image(label, 1000 + index))
    settings.AI_MODERATION = {
        **settings.AI_MODERATION,
        "DETECTOR_CHECKPOINT": str(active),
        "DETECTOR_DEVICE": "cpu",
        "EVAL_SET_DIR": str(eval_dir),
        "MODEL_STORE": str(tmp_path / "store"),
        "RETRAIN_MIN_NEW_LABELS": 20,
    }
    return tmp_path


@pytest.fixture
def reviewer(db):
    return get_user_model().objects.create_user("mod", password="x")


def _reviewed_uploads(platform, reviewer, count: int, *, flip: bool = False) -> None:
    for index in range(count):
        label = index % 2
        upload, _ = upload_create(
            platform=platform.platform,
            webhook_id=f"msg-{index}",
            external_id=f"reviewed-{index}",
            data_base64=base64.b64encode(_image(label, index)).decode(),
        )
        # As the fetch stage would have stored it (these uploads skip the pipeline).
        upload.image.save(f"reviewed-{index}.jpg", ContentFile(_image(label, index)))
        shown = (1 - label) if flip else label
        ReviewDecision.objects.create(upload=upload, reviewer=reviewer, label="ai-generated" if shown else "real")


def test_retrain_from_reviewer_labels_creates_a_gated_candidate(registry, platform, reviewer):
    active = model_version_ensure_default()
    assert active.status == ModelStatus.ACTIVE and active.name == "tiny-test_efficientnet"
    assert model_retrain(acting_user=TEST_ACTOR) is None, "no labels yet: nothing to train"

    _reviewed_uploads(platform, reviewer, 40)
    candidate = model_retrain(acting_user=TEST_ACTOR)
    assert candidate is not None and candidate.parent == active and candidate.labels_used == 40
    assert candidate.card["metrics"]["test"]["n"] == 32  # reported on the frozen evaluation set
    assert candidate.gate["passed"], candidate.gate
    assert candidate.status == ModelStatus.SHADOW
    assert candidate.gate["candidate"]["accuracy"] > candidate.gate["active"]["accuracy"]
    assert AuditEvent.objects.filter(action="model.gate_passed", object_id=str(candidate.pk)).exists()
    assert model_retrain(acting_user=TEST_ACTOR) is None, "the same labels do not trigger another retrain"


def test_worse_candidate_is_not_promoted(registry, platform, reviewer):
    _reviewed_uploads(platform, reviewer, 40)
    good = model_retrain(acting_user=TEST_ACTOR)
    model_version_promote(model_version=good, acting_user=TEST_ACTOR)
    worse = ModelVersion.objects.create(
        name="tiny-random",
        version="1",
        checkpoint_path=str(write_tiny(registry / "worse", "test_efficientnet", seed=7)),
    )
    model_version_gate(model_version=worse, acting_user=TEST_ACTOR)
    worse.refresh_from_db()
    assert worse.status == ModelStatus.REJECTED
    assert "with confidence" in worse.gate["reason"]
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) == good


def test_label_noise_candidate_is_rejected_by_the_gate(registry, platform, reviewer):
    _reviewed_uploads(platform, reviewer, 40)
    model_version_promote(model_version=model_retrain(acting_user=TEST_ACTOR), acting_user=TEST_ACTOR)
    ReviewDecision.objects.all().delete()
    Upload.objects.all().delete()
    _reviewed_uploads(platform, reviewer, 60, flip=True)  # moderators "confirm" the opposite of the truth
    candidate = model_retrain(acting_user=TEST_ACTOR)
    assert candidate.status == ModelStatus.REJECTED


def test_shadow_model_scores_live_uploads_without_touching_tags(
    registry, platform, reviewer, client, django_capture_on_commit_callbacks
):
    _reviewed_uploads(platform, reviewer, 40)
    shadow = model_retrain(acting_user=TEST_ACTOR)
    assert shadow.status == ModelStatus.SHADOW
    for index in range(4):
        body = upload_body(f"live-{index}", image=_image(index % 2, 500 + index))
        with django_capture_on_commit_callbacks(execute=True):
            assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
    scans = Scan.objects.filter(upload__external_id__startswith="live-")
    assert scans.count() == 4
    assert set(scans.values_list("model_name", flat=True)) == {"tiny-test_efficientnet"}
    shadow_scores = ShadowScore.objects.filter(model_version=shadow)
    assert shadow_scores.count() == 4
    for row in shadow_scores:
        assert row.agrees == (row.is_ai == (row.scan.score >= 0.5))
        assert list(Tag.objects.filter(upload=row.scan.upload).values_list("scan_id", flat=True)) == [row.scan_id]


def test_rollback_restores_the_previous_active_model(registry, platform, reviewer):
    original = model_version_ensure_default()
    _reviewed_uploads(platform, reviewer, 40)
    model_version_promote(model_version=model_retrain(acting_user=TEST_ACTOR), acting_user=TEST_ACTOR)
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) != original
    call_command("rollback")
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) == original
    assert AuditEvent.objects.filter(action="model.rolled_back").count() == 1


def test_calibration_meets_the_target_fpr_on_held_out_labels(platform, reviewer, settings):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "CALIBRATION_MIN_REAL_LABELS": 100}
    rng = np.random.default_rng(0)
    real_scores = rng.beta(2, 5, size=400)  # this platform's real photos score fairly high
    for index, score in enumerate(real_scores):
        upload = Upload.objects.create(
            platform=platform.platform,
            external_id=f"r{index}",
            webhook_id=f"w{index}",
            source_url="https://example.com/x",
        )
        Scan.objects.create(
            upload=upload, model_name="m", model_version="1", cnn_score=score, score=score, verdict="likely-real"
        )
        ReviewDecision.objects.create(upload=upload, reviewer=reviewer, label="real")
    threshold = platform_calibrate(platform=platform.platform, target_fpr=0.02, acting_user=TEST_ACTOR)
    platform.platform.refresh_from_db()
    assert platform.platform.ai_threshold == threshold
    held_out = rng.beta(2, 5, size=20000)
    assert (held_out >= threshold).mean() <= 0.02 + 0.01
    assert (held_out >= threshold).mean() >= 0.005, "the threshold should not be needlessly strict"
    assert AuditEvent.objects.filter(action="platform.calibrated").exists()


def test_calibration_needs_enough_real_labels(platform):
    assert platform_calibrate(platform=platform.platform, acting_user=TEST_ACTOR) is None


def test_learning_curve_replays_labels_through_retrain_and_leaves_no_rows(registry, tmp_path):
    import json

    data = tmp_path / "source"
    for label, folder in ((0, "real"), (1, "fake")):
        (data / folder).mkdir(parents=True)
        for index in range(25):
            (data / folder / f"{index}.png").write_bytes(_image(label, 2000 + index))
    call_command("learning_curve", "--data", str(data), "--sizes", "10,20", "--out", str(tmp_path / "out"))
    report = json.loads((tmp_path / "out" / "learning_curve.json").read_text())
    assert [point["labels"] for point in report["points"]] == [10, 20]
    for point in report["points"]:
        assert point["held_out"] == 50 - point["labels"]
        assert point["candidate_auroc"] > point["active_auroc"]
    assert (tmp_path / "out" / "learning_curve.png").stat().st_size > 1000
    assert not ModelVersion.objects.exists() and not Upload.objects.exists() and not ReviewDecision.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not [path for path in media.rglob("*.png") if path.name in {f"{index}.png" for index in range(25)}], (
        "the replayed uploads' files went to a scratch folder, not the media storage"
    )


def test_learning_curve_adapts_the_checkpoint_it_is_given_and_refuses_a_database_with_labels(
    registry, platform, reviewer, tmp_path
):
    import json

    from django.core.management.base import CommandError

    data = tmp_path / "source"
    for label, folder in ((0, "real"), (1, "fake")):
        (data / folder).mkdir(parents=True)
        for index in range(25):
            (data / folder / f"{index}.png").write_bytes(_image(label, 3000 + index))
    model_version_ensure_default()  # an active model already registered: --active must still win
    given = write_tiny(tmp_path / "given", "test_efficientnet", seed=3, head_scale=0.0)
    out = io.StringIO()
    call_command("learning_curve", "--data", str(data), "--sizes", "10", "--active", str(given), stdout=out)
    report = json.loads(out.getvalue()[out.getvalue().index("{\n") :])
    assert report["points"][0]["against"].startswith("learning-curve-active@10") and report["active"] == str(given)
    assert report["points"][0]["candidate_auroc"] is not None
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE).checkpoint_path != str(given), "rolled back"
    _reviewed_uploads(platform, reviewer, 2)
    with pytest.raises(CommandError, match="holds 2 reviewer decisions"):
        call_command("learning_curve", "--data", str(data), "--sizes", "10")


def test_shipped_model_is_registered_by_name_so_a_moved_install_still_finds_it(db):
    from detector import DEFAULT_CHECKPOINT

    version = model_version_ensure_default()
    assert version.checkpoint_path == "builtin:default"
    assert version.checkpoint_dir == DEFAULT_CHECKPOINT


def test_an_unsure_skip_after_a_label_keeps_it_for_retraining_and_calibration(platform, reviewer, settings):
    """A second moderator pressing "unsure" on a decided upload (reopened on appeal, say) changes nothing: the
    label stays what retraining learns and what calibration reads."""
    from retraining.services import reviewed_images

    settings.AI_MODERATION = {**settings.AI_MODERATION, "CALIBRATION_MIN_REAL_LABELS": 4}
    _reviewed_uploads(platform, reviewer, 8)  # four real, four AI
    for upload in Upload.objects.filter(platform=platform.platform):
        Scan.objects.create(
            upload=upload, model_name="m", model_version="1", cnn_score=0.2, score=0.2, verdict="likely-real"
        )
    before = sorted((item.path.name, item.label) for item in reviewed_images())
    other = get_user_model().objects.create_user("second", password="x")
    for external_id in ("reviewed-0", "reviewed-1"):  # one real, one AI
        ReviewDecision.objects.create(
            upload=Upload.objects.get(external_id=external_id), reviewer=other, label="unsure"
        )
    assert sorted((item.path.name, item.label) for item in reviewed_images()) == before and len(before) == 8
    assert platform_calibrate(platform=platform.platform, acting_user=TEST_ACTOR) is not None, "still four reals"


def _promoted(version: str) -> ModelVersion:
    candidate = ModelVersion.objects.create(
        name="m", version=version, checkpoint_path=f"/models/m-{version}", status=ModelStatus.SHADOW,
        gate={"passed": True},
    )  # fmt: skip
    return model_version_promote(model_version=candidate, acting_user=TEST_ACTOR)


def test_rolling_back_twice_walks_back_two_promotions(db, settings):
    from django.utils import timezone

    from retraining.services import model_version_rollback

    settings.AI_MODERATION = {**settings.AI_MODERATION, "RESCORE_WINDOW_DAYS": 0}
    first = ModelVersion.objects.create(
        name="m", version="0", checkpoint_path="/models/m-0", status=ModelStatus.ACTIVE, activated_at=timezone.now()
    )
    second, third = _promoted("1"), _promoted("2")
    assert model_version_rollback(acting_user=TEST_ACTOR) == second
    assert model_version_rollback(acting_user=TEST_ACTOR) == first, "never back to the version rolled back"
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE) == first
    third.refresh_from_db()
    assert third.status == ModelStatus.RETIRED and third.rolled_back_at is not None


def test_a_version_set_to_shadow_by_hand_cannot_be_promoted(db):
    from moderation.errors import ApplicationError

    rejected = ModelVersion.objects.create(
        name="m", version="9", checkpoint_path="/models/m-9", status=ModelStatus.SHADOW,
        gate={"passed": False, "reason": "AUROC fell"},
    )  # fmt: skip
    with pytest.raises(ApplicationError, match="has not passed the promotion gate"):
        model_version_promote(model_version=rejected, acting_user=TEST_ACTOR)
    assert not ModelVersion.objects.filter(status=ModelStatus.ACTIVE, pk=rejected.pk).exists()


def test_a_threshold_a_lead_set_is_left_alone_by_the_daily_calibration(platform, reviewer, settings):
    from retraining.tasks import platforms_calibrate
    from reviews.services import platform_thresholds_update

    settings.AI_MODERATION = {**settings.AI_MODERATION, "CALIBRATION_MIN_REAL_LABELS": 4}
    _reviewed_uploads(platform, reviewer, 8)
    for upload in Upload.objects.filter(platform=platform.platform):
        Scan.objects.create(
            upload=upload, model_name="m", model_version="1", cnn_score=0.2, score=0.2, verdict="likely-real"
        )
    platform_thresholds_update(platform=platform.platform, ai_threshold=0.9, review_margin=0.1, acting_user=reviewer)
    platforms_calibrate()
    platform.platform.refresh_from_db()
    assert (platform.platform.ai_threshold, platform.platform.ai_threshold_pinned) == (0.9, True)
    call_command("calibrate", "acme")  # an operator's explicit run still sets it, and unpins it
    platform.platform.refresh_from_db()
    assert platform.platform.ai_threshold != 0.9 and not platform.platform.ai_threshold_pinned
    platforms_calibrate()
    assert AuditEvent.objects.filter(action="platform.calibrated").count() == 2, "unpinned: calibrated daily again"


def test_a_retrain_never_learns_the_gates_pictures_nor_splits_one_picture_across_train_and_validation(
    registry, platform, reviewer, monkeypatch
):
    """Moderators label reposts of one picture many times, and a frozen set built from past uploads holds pictures
    they labelled: both used to leak, the first into validation (which picks the head), the second into the gate."""
    import hashlib

    from training import adapt

    def content(item) -> str:
        return hashlib.sha256(item.path.read_bytes()).hexdigest()

    frozen = {hashlib.sha256(path.read_bytes()).hexdigest() for path in (registry / "eval").rglob("*.png")}
    eval_pictures = sorted((registry / "eval").rglob("*.png"))[:8]
    for index in range(30):  # fresh pictures, each uploaded twice, and the gate's own pictures, twice
        data = _image(index % 2, index) if index < 22 else eval_pictures[index - 22].read_bytes()
        for copy in range(2):
            upload, _ = upload_create(
                platform=platform.platform,
                webhook_id=f"repost-{index}-{copy}",
                external_id=f"repost-{index}-{copy}",
                data_base64=base64.b64encode(data).decode(),
            )
            upload.image.save(f"repost-{index}-{copy}.png", ContentFile(data))
            real = index % 2 == 0 if index < 22 else eval_pictures[index - 22].parent.name == "real"
            label = "real" if real else "ai-generated"
            ReviewDecision.objects.create(upload=upload, reviewer=reviewer, label=label)
    seen = {}

    def capture(**kwargs):
        seen.update(train=kwargs["train"], val=kwargs["val"])
        raise RuntimeError("stop after the split")

    monkeypatch.setattr(adapt, "adapt_head", capture)
    with pytest.raises(RuntimeError, match="stop after the split"):
        model_retrain(min_new_labels=1, acting_user=TEST_ACTOR)
    train, val = ({content(item) for item in seen[part]} for part in ("train", "val"))
    assert len(seen["train"]) + len(seen["val"]) == 22, "each picture once, the gate's left out"
    assert not train & val and not (train | val) & frozen
