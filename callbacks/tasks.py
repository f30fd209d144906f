"""The callback queue: record an event for delivery (`callback_enqueue`), deliver it with retries."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from callbacks.models import CallbackDelivery, DeliveryStatus
from moderation.conf import app_setting
from moderation.models import Upload
from moderation.services import Actor, AuditAction, audit_record

from . import services

logger = logging.getLogger(__name__)

# The longest wait between two attempts is this times 1.5 (jitter): CALLBACK_STALLED_AFTER_SECONDS must exceed it.
MAX_RETRY_DELAY_SECONDS = 3600.0


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
    # Robust: a broker that refuses this publish must not stop the hooks after it; the delivery, committed `pending`,
    # is resent by `callbacks_requeue`.
    transaction.on_commit(lambda: callback_deliver.delay(delivery.pk), robust=True)
    return delivery


@transaction.atomic
def callback_redeliver(*, delivery: CallbackDelivery, acting_user: Actor) -> CallbackDelivery:
    """Send a delivery again from scratch (dead ones included), under the same event id."""
    delivery.status, delivery.attempts = DeliveryStatus.PENDING, 0
    delivery.save(update_fields=["status", "attempts"])
    audit_record(actor=acting_user, platform=delivery.platform, action=AuditAction.CALLBACK_REDELIVERED, obj=delivery)
    transaction.on_commit(lambda: callback_deliver.delay(delivery.pk), robust=True)
    return delivery


def callbacks_requeue(*, stalled_after_seconds: float) -> int:
    """The sweeper for callbacks: a `pending` delivery with no attempt for `stalled_after_seconds` (longer than any
    retry waits) lost its message (a refused publish, a broker restarted without its data): send it again. Returns how
    many were sent."""
    cutoff = timezone.now() - timedelta(seconds=stalled_after_seconds)
    stalled = (
        CallbackDelivery.objects.filter(status=DeliveryStatus.PENDING, created_at__lt=cutoff)
        .exclude(attempt_log__created_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    sent = 0
    for delivery_id in stalled[:1000]:
        try:
            callback_deliver.delay(delivery_id)
        except Exception:  # broker still down: the next sweep tries again
            logger.warning("broker refused callback delivery %s; will retry on the next sweep", delivery_id)
            break
        sent += 1
    return sent


@shared_task(name="callbacks.tasks.callbacks_requeue_stalled", queue="callbacks", soft_time_limit=120, time_limit=150)
def callbacks_requeue_stalled() -> None:
    """Periodic: resend callback deliveries whose message was lost."""
    callbacks_requeue(stalled_after_seconds=app_setting("CALLBACK_STALLED_AFTER_SECONDS"))


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
        delay = min(MAX_RETRY_DELAY_SECONDS, 10.0 * 2**self.request.retries) * random.uniform(0.5, 1.5)
        raise self.retry(countdown=delay, max_retries=None)
