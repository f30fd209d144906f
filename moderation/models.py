"""Core records every stage shares: tenants (platforms), uploads with their state, and the audit trail.

Each stage keeps its own records in its own app (scans and tags in `scanning`, decisions in `reviews`, …). Writes go
through `services.py`, reads through `selectors.py`; models hold data and database constraints only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Platform(models.Model):
    """A tenant: one platform that sends us uploads and reads our tags."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Standard Webhooks secrets (`whsec_…`). More than one is valid while a platform rotates its secret.
    webhook_secrets = models.JSONField(default=list)
    # sha256 of the API token; the token itself is shown once, when issued.
    api_token_hash = models.CharField(max_length=64, unique=True)
    callback_url = models.URLField(blank=True)
    # Decision thresholds; null means "use the active model's operating point".
    ai_threshold = models.FloatField(null=True, blank=True)
    # Set by a lead in the console: the daily calibration leaves it alone (`manage.py calibrate <slug>` still sets it,
    # and unpins it).
    ai_threshold_pinned = models.BooleanField(default=False)
    review_margin = models.FloatField(default=0.1)
    # Signed webhook requests accepted per minute; more get 429 with Retry-After.
    webhook_rate_limit_per_minute = models.PositiveIntegerField(default=6000)
    # What declared provenance (C2PA, IPTC, generator metadata, watermarks, known-fake matches) does to the verdict:
    # "decide" tags ai-generated whatever the pixel score, "review" sends it to a moderator, "ignore" only shows it.
    provenance_policy = models.CharField(max_length=8, default="decide")
    # Opt in to the shared bank of confirmed fakes: contribute this platform's and match against everyone's.
    share_hashes = models.BooleanField(default=False)
    # The console users who review this platform's uploads (leads and admins see every platform).
    moderators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="moderated_platforms")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ai_threshold__isnull=True) | Q(ai_threshold__gte=0, ai_threshold__lte=1),
                name="platform_ai_threshold_in_unit_interval",
            ),
            models.CheckConstraint(
                condition=Q(review_margin__gte=0, review_margin__lt=0.5), name="platform_review_margin_range"
            ),
            models.CheckConstraint(
                condition=Q(webhook_rate_limit_per_minute__gt=0), name="platform_rate_limit_positive"
            ),
            models.CheckConstraint(
                condition=Q(provenance_policy__in=["decide", "review", "ignore"]), name="platform_provenance_policy"
            ),
        ]
        permissions = [("change_platform_thresholds", "Can change a platform's AI threshold and review margin")]

    def __str__(self) -> str:
        return self.slug


class UploadStatus(models.TextChoices):
    RECEIVED = "received"
    QUEUED = "queued"
    FETCHED = "fetched"
    SCANNED = "scanned"
    TAGGED = "tagged"
    NEEDS_REVIEW = "needs_review"
    REVIEWED = "reviewed"
    FAILED = "failed"


class Upload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the unique (platform, external_id) and (platform, status, created_at) indexes lead with it,
    # and every index costs each insert and each status change (six on the upload without this one).
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="uploads", db_index=False)
    external_id = models.CharField(max_length=255)
    # The Standard Webhooks event id that created this upload: the idempotency key for replays.
    webhook_id = models.CharField(max_length=255)
    source_url = models.URLField(max_length=2048, blank=True)
    image = models.FileField(upload_to="uploads/%Y/%m/%d/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # PDQ perceptual hash (64 hex digits) and its quality (0-100; below 50 it is not matched).
    pdq_hash = models.CharField(max_length=64, blank=True)
    pdq_quality = models.SmallIntegerField(null=True, blank=True)
    # Findings beyond pixels: [{"kind", "value", "strength", "source", "ai", "detail"}, …] (see detector.evidence).
    evidence = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVED)
    # Every state entered, in order: [{"status": "received", "at": "2026-…"}, …].
    status_history = models.JSONField(default=list)
    failure_reason = models.TextField(blank=True)
    # Starts of each stage's work on this upload, each counted and committed before the work: a start whose worker
    # crashed or was killed at its hard time limit still counts, so an image that takes down every worker that opens it
    # ends `failed` (`fetching.services.FETCH_MAX_ATTEMPTS`, `scanning.services.SCAN_MAX_ATTEMPTS`) instead of being
    # redelivered, or resent by the sweeper, for ever.
    fetch_attempts = models.PositiveIntegerField(default=0)
    scan_attempts = models.PositiveIntegerField(default=0)
    # The latest machine verdict, copied from its scan so the review queue filters and sorts 100k uploads on one
    # table's indexes. Reviewer decisions never change these: they are what the reviewer confirmed or overturned.
    scan_verdict = models.CharField(max_length=16, blank=True)
    scan_score = models.FloatField(null=True, blank=True)
    scan_escalated = models.BooleanField(default=False)
    scan_model_version = models.CharField(max_length=160, blank=True)
    # Higher is reviewed first: platform-flagged, then escalated, then scores closest to the threshold.
    review_priority = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "external_id"], name="upload_external_id_unique_per_platform"),
            models.UniqueConstraint(fields=["platform", "webhook_id"], name="upload_webhook_id_unique_per_platform"),
            models.CheckConstraint(condition=Q(status__in=UploadStatus.values), name="upload_status_valid"),
            # A URL to fetch, or the bytes themselves (their sha256 is recorded when the webhook carries them; the fetch
            # stage stores them as `image`).
            models.CheckConstraint(
                condition=~Q(source_url="") | ~Q(image="") | ~Q(sha256=""), name="upload_has_source"
            ),
            models.CheckConstraint(
                condition=~Q(status=UploadStatus.FAILED) | ~Q(failure_reason=""), name="upload_failed_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["platform", "status", "created_at"]),
            # The review queue: one status, highest priority first, then oldest first.
            models.Index(fields=["status", "-review_priority", "created_at"], name="upload_review_queue"),
            models.Index(fields=["created_at"], name="upload_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.platform_id}:{self.external_id}"


class VerdictLabel(models.TextChoices):
    """The tag a verdict earns (not `detector.Verdict`, the detector's scores for one image)."""

    AI_GENERATED = "ai-generated"
    LIKELY_REAL = "likely-real"
    NEEDS_REVIEW = "needs-review"


class AuditEvent(models.Model):
    """Who (a user, or a named part of the service) did what to which object, and the values before and after."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    # Which part of the service acted, when no person did (moderation.services.actors); blank on rows before 2026-12.
    system_actor = models.CharField(max_length=32, blank=True)
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, null=True, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id"]), models.Index(fields=["-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"
