"""Moderators' decisions and the claims that keep two of them off one upload."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from moderation.models import Upload


class ReviewLabel(models.TextChoices):
    AI_GENERATED = "ai-generated"
    REAL = "real"
    UNSURE = "unsure"


class ReviewDecision(models.Model):
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="review_decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions")
    label = models.CharField(max_length=16, choices=ReviewLabel.choices)
    note = models.TextField(blank=True)
    # The platform policy's reason (compliance.DecisionPolicy.reason_codes) the statement of reasons cites.
    reason_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_reviewdecision"
        constraints = [models.CheckConstraint(condition=Q(label__in=ReviewLabel.values), name="review_label_valid")]
        indexes = [models.Index(fields=["upload", "-created_at"])]
        # The console's roles are groups holding these (see the 0005 migration): moderator, lead, admin.
        permissions = [
            ("review_upload", "Can review uploads of assigned platforms"),
            ("review_bulk", "Can decide many uploads at once"),
            ("view_all_platforms", "Can review every platform's uploads"),
            ("view_review_stats", "Can see review statistics"),
            ("view_audit_log", "Can read the audit log"),
        ]

    def __str__(self) -> str:
        return f"{self.label} by {self.reviewer_id}"


class ReviewClaim(models.Model):
    """A moderator's hold on one upload while they look at it, so two people never decide it at once."""

    upload = models.OneToOneField(Upload, on_delete=models.CASCADE, related_name="review_claim")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_claims")
    expires_at = models.DateTimeField()

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_reviewclaim"

    def __str__(self) -> str:
        return f"{self.upload_id} held by {self.reviewer_id} until {self.expires_at:%H:%M:%S}"
