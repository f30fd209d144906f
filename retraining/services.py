"""Retraining's writes: retrain from reviewer labels, gate, promote, roll back, calibrate.

`detector` and `training` (torch) are imported inside the functions that need them: web processes import this module
too and must stay light.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from moderation.conf import app_setting
from moderation.errors import ApplicationError
from moderation.models import Platform, Upload
from moderation.services import Actor, AuditAction, audit_record
from registry.models import ModelStatus, ModelVersion
from registry.services import model_store, model_version_ensure_default
from reviews.models import ReviewLabel
from reviews.selectors import latest_label_decisions
from scanning.models import Scan
from scanning.tasks import retro_rescore_start

if TYPE_CHECKING:
    from training.datasets import LabelledImage

logger = logging.getLogger(__name__)


def reviewed_images() -> list[LabelledImage]:
    """Every picture a moderator labelled AI or real (the latest decision on an upload wins), with its stored image;
    once each, however many times it was uploaded (the latest decision among its copies wins), so that no picture can
    be in both a retrain's training and validation parts."""
    from training.datasets import LabelledImage

    decisions = latest_label_decisions().select_related("upload__platform").order_by("id")
    by_content: dict[str, LabelledImage] = {}
    for decision in decisions:
        upload = decision.upload
        if upload.image:
            label = 1 if decision.label == ReviewLabel.AI_GENERATED else 0
            path = _local_copy(upload)
            by_content.pop(upload.sha256 or str(upload.pk), None)  # a later copy's label goes in its own place
            by_content[upload.sha256 or str(upload.pk)] = LabelledImage(path, label, f"review:{upload.platform.slug}")
    return list(by_content.values())


def _content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _local_copy(upload: Upload) -> Path:
    """The upload's image as a local file for training: the stored file itself on local disk, else a copy from object
    storage kept under MODEL_STORE/cache/reviewed (named by content hash, so each image is downloaded once)."""
    try:
        return Path(upload.image.path)
    except NotImplementedError:  # a remote storage (S3) has no local path
        pass
    cached = model_store() / "cache" / "reviewed" / f"{upload.sha256 or upload.pk}.bin"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        with upload.image.open("rb") as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target)
        partial.replace(cached)
    return cached


def model_retrain(*, min_new_labels: int | None = None, acting_user: Actor) -> ModelVersion | None:
    """Fit a candidate from reviewer labels (plus the base set), run it through the gate, and put it in shadow if it
    passes. Returns None when too few labels are new since the last retrain."""
    from training.adapt import adapt_head
    from training.datasets import folder_images, stratified_split

    active = model_version_ensure_default()
    eval_items = _eval_set()
    # The gate's frozen set is never learned from, even where moderators labelled the same pictures.
    frozen = {_content_hash(item.path) for item in eval_items}
    labelled = [item for item in reviewed_images() if not frozen or _content_hash(item.path) not in frozen]
    needed = app_setting("RETRAIN_MIN_NEW_LABELS") if min_new_labels is None else min_new_labels
    # New since the last retrain, whatever became of its candidate: a rejected one is not retried on the same labels.
    used = ModelVersion.objects.aggregate(used=Max("labels_used"))["used"] or 0
    if len(labelled) - used < needed or len({item.label for item in labelled}) < 2:
        logger.info("retrain skipped: %d reviewer labels, %d already used", len(labelled), used)
        return None
    base_dir = app_setting("RETRAIN_BASE_DIR")
    base = folder_images(Path(base_dir), source="base") if base_dir else []
    train_part, val_part, _ = stratified_split(labelled + base, fractions=(0.8, 0.2, 0.0), seed=len(labelled))
    version = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    name = f"{active.name.split('+')[0]}-adapted"
    out_dir = model_store() / f"{name}-{version}"
    result = adapt_head(
        active=active.checkpoint_dir,
        train=train_part,
        val=val_part,
        test=eval_items or val_part,
        out_dir=out_dir,
        name=name,
        version=version,
        target_fpr=app_setting("RETRAIN_TARGET_FPR"),
        cache_dir=model_store() / "cache",
    )
    with transaction.atomic():
        candidate = ModelVersion.objects.create(
            name=name,
            version=version,
            checkpoint_path=str(out_dir),
            parent=active,
            card=result.card,
            labels_used=len(labelled),
        )
        audit_record(
            actor=acting_user,
            platform=None,
            action=AuditAction.MODEL_TRAINED,
            obj=candidate,
            data={"labels": len(labelled)},
        )
    return model_version_gate(model_version=candidate, acting_user=acting_user)


def _eval_set() -> list[LabelledImage]:
    from training.datasets import folder_images

    eval_dir = app_setting("EVAL_SET_DIR")
    return folder_images(Path(eval_dir), source="eval") if eval_dir else []


