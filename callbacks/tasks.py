"""The callback queue: record an event for delivery (`callback_enqueue`), deliver it with retries."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from callbacks.models import CallbackDelivery, DeliveryStatus
from moderation.models import Upload
from moderation.services import Actor, AuditAction, audit_record

from . import services


def callback_enqueue(
    *, upload: Upload, event_type: str, payload: Callable[[Upload], dict[str, Any]]
) -> CallbackDelivery | None:
    """Record the event for delivery after the surrounding transaction commits; its data is `payload(upload)` (the
    upload as the lookup API shows it). None if the platform has no URL, and then the payload is not built: it reads
    the upload back with all its results, a quarter of a detection batch's time when it was built for nothing."""
    if not upload.platform.callback_url:
        return None
    delivery = CallbackDelivery.objects.create(
        platform=upload.platform,
        upload=upload,
        event_type=event_type,
        event_id=f"msg_{uuid.uuid4().hex}",
        payload={"type": event_type, "timestamp": timezone.now().isoformat(), "data": payload(upload)},
    )
    transaction.on_commit(lambda: callback_deliver.delay(delivery.pk))
    return delivery


@transaction.atomic
def callback_redeliver(*, delivery: CallbackDelivery, acting_user: Actor) -> CallbackDelivery:
    """Send a delivery again from scratch (dead ones included), under the same event id."""
    delivery.status, delivery.attempts = DeliveryStatus.PENDING, 0
    delivery.save(update_fields=["status", "attempts"])
    audit_record(actor=acting_user, platform=delivery.platform, action=AuditAction.CALLBACK_REDELIVERED, obj=delivery)
    transaction.on_commit(lambda: callback_deliver.delay(delivery.pk))
    return delivery


# The name predates the split into stages; kept so that messages queued before an upgrade still run.
@shared_task(
    name="moderation.tasks.callback_deliver",
    bind=True,
    queue="callbacks",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def callback_deliver(self, delivery_id: int) -> None:
    """Retried with exponential backoff and jitter (10 s, 20 s, 40 s … capped at an hour) until delivered or dead."""
    delivery = services.callback_attempt(delivery_id=delivery_id)
    if delivery.status == DeliveryStatus.PENDING:
        delay = min(3600.0, 10.0 * 2**self.request.retries) * random.uniform(0.5, 1.5)
        raise self.retry(countdown=delay, max_retries=None)
