"""Core records: tenants, uploads, scans, tags, reviewer decisions and the audit trail.

Writes go through `services.py`, reads through `selectors.py`; models hold data and database constraints only.
"""

from __future__ import annotations

import uuid
from pathlib import Path

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
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="uploads")
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
    attempts = models.PositiveIntegerField(default=0)
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
            models.CheckConstraint(condition=~Q(source_url="") | ~Q(image=""), name="upload_has_source"),
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


class Verdict(models.TextChoices):
    AI_GENERATED = "ai-generated"
    LIKELY_REAL = "likely-real"
    NEEDS_REVIEW = "needs-review"


class Scan(models.Model):
    """One detector run over one upload. A failed run records its error and no scores."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="scans")
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=50)
    vit_model_version = models.CharField(max_length=100, blank=True)
    cnn_score = models.FloatField(null=True, blank=True)
    vit_score = models.FloatField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    score = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    path = models.CharField(max_length=16, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    # Why the detector itself asked for a person (its models disagree), whatever the score; blank when it did not.
    review_reason = models.CharField(max_length=120, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    batch_size = models.PositiveIntegerField(default=1)
    # Grad-CAM overlay: stored for flagged and escalated uploads, made on demand for the rest.
    heatmap = models.FileField(upload_to="heatmaps/%Y/%m/%d/", blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(error="") & Q(score__gte=0, score__lte=1) & Q(cnn_score__gte=0, cnn_score__lte=1) & ~Q(verdict="")
                )
                | (~Q(error="") & Q(score__isnull=True) & Q(verdict="")),
                name="scan_scored_or_failed",
            ),
            models.CheckConstraint(
                condition=Q(escalated=False, vit_score__isnull=True)
                | Q(escalated=True, vit_score__gte=0, vit_score__lte=1),
                name="scan_vit_score_iff_escalated",
            ),
        ]
        indexes = [models.Index(fields=["upload", "-created_at"])]

    def __str__(self) -> str:
        return f"scan {self.pk} of {self.upload_id}: {self.verdict or 'error'}"


class TagSource(models.TextChoices):
    AUTO = "auto"
    REVIEWER = "reviewer"
    PROVENANCE = "provenance"


class Tag(models.Model):
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=TagSource.choices)
    confidence = models.FloatField(null=True, blank=True)
    scan = models.ForeignKey(Scan, on_delete=models.SET_NULL, null=True, blank=True, related_name="tags")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "name"], name="tag_unique_per_upload"),
            models.CheckConstraint(condition=Q(source__in=TagSource.values), name="tag_source_valid"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="tag_confidence_range",
            ),
        ]
        indexes = [models.Index(fields=["name", "upload"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.source})"


class ReviewLabel(models.TextChoices):
    AI_GENERATED = "ai-generated"
    REAL = "real"
    UNSURE = "unsure"


class ReviewDecision(models.Model):
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="review_decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions")
    label = models.CharField(max_length=16, choices=ReviewLabel.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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


class HashBankEntry(models.Model):
    """A PDQ hash of a confirmed fake. `platform` null means the shared bank that opted-in platforms match against."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, null=True, blank=True, related_name="hashes")
    pdq_hash = models.CharField(max_length=64)
    quality = models.SmallIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # Where it came from: a moderator's decision on an upload, or an imported list (note says which).
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, blank=True, related_name="bank_hashes")
    review_decision = models.ForeignKey(
        "ReviewDecision", on_delete=models.SET_NULL, null=True, blank=True, related_name="bank_hashes"
    )
    note = models.CharField(max_length=500, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(pdq_hash__regex=r"^[0-9a-f]{64}$"), name="bank_pdq_hash_hex"),
        ]
        indexes = [models.Index(fields=["platform", "id"])]

    def __str__(self) -> str:
        return f"{self.pdq_hash[:12]}… ({self.platform_id or 'shared'})"


class RetroScanKind(models.TextChoices):
    HASH_MATCH = "hash_match"
    MODEL_RESCORE = "model_rescore"


class RetroScanStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RetroScan(models.Model):
    """A look back over earlier uploads (new bank hashes against them), with progress the console shows."""

    kind = models.CharField(max_length=16, choices=RetroScanKind.choices)
    status = models.CharField(max_length=16, choices=RetroScanStatus.choices, default=RetroScanStatus.QUEUED)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, null=True, blank=True)
    entries = models.ManyToManyField(HashBankEntry, blank=True, related_name="retro_scans")
    # Model re-scores: uploads received since then.
    window_since = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    # Uploads sent to review: [{"upload_id", "external_id", "distance", "entry_id"} or {…, "from", "to", "score"}, …]
    flagged = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RetroScanStatus.values), name="retro_scan_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.processed}/{self.total}"


class ReviewClaim(models.Model):
    """A moderator's hold on one upload while they look at it, so two people never decide it at once."""

    upload = models.OneToOneField(Upload, on_delete=models.CASCADE, related_name="review_claim")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_claims")
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.upload_id} held by {self.reviewer_id} until {self.expires_at:%H:%M:%S}"


class AuditEvent(models.Model):
    """Who (a user, or the system when null) did what to which object, and the values before and after."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
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


BUILTIN_CHECKPOINT = "builtin:default"


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate"
    REJECTED = "rejected"
    SHADOW = "shadow"
    ACTIVE = "active"
    RETIRED = "retired"


class ModelVersion(models.Model):
    """A detector checkpoint (single model or cascade) and where it is in its life: candidate → shadow → active."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    checkpoint_path = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    card = models.JSONField(default=dict, blank=True)
    # The promotion gate's evaluation of this version against the active one on the frozen evaluation set.
    gate = models.JSONField(default=dict, blank=True)
    labels_used = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            models.UniqueConstraint(fields=["status"], condition=Q(status="active"), name="one_active_model"),
            models.UniqueConstraint(fields=["status"], condition=Q(status="shadow"), name="one_shadow_model"),
            models.CheckConstraint(condition=Q(status__in=ModelStatus.values), name="model_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version} ({self.status})"

    @property
    def checkpoint_dir(self) -> Path:
        """Where the checkpoint is now. The model shipped inside `detector` is stored as `builtin:default`, so a moved
        clone or an upgraded install still finds it."""
        if self.checkpoint_path == BUILTIN_CHECKPOINT:
            from detector import DEFAULT_CHECKPOINT

            return DEFAULT_CHECKPOINT
        return Path(self.checkpoint_path)


class ShadowScore(models.Model):
    """A shadow model's opinion of a live upload, recorded beside the active model's scan without touching tags."""

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="shadow_scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="shadow_scores")
    score = models.FloatField()
    is_ai = models.BooleanField()
    agrees = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scan", "model_version"], name="shadow_score_once_per_scan")]

    def __str__(self) -> str:
        return f"shadow {self.model_version_id} on scan {self.scan_id}: {'agrees' if self.agrees else 'differs'}"


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
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid")
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.platform_id} ({self.status})"