def model_version_gate(*, model_version: ModelVersion, acting_user: Actor) -> ModelVersion:
    """Judge a candidate against the active model on the frozen evaluation set: shadow if it wins, else rejected."""
    from training.adapt import evaluate_checkpoint, gate_decision

    active = model_version_ensure_default()
    eval_items = _eval_set()
    if not eval_items:
        passed, reason, reports = False, "no frozen evaluation set (EVAL_SET_DIR) is configured", {}
    else:
        reports = {
            "candidate": evaluate_checkpoint(model_version.checkpoint_dir, eval_items),
            "active": evaluate_checkpoint(active.checkpoint_dir, eval_items),
        }
        passed, reason = gate_decision(
            reports["candidate"], reports["active"], min_gain=app_setting("GATE_MIN_AUROC_GAIN")
        )
    with transaction.atomic():
        if passed:
            ModelVersion.objects.filter(status=ModelStatus.SHADOW).update(status=ModelStatus.RETIRED)
        model_version.status = ModelStatus.SHADOW if passed else ModelStatus.REJECTED
        model_version.gate = {"passed": passed, "reason": reason, "against": str(active), **reports}
        model_version.save(update_fields=["status", "gate"])
        audit_record(
            actor=acting_user,
            platform=None,
            action=AuditAction.MODEL_GATE_PASSED if passed else AuditAction.MODEL_GATE_FAILED,
            obj=model_version,
            data={"reason": reason},
        )
    return model_version


@transaction.atomic
def model_version_promote(*, model_version: ModelVersion, acting_user: Actor) -> ModelVersion:
    """Shadow → active; the previous active version retires. Only a version that passed the gate: its status alone
    could have been set by hand."""
    if model_version.status != ModelStatus.SHADOW:
        raise ApplicationError(f"only a shadow version can be promoted; {model_version} is {model_version.status}")
    if not model_version.gate.get("passed"):
        raise ApplicationError(f"{model_version} has not passed the promotion gate")
    previous = ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).first()
    if previous is not None:
        previous.status = ModelStatus.RETIRED
        previous.save(update_fields=["status"])
    model_version.status, model_version.activated_at = ModelStatus.ACTIVE, timezone.now()
    model_version.save(update_fields=["status", "activated_at"])
    audit_record(
        actor=acting_user,
        platform=None,
        action=AuditAction.MODEL_PROMOTED,
        obj=model_version,
        data={"from": str(previous) if previous else None, "to": str(model_version)},
    )
    if app_setting("RESCORE_WINDOW_DAYS"):
        retro_rescore_start(window_days=app_setting("RESCORE_WINDOW_DAYS"), acting_user=acting_user)
    return model_version


@transaction.atomic
def model_version_rollback(*, acting_user: Actor) -> ModelVersion:
    """Retire the active version and reactivate the one that was active before it. Rolled back, a version is out of
    the chain: rolling back twice walks back two promotions, never to the version the first rollback retired."""
    current = ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).first()
    previous = (
        ModelVersion.objects.filter(status=ModelStatus.RETIRED, activated_at__isnull=False, rolled_back_at=None)
        .exclude(pk=getattr(current, "pk", None))
        .order_by("-activated_at")
        .first()
    )
    if current is None or previous is None:
        raise ApplicationError("nothing to roll back to: no earlier active version")
    current.status, current.rolled_back_at = ModelStatus.RETIRED, timezone.now()
    current.save(update_fields=["status", "rolled_back_at"])
    previous.status, previous.activated_at = ModelStatus.ACTIVE, timezone.now()
    previous.save(update_fields=["status", "activated_at"])
    audit_record(
        actor=acting_user,
        platform=None,
        action=AuditAction.MODEL_ROLLED_BACK,
        obj=previous,
        data={"from": str(current)},
    )
    return previous


def platform_calibrate(*, platform: Platform, target_fpr: float | None = None, acting_user: Actor) -> float | None:
    """Set the platform's AI threshold so that at most `target_fpr` of its real uploads would be tagged AI, judged on
    its own reviewer-labelled real uploads with a 95 % upper confidence bound, and unpin it. Returns the threshold, or
    None when the platform has too few real labels."""
    from training.metrics import threshold_for_fpr

    target = app_setting("CALIBRATION_TARGET_FPR") if target_fpr is None else target_fpr
    own = Upload.objects.filter(platform=platform)
    real_uploads = latest_label_decisions(own).filter(label=ReviewLabel.REAL).values_list("upload_id", flat=True)
    scores = _latest_scores(list(real_uploads))
    if len(scores) < app_setting("CALIBRATION_MIN_REAL_LABELS"):
        return None
    threshold = min(1.0, threshold_for_fpr(np.asarray(scores), target, confidence=0.95))
    with transaction.atomic():
        before = platform.ai_threshold
        platform.ai_threshold, platform.ai_threshold_pinned = threshold, False
        platform.save(update_fields=["ai_threshold", "ai_threshold_pinned"])
        audit_record(
            actor=acting_user,
            platform=platform,
            action=AuditAction.PLATFORM_CALIBRATED,
            obj=platform,
            data={"from": before, "to": threshold, "target_fpr": target, "real_labels": len(scores)},
        )
    return threshold


def _latest_scores(upload_ids: list[Any]) -> list[float]:
    latest: dict[Any, float] = {}
    for upload_id, score in (
        Scan.objects.filter(upload_id__in=upload_ids, error="").order_by("created_at").values_list("upload_id", "score")
    ):
        latest[upload_id] = score
    return list(latest.values())
