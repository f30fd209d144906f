"""Every write to the core records goes through these functions (`<entity>_<action>`, keyword-only arguments)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import app_setting
from ..errors import ApplicationError
from ..models import Platform, Scan, Tag, TagSource, Upload, UploadStatus, Verdict
from ..policy import TagDecision, decide, evidence_provenance, evidence_tags, review_priority
from .audit import AuditAction, audit_record
from .callbacks import callback_enqueue
from .model_versions import shadow_scores_record
from .transitions import upload_can_move, upload_transition

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = {UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW, UploadStatus.REVIEWED, UploadStatus.FAILED}


# --- platforms ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformCredentials:
    platform: Platform
    webhook_secret: str
    api_token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _new_api_token() -> str:
    return "mod_" + secrets.token_urlsafe(32)


@transaction.atomic
def platform_create(
    *, slug: str, name: str = "", callback_url: str = "", acting_user: Any = None
) -> PlatformCredentials:
    """A new tenant with a fresh webhook secret and API token. The token is returned once and stored hashed."""
    secret, token = _new_webhook_secret(), _new_api_token()
    platform = Platform.objects.create(
        slug=slug,
        name=name or slug,
        webhook_secrets=[secret],
        api_token_hash=hash_token(token),
        callback_url=callback_url,
    )
    audit_record(
        actor=acting_user, platform=platform, action=AuditAction.PLATFORM_CREATED, obj=platform, data={"slug": slug}
    )
    return PlatformCredentials(platform, secret, token)


@transaction.atomic
def platform_token_rotate(*, platform: Platform, acting_user: Any = None) -> str:
    """Issue a new API token; the old one stops working at once."""
    token = _new_api_token()
    platform.api_token_hash = hash_token(token)
    platform.save(update_fields=["api_token_hash"])
    audit_record(actor=acting_user, platform=platform, action=AuditAction.PLATFORM_TOKEN_ROTATED, obj=platform)
    return token


@transaction.atomic
def platform_webhook_secret_rotate(*, platform: Platform, acting_user: Any = None) -> str:
    """Issue a new signing secret. The newest older one stays valid until `platform_webhook_secret_retire_old`, so a
    platform can switch over without a failed delivery."""
    secret = _new_webhook_secret()
    platform.webhook_secrets = [secret, *platform.webhook_secrets[:1]]
    platform.save(update_fields=["webhook_secrets"])
    audit_record(actor=acting_user, platform=platform, action=AuditAction.PLATFORM_WEBHOOK_SECRET_ROTATED, obj=platform)
    return secret


@transaction.atomic
def platform_webhook_secret_retire_old(*, platform: Platform, acting_user: Any = None) -> None:
    platform.webhook_secrets = platform.webhook_secrets[:1]
    platform.save(update_fields=["webhook_secrets"])
    audit_record(actor=acting_user, platform=platform, action=AuditAction.PLATFORM_WEBHOOK_SECRET_RETIRED, obj=platform)


# --- uploads -----------------------------------------------------------------------------------------------------


def upload_create(
    *,
    platform: Platform,
    webhook_id: str,
    external_id: str,
    url: str = "",
    data_base64: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Upload, bool]:
    """Record an upload announced by a verified webhook and queue it once it is committed.

    Idempotent: the same webhook id, or the same external id, returns the existing upload and queues nothing.
    Returns (upload, created).
    """
    existing = Upload.objects.filter(platform=platform, webhook_id=webhook_id).first()
    if existing is None:
        existing = Upload.objects.filter(platform=platform, external_id=external_id).first()
    if existing is not None:
        return existing, False

    image = None
    digest = ""
    if data_base64:
        try:
            raw = base64.b64decode(data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApplicationError(
                "upload.data_base64 is not valid base64",
                code="invalid_payload",
                extra={"fields": {"upload.data_base64": ["Not valid base64."]}},
            ) from None
        if not raw:
            raise ApplicationError(
                "upload.data_base64 is empty",
                code="invalid_payload",
                extra={"fields": {"upload.data_base64": ["Empty image."]}},
            )
        if len(raw) > app_setting("MAX_IMAGE_BYTES"):
            raise ApplicationError("image too large", code="image_too_large", status=413)
        digest = hashlib.sha256(raw).hexdigest()
        image = ContentFile(raw, name=f"{digest[:32]}.bin")

    upload = Upload(
        platform=platform,
        webhook_id=webhook_id,
        external_id=external_id,
        source_url=url,
        metadata=metadata or {},
        sha256=digest,
    )
    upload_transition(upload=upload, to=UploadStatus.RECEIVED, reason="webhook accepted")
    try:
        with transaction.atomic():
            if image is not None:
                upload.image.save(image.name, image, save=False)
            upload.save(force_insert=True)
    except IntegrityError:
        # A concurrent delivery of the same event won the race: answer with its upload.
        winner = (
            Upload.objects.filter(platform=platform, webhook_id=webhook_id).first()
            or Upload.objects.filter(platform=platform, external_id=external_id).first()
        )
        if winner is None:
            raise
        return winner, False
    transaction.on_commit(lambda: upload_enqueue(upload=upload), robust=True)
    return upload, True


def upload_enqueue(*, upload_id: Any = None, upload: Upload | None = None) -> None:
    """Mark a committed upload queued and hand it to the fetch queue. Give the instance when the caller has just
    written it (saves a read on the webhook's hot path, and leaves the caller's copy up to date), else its id.

    Marked first, so a fast worker never sees it still `received`; if the broker refuses, it goes back to
    `received` and the error propagates (the caller's on_commit hook logs it).
    """
    from .. import tasks

    if upload is None:
        upload = Upload.objects.get(id=upload_id)
    upload_id = upload.pk
    if upload.status != UploadStatus.RECEIVED:
        return
    upload_transition(upload=upload, to=UploadStatus.QUEUED, reason="published to the fetch queue")
    upload.save(update_fields=["status", "status_history", "updated_at"])
    try:
        tasks.upload_fetch.delay(str(upload_id))
    except Exception as exc:
        upload_transition(upload=upload, to=UploadStatus.RECEIVED, reason=f"broker refused the publish: {exc}"[:500])
        Upload.objects.filter(id=upload_id, status=UploadStatus.QUEUED).update(
            status=upload.status, status_history=upload.status_history
        )
        raise


def uploads_requeue_stalled(*, received_after_seconds: float = 30, stalled_after_seconds: float = 900) -> int:
    """The sweeper that makes the upload row its own outbox: anything the broker never got (still `received`, e.g.
    during a broker outage) is published again, and anything stuck mid-pipeline is sent to its stage again (every
    stage is idempotent). Returns how many uploads were sent."""
    from .. import tasks

    now = timezone.now()
    sent = 0
    unpublished = Upload.objects.filter(
        status=UploadStatus.RECEIVED, updated_at__lt=now - timedelta(seconds=received_after_seconds)
    ).values_list("id", flat=True)
    for upload_id in unpublished[:1000]:
        try:
            upload_enqueue(upload_id=upload_id)
        except Exception:  # broker still down: the next sweep tries again
            logger.warning("broker refused upload %s; will retry on the next sweep", upload_id)
            return sent
        sent += 1
    stalled = Upload.objects.filter(
        status__in=[UploadStatus.QUEUED, UploadStatus.FETCHED],
        updated_at__lt=now - timedelta(seconds=stalled_after_seconds),
    ).values_list("id", "status")
    for upload_id, status in stalled[:1000]:
        if status == UploadStatus.QUEUED:
            tasks.upload_fetch.delay(str(upload_id))
        else:
            tasks.uploads_scan.delay(str(upload_id))
        sent += 1
    return sent


def upload_fail(*, upload: Upload, reason: str) -> None:
    if not upload_can_move(upload, UploadStatus.FAILED):
        # A late failure (fetch retries running out) of an upload a duplicate delivery already took further.
        logger.info("upload %s is %s; not failing it: %s", upload.id, upload.status, reason)
        return
    upload_transition(upload=upload, to=UploadStatus.FAILED, reason=reason[:500])
    upload.failure_reason = reason[:2000]
    upload.save(update_fields=["status", "status_history", "failure_reason", "updated_at"])
    logger.info("upload %s failed: %s", upload.id, reason)


def upload_fetch(*, upload_id: Any) -> bool:
    """The I/O stage: make sure the image bytes are stored locally. Returns True when the upload is ready to scan."""
    from transport.fetch import FetchRefused, fetch_image

    upload = Upload.objects.select_related("platform").get(id=upload_id)
    if upload.status in TERMINAL_STATUSES or upload.status == UploadStatus.SCANNED:
        return False
    upload.attempts += 1
    if not upload.image:
        try:
            raw = fetch_image(
                upload.source_url,
                max_bytes=app_setting("MAX_IMAGE_BYTES"),
                timeout=app_setting("FETCH_TIMEOUT_SECONDS"),
                allow_loopback=app_setting("FETCH_ALLOW_LOOPBACK"),
            )
        except FetchRefused as exc:
            upload_fail(upload=upload, reason=f"fetch refused: {exc}")
            return False
        upload.sha256 = hashlib.sha256(raw).hexdigest()
        upload.image.save(f"{upload.sha256[:32]}.bin", ContentFile(raw), save=False)
    else:
        with upload.image.open("rb") as handle:
            raw = handle.read()
    _evidence_collect(upload=upload, data=raw)
    upload_transition(upload=upload, to=UploadStatus.FETCHED, reason="image stored, evidence collected")
    upload.save()
    transaction.on_commit(lambda: _enqueue_scan(upload.id))
    return True


def _evidence_collect(*, upload: Upload, data: bytes) -> None:
    """Provenance and metadata findings, the PDQ hash, and matches in the bank of confirmed fakes. Evidence is an
    addition to the pixel verdict: nothing here may fail the upload."""
    from detector.evidence import extract_evidence
    from detector.hashing import pdq_hash_bytes

    from .hashbank import hash_bank_matches

    anchors_file = app_setting("C2PA_TRUST_ANCHORS_FILE")
    findings: list[dict[str, Any]] = []
    try:
        anchors = Path(anchors_file).read_text() if anchors_file else None
        findings = [finding.as_dict() for finding in extract_evidence(data, c2pa_trust_anchors=anchors)]
    except Exception as exc:
        logger.exception("evidence extraction failed for upload %s", upload.pk)
        findings = [_failed_finding("extract_evidence", exc)]
    try:
        pdq = pdq_hash_bytes(data, max_pixels=app_setting("MAX_IMAGE_PIXELS"))
    except Exception:  # not an image we can decode: the detection stage records why
        pdq = None
    if pdq is not None:
        upload.pdq_hash, upload.pdq_quality = pdq.hex, pdq.quality
        if pdq.usable:
            try:
                findings += hash_bank_matches(platform=upload.platform, pdq_hash=pdq.hex)
            except Exception as exc:
                logger.exception("hash bank lookup failed for upload %s", upload.pk)
                findings.append(_failed_finding("hash_bank", exc))
    upload.evidence = _storable(findings)


def _storable(value: Any) -> Any:
    """Text read from hostile metadata, made storable: PostgreSQL's jsonb refuses NUL characters and lone surrogates."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


def _failed_finding(source: str, exc: Exception) -> dict[str, Any]:
    return {"kind": "failed", "value": str(exc)[:200], "strength": "weak", "source": source, "ai": None, "detail": {}}


def _enqueue_scan(upload_id: Any) -> None:
    from .. import tasks

    tasks.uploads_scan.delay(str(upload_id))


# --- scans and tags ----------------------------------------------------------------------------------------------


def uploads_scan(*, upload_ids: list[Any]) -> list[Scan]:
    """Score a batch of fetched uploads in one detector call; record a scan, tags and status for each, and a
    heatmap for those flagged or escalated."""
    from ..detection import get_detector

    uploads = [
        upload
        for upload in Upload.objects.select_related("platform").filter(id__in=upload_ids).order_by("created_at")
        if upload.status == UploadStatus.FETCHED
    ]
    if not uploads:
        return []
    detector = get_detector()
    images: list[bytes] = []
    for upload in uploads:
        with upload.image.open("rb") as handle:
            images.append(handle.read())
    outcomes = detector.predict(images)
    recorded = [
        (scan, image)
        for upload, outcome, image in zip(uploads, outcomes, images, strict=True)
        if (
            scan := _scan_record(
                upload=upload, outcome=outcome, model_name=detector.card.name, model_version=detector.card.version
            )
        )
        is not None
    ]
    for scan, image in recorded:
        if not scan.error and (scan.escalated or scan.verdict != Verdict.LIKELY_REAL):
            _heatmap_store(scan=scan, image=image, detector=detector)
    scans = [scan for scan, _ in recorded]
    try:
        shadow_scores_record(scans=scans, images=[image for _, image in recorded])
    except Exception:  # a broken shadow model must never hold up live verdicts
        logger.exception("shadow scoring failed")
    return scans


class TagDecisionFor(NamedTuple):
    decision: TagDecision
    threshold: float
    provenance: str


def tag_decision(*, upload: Upload, verdict: Any) -> TagDecisionFor:
    """The tags a detector verdict earns this upload: its platform's threshold (or the model's), review margin and
    provenance policy, with the evidence recorded on it."""
    platform = upload.platform
    threshold = platform.ai_threshold if platform.ai_threshold is not None else verdict.threshold
    provenance = evidence_provenance(upload.evidence)
    decision = decide(
        verdict.score,
        threshold=threshold,
        review_margin=platform.review_margin,
        provenance=provenance,
        provenance_policy=platform.provenance_policy,
        detector_review_reason=verdict.review_reason or "",
    )
    return TagDecisionFor(decision, threshold, provenance)


@transaction.atomic
def _scan_record(*, upload: Upload, outcome: Any, model_name: str, model_version: str) -> Scan | None:
    """Record one outcome, or nothing if the upload moved on while the batch ran (a duplicate delivery scored it
    first). Re-read under a row lock, so evidence a retro scan added meanwhile is part of the decision."""
    from .hashbank import KNOWN_FAKE_EVIDENCE, known_fake_priority

    upload = Upload.objects.select_for_update().select_related("platform").get(pk=upload.pk)
    if upload.status != UploadStatus.FETCHED:
        return None
    if outcome.verdict is None:
        scan = Scan.objects.create(
            upload=upload, model_name=model_name, model_version=model_version, error=outcome.error
        )
        upload_fail(upload=upload, reason=f"image rejected: {outcome.error}")
        callback_enqueue(upload=upload, event_type="upload.failed")
        return scan
    verdict = outcome.verdict
    decision, threshold, provenance = tag_decision(upload=upload, verdict=verdict)
    scan = Scan.objects.create(
        upload=upload,
        model_name=verdict.model_name,
        model_version=verdict.model_version,
        vit_model_version=verdict.vit_model_version or "",
        cnn_score=verdict.cnn_score,
        vit_score=verdict.vit_score,
        escalated=verdict.vit_score is not None,
        score=verdict.score,
        threshold=threshold,
        path=verdict.path,
        verdict=decision.verdict,
        review_reason=verdict.review_reason or "",
        latency_ms=verdict.latency_ms,
        batch_size=verdict.batch_size,
    )
    upload.scan_verdict, upload.scan_score, upload.scan_escalated = decision.verdict, verdict.score, scan.escalated
    upload.scan_model_version = f"{verdict.model_name}@{verdict.model_version}"
    upload_transition(upload=upload, to=UploadStatus.SCANNED, reason=f"scored by {upload.scan_model_version}")
    upload.review_priority = review_priority(
        score=verdict.score,
        threshold=threshold,
        escalated=scan.escalated,
        platform_flagged=bool(upload.metadata.get("flagged")),
    )
    if any(finding["kind"] == KNOWN_FAKE_EVIDENCE for finding in upload.evidence):
        upload.review_priority = known_fake_priority(upload.review_priority)
    Tag.objects.filter(upload=upload, source__in=[TagSource.AUTO, TagSource.PROVENANCE]).delete()
    Tag.objects.create(
        upload=upload, name=decision.verdict, source=decision.source, confidence=decision.confidence, scan=scan
    )
    for name in evidence_tags(upload.evidence, provenance):
        Tag.objects.get_or_create(upload=upload, name=name, defaults={"source": TagSource.PROVENANCE, "scan": scan})
    upload_transition(
        upload=upload,
        to=UploadStatus.NEEDS_REVIEW if decision.verdict == Verdict.NEEDS_REVIEW else UploadStatus.TAGGED,
        reason=f"auto-tag {decision.verdict}",
    )
    upload.save(
        update_fields=[
            "status",
            "status_history",
            "scan_verdict",
            "scan_score",
            "scan_escalated",
            "scan_model_version",
            "review_priority",
            "updated_at",
        ]
    )
    callback_enqueue(upload=upload, event_type="upload.tagged")
    return scan


def _heatmap_store(*, scan: Scan, image: bytes, detector: Any) -> None:
    try:
        png = detector.explain(image, use_vit=scan.escalated)
    except Exception:  # an explanation is a nice-to-have: never let it undo a recorded verdict
        logger.exception("heatmap for scan %s failed", scan.pk)
        return
    scan.heatmap.save(f"{scan.upload_id}-{scan.pk}.png", ContentFile(png), save=False)
    Scan.objects.filter(pk=scan.pk).update(heatmap=scan.heatmap.name)


def scan_heatmap_ensure(*, scan_id: int) -> None:
    """Make the heatmap of a scan that has none yet (on demand, on the detect queue)."""
    from ..detection import get_detector

    scan = Scan.objects.select_related("upload").get(pk=scan_id)
    if scan.heatmap or scan.error:
        return
    with scan.upload.image.open("rb") as handle:
        image = handle.read()
    _heatmap_store(scan=scan, image=image, detector=get_detector())


def scan_heatmap_request(*, scan: Scan) -> None:
    """Queue the heatmap once a minute at most, however many clients poll for it. While the cache is unreachable
    every poll queues it (the task is idempotent), rather than the lookup failing."""
    from django.core.cache import cache

    from .. import tasks

    try:
        first = cache.add(f"moderation:heatmap-requested:{scan.pk}", 1, timeout=60)
    except Exception as exc:  # each cache backend raises its own connection errors
        logger.warning("heatmap request not deduplicated: cache unreachable (%s: %s)", type(exc).__name__, exc)
        first = True
    if first:
        tasks.scan_heatmap.delay(scan.pk)
