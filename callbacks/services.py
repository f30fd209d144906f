"""Delivering recorded callback events: one signed POST per attempt."""

from __future__ import annotations

import json
import logging
import time

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from callbacks.models import AttemptOutcome, CallbackDelivery, CallbackDeliveryAttempt, DeliveryStatus
from moderation.conf import app_setting
from transport.signed_post import DeliveryResult, post_signed

logger = logging.getLogger(__name__)


def callback_attempt(*, delivery_id: int) -> CallbackDelivery:
    """One attempt; `pending` afterwards means it failed and should be retried later. A URL the address checks refuse
    is `dead` at once, with the reason: the policy will refuse it on every retry too. An attempt that raises (e.g. at
    the task's soft time limit) counts like any failure, so CALLBACK_MAX_ATTEMPTS still ends it."""
    delivery = CallbackDelivery.objects.select_related("platform").get(pk=delivery_id)
    if delivery.status != DeliveryStatus.PENDING:
        return delivery
    started = time.perf_counter()
    try:
        result = post_signed(
            delivery.platform.callback_url,
            json.dumps(delivery.payload).encode(),
            secrets=delivery.platform.webhook_secrets,  # both while a rotation is open: either verifies
            event_id=delivery.event_id,
            timeout=app_setting("CALLBACK_TIMEOUT_SECONDS"),
            allow_loopback=app_setting("FETCH_ALLOW_LOOPBACK"),
        )
    except Exception as exc:  # the task's soft time limit (headers dripped in), or a fault of ours: still an attempt
        logger.exception("callback delivery %s: the attempt raised", delivery_id)
        result = DeliveryResult(None, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"[:500])
    outcome = (
        AttemptOutcome.DELIVERED
        if result.delivered
        else AttemptOutcome.REFUSED
        if result.refused
        else AttemptOutcome.FAILED
    )
    error = result.error or ("" if result.delivered else f"HTTP {result.status_code}")
    with transaction.atomic():
        # Read again, locked: a redelivery (or a second chain of retries) may have changed the row during the POST;
        # its reset stands, and two attempts never take the same number.
        delivery = CallbackDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempts += 1
        delivery.last_status_code = result.status_code
        delivery.last_error = error
        delivery.last_latency_ms = result.latency_ms
        if result.delivered:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, timezone.now()
        elif delivery.status == DeliveryStatus.PENDING and (
            result.refused or delivery.attempts >= app_setting("CALLBACK_MAX_ATTEMPTS")
        ):
            delivery.status = DeliveryStatus.DEAD
        delivery.save()
        last_number = delivery.attempt_log.aggregate(last=Max("number"))["last"] or 0
        CallbackDeliveryAttempt.objects.create(
            delivery=delivery,
            number=last_number + 1,
            outcome=outcome,
            status_code=result.status_code,
            error=error,
            latency_ms=result.latency_ms,
        )
    return delivery
