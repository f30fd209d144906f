"""Delivering recorded callback events: one signed POST per attempt."""

from __future__ import annotations

import json

from django.db import transaction
from django.utils import timezone

from callbacks.models import AttemptOutcome, CallbackDelivery, CallbackDeliveryAttempt, DeliveryStatus
from moderation.conf import app_setting
from transport.signed_post import post_signed


def callback_attempt(*, delivery_id: int) -> CallbackDelivery:
    """One attempt; `pending` afterwards means it failed and should be retried later. A URL the address checks refuse
    is `dead` at once, with the reason: the policy will refuse it on every retry too."""
    delivery = CallbackDelivery.objects.select_related("platform").get(pk=delivery_id)
    if delivery.status != DeliveryStatus.PENDING:
        return delivery
    result = post_signed(
        delivery.platform.callback_url,
        json.dumps(delivery.payload).encode(),
        secrets=delivery.platform.webhook_secrets,  # both while a rotation is open: either verifies
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
    outcome = (
        AttemptOutcome.DELIVERED
        if result.delivered
        else AttemptOutcome.REFUSED
        if result.refused
        else AttemptOutcome.FAILED
    )
    with transaction.atomic():
        delivery.save()
        CallbackDeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_log.count() + 1,
            outcome=outcome,
            status_code=result.status_code,
            error=delivery.last_error,
            latency_ms=result.latency_ms,
        )
    return delivery
