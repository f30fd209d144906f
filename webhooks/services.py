"""Intake's write: record an upload announced by a verified webhook, then hand it to the fetch queue."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from fetching.models import PendingImage
from fetching.tasks import upload_publish
from moderation.conf import app_setting
from moderation.errors import ApplicationError
from moderation.models import Platform, Upload, UploadStatus
from moderation.services import INTAKE, upload_transition


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

    Idempotent: the same webhook id, or the same external id, returns the existing upload and queues nothing (its
    body is validated first, like a new one's).
    Returns (upload, created).
    """
    raw = b""
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

    upload = Upload(
        platform=platform,
        webhook_id=webhook_id,
        external_id=external_id,
        source_url=url,
        metadata=metadata or {},
        sha256=digest,
    )
    upload_transition(upload=upload, to=UploadStatus.RECEIVED, reason="webhook accepted", acting_user=INTAKE)
    # Written as `queued` and published once committed: one statement fewer than marking it after the commit. If the
    # broker refuses, `upload_publish` puts it back to `received` for the sweeper; if this process dies between the
    # commit and the publish, the sweeper resends it as a stalled `queued` upload.
    upload_transition(upload=upload, to=UploadStatus.QUEUED, reason="queued for the fetch stage", acting_user=INTAKE)
    try:
        # Inserted first and looked up only on a conflict: a new upload (the usual case) costs no read. One
        # transaction, two rows, no file: the fetch stage moves the bytes to storage (object storage is a network
        # round trip the request does not wait for).
        with transaction.atomic():
            upload.save(force_insert=True)
            if raw:
                PendingImage.objects.create(upload=upload, data=raw)
    except IntegrityError:
        # A retry of this event, another event for the same external id, or a concurrent delivery that won the race:
        # answer with the upload already recorded.
        winner = _existing(platform=platform, webhook_id=webhook_id, external_id=external_id)
        if winner is None:
            raise
        return winner, False
    transaction.on_commit(lambda: upload_publish(upload=upload, acting_user=INTAKE), robust=True)
    return upload, True


def _existing(*, platform: Platform, webhook_id: str, external_id: str) -> Upload | None:
    """The upload this event already created: by its webhook id, else by its external id (one query)."""
    matches = list(Upload.objects.filter(Q(webhook_id=webhook_id) | Q(external_id=external_id), platform=platform)[:2])
    return next((u for u in matches if u.webhook_id == webhook_id), matches[0] if matches else None)
