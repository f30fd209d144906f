"""Signed `upload.*` events to each platform's callback URL: recorded first, delivered with retries, never lost."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..conf import app_setting
from ..models import CallbackDelivery, DeliveryStatus, Upload
from .audit import AuditAction, audit_record


def _upload_payload(upload: Upload) -> dict[str, Any]:
    from ..api.views import UploadOutput
    from ..selectors import upload_get

    # The same shape as the lookup API, so platforms parse one contract.
    return json.loads(
        json.dumps(UploadOutput(upload_get(platform=upload.platform, external_id=upload.external_id)).data)
    )


def callback_enqueue(*, upload: Upload, event_type: str) -> CallbackDelivery | None:
    """Record the event for delivery after the surrounding transaction commits. None if the platform has no URL."""
    from .. import tasks

    if not upload.platform.callback_url:
        return None
    delivery = CallbackDelivery.objects.create(
        platform=upload.platform,
        upload=upload,
        event_type=event_type,
        event_id=f"msg_{uuid.uuid4().hex}",
        payload={"type": event_type, "timestamp": timezone.now().isoformat(), "data": _upload_payload(upload)},
    )
    transaction.on_commit(lambda: tasks.callback_deliver.delay(delivery.pk))
    return delivery


def callback_attempt(*, delivery_id: int) -> CallbackDelivery:
    """One attempt; `pending` afterwards means it failed and should be retried later. A URL the address checks refuse
    is `dead` at once, with the reason: the policy will refuse it on every retry too."""
    from transport.signed_post import post_signed

    delivery = CallbackDelivery.objects.select_related("platform").get(pk=delivery_id)
    if delivery.status != DeliveryStatus.PENDING:
        return delivery
    result = post_signed(
        delivery.platform.callback_url,
        json.dumps(delivery.payload).encode(),
        secret=delivery.platform.webhook_secrets[0],
        event_id=delivery.event_id,
        timeout=app_setting("CALLBACK_TIMEOUT_SECONDS"),
        allow_loopback=app_setting("FETCH_ALLOW_LOOPBACK"),
    )
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error or ("" if result.delivered else f"HTTP {result.status_code}")
    delivery.last_latency_ms = result.latency_ms
    if result.delivered:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, timezone.now()
    elif result.refused or delivery.attempts >= app_setting("CALLBACK_MAX_ATTEMPTS"):
        delivery.status = DeliveryStatus.DEAD
    delivery.save()
    return delivery


@transaction.atomic
def callback_redeliver(*, delivery: CallbackDelivery, acting_user: Any = None) -> CallbackDelivery:
    """Send a delivery again from scratch (dead ones included), under the same event id."""
    from .. import tasks

    delivery.status, delivery.attempts = DeliveryStatus.PENDING, 0
    delivery.save(update_fields=["status", "attempts"])
    audit_record(actor=acting_user, platform=delivery.platform, action=AuditAction.CALLBACK_REDELIVERED, obj=delivery)
    transaction.on_commit(lambda: tasks.callback_deliver.delay(delivery.pk))
    return delivery
