"""The fetch stage's writes: store the image bytes, collect evidence; nothing here may lose an upload."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction

from hashbank.services import hash_bank_matches
from moderation.conf import app_setting
from moderation.models import Upload, UploadStatus
from moderation.services import (
    FETCHING,
    TERMINAL_STATUSES,
    IllegalTransition,
    upload_fail,
    upload_starts_count,
    upload_transition,
)
from transport.fetch import FetchRefused, fetch_image

from .models import PendingImage
from .selectors import uploads_for_fetch

logger = logging.getLogger(__name__)

# The upload's columns the fetch stage writes (besides its status and image).
FETCH_RESULT_FIELDS = ("sha256", "pdq_hash", "pdq_quality", "evidence")

# How often the `upload_fetch` task retries after its first run, for a fault it may outgrow (a timeout, a 5xx, a
# storage outage).
FETCH_MAX_RETRIES = 5
# Starts of the fetch before an upload is failed unopened. A batch's start (twice, if the batch was redelivered) and
# the task's own runs with every retry fit under it; only starts that never finished (a worker that crashed, or was
# killed at its hard time limit, on this upload's image: redelivered, or resent by the sweeper) reach it.
FETCH_MAX_ATTEMPTS = 2 + (1 + FETCH_MAX_RETRIES) + 2


class RemoteImage(Exception):
    """The upload's image is only at its URL, and the caller asked not to fetch it (`fetch_url=False`)."""


def upload_fetch(*, upload_id: Any, fetch_url: bool = True) -> bool:
    """The I/O stage: store the image bytes (the webhook's, held in the database, or fetched from the URL) in the
    media storage and collect evidence. Returns True when the upload is ready to scan.

    With `fetch_url=False` an upload whose image is only at its URL raises RemoteImage instead, before any change
    but the start counted.
    """
    uploads_fetch_started([upload_id])
    [(_, upload)] = uploads_for_fetch([upload_id])
    if upload is None:
        raise Upload.DoesNotExist(f"no upload {upload_id}")
    return upload_fetch_read(upload=upload, fetch_url=fetch_url)


def uploads_fetch_started(upload_ids: list[Any]) -> None:
    """Count a start of the fetch of these uploads, committed before the work (callers run outside a transaction)."""
    upload_starts_count(
        upload_ids=upload_ids, counter="fetch_attempts", statuses=[UploadStatus.QUEUED, UploadStatus.FETCHED]
    )


def upload_fetch_read(*, upload: Upload, fetch_url: bool = True) -> bool:
    """`upload_fetch` of an upload already read, its start counted, with `fetching.selectors.uploads_for_fetch` (a
    batch reads all of its uploads at once). A change made meanwhile by another process wins: this one's status
    change then finds the row moved on, and returns False. An upload started more than FETCH_MAX_ATTEMPTS times ends
    `failed` without its image being opened again."""
    if upload.status in TERMINAL_STATUSES or upload.status == UploadStatus.SCANNED:
        return False
    if upload.fetch_attempts > FETCH_MAX_ATTEMPTS:
        upload_fail(
            upload=upload,
            reason=(
                f"the fetch was started {upload.fetch_attempts - 1} times and never finished: this image may crash"
                " or stall the fetch worker"
            ),
            acting_user=FETCHING,
        )
        return False
    try:
        pending: PendingImage | None = upload.pending_image
    except PendingImage.DoesNotExist:
        pending = None
    if upload.image:  # a redelivered task after the bytes were stored
        with upload.image.open("rb") as handle:
            raw = handle.read()
    elif pending is not None:
        raw = bytes(pending.data)  # carried by the webhook, held in the database until now
        upload.image.save(f"{upload.sha256[:32]}.bin", ContentFile(raw), save=False)
    elif not fetch_url:
        raise RemoteImage(upload.source_url)
    else:
        try:
            raw = fetch_image(
                upload.source_url,
                max_bytes=app_setting("MAX_IMAGE_BYTES"),
                timeout=app_setting("FETCH_TIMEOUT_SECONDS"),
                allow_loopback=app_setting("FETCH_ALLOW_LOOPBACK"),
            )
        except FetchRefused as exc:
            upload_fail(upload=upload, reason=f"fetch refused: {exc}", acting_user=FETCHING)
            return False
        upload.sha256 = hashlib.sha256(raw).hexdigest()
        upload.image.save(f"{upload.sha256[:32]}.bin", ContentFile(raw), save=False)
    _evidence_collect(upload=upload, data=raw)
    # What this stage found goes in the status change's own UPDATE, which only succeeds from the state read above.
    found = {name: getattr(upload, name) for name in FETCH_RESULT_FIELDS}
    try:
        with transaction.atomic():
            upload_transition(
                upload=upload,
                to=UploadStatus.FETCHED,
                reason="image stored, evidence collected",
                acting_user=FETCHING,
                fields={**found, "image": upload.image.name},
            )
            if pending is not None:
                # Stored now; the database keeps no second copy.
                PendingImage.objects.filter(pk=pending.pk).delete()
    except IllegalTransition as exc:  # a redelivered copy of this task got there first: its result stands
        logger.info("upload %s not stored again: %s", upload.pk, exc.message)
        return False
    return True


def _evidence_collect(*, upload: Upload, data: bytes) -> None:
    """Provenance and metadata findings, the PDQ hash, and matches in the bank of confirmed fakes. Evidence is an
    addition to the pixel verdict: nothing here may fail the upload."""
    # torch-free, but `detector` is a heavy import the web process (which publishes to this stage) must not pay.
    from detector.evidence import extract_evidence
    from detector.hashing import pdq_hash_bytes

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
