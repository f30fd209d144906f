"""Signed events to platforms' callback URLs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from moderation.models import Platform, Upload


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class CallbackDelivery(models.Model):
    """One signed event to a platform's callback URL, with its attempts; `dead` after the last retry fails."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="callback_deliveries")
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, null=True, blank=True, related_name="callbacks")
    event_type = models.CharField(max_length=64)
    # The Standard Webhooks `webhook-id`: stable across retries so the platform can drop duplicates.
    event_id = models.CharField(max_length=64, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_callbackdelivery"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid")
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.platform_id} ({self.status})"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered"
    FAILED = "failed"  # retried later, unless it was the last attempt
    REFUSED = "refused"  # the address checks refused the URL: never retried


class CallbackDeliveryAttempt(models.Model):
    """One POST of a delivery and what came of it, kept for every try (redeliveries included), so a delivery's history
    is visible in the admin (as Saleor's EventDeliveryAttempt)."""

    delivery = models.ForeignKey(CallbackDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    # 1, 2, 3 … over the delivery's whole life; `CallbackDelivery.attempts` restarts at 0 on a redelivery.
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="callback_attempt_number_unique"),
            models.CheckConstraint(
                condition=Q(outcome__in=AttemptOutcome.values), name="callback_attempt_outcome_valid"
            ),
        ]
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
