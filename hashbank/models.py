"""The bank of confirmed fakes and the look-backs over earlier uploads."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from moderation.models import Platform, Upload


class HashBankEntry(models.Model):
    """A PDQ hash of a confirmed fake. `platform` null means the shared bank that opted-in platforms match against."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, null=True, blank=True, related_name="hashes")
    pdq_hash = models.CharField(max_length=64)
    quality = models.SmallIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # Where it came from: a moderator's decision on an upload, or an imported list (note says which).
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, blank=True, related_name="bank_hashes")
    # By name, not import: reviews (above) banks its decisions here, so this data points up without a code dependency.
    review_decision = models.ForeignKey(
        "reviews.ReviewDecision", on_delete=models.SET_NULL, null=True, blank=True, related_name="bank_hashes"
    )
    note = models.CharField(max_length=500, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_hashbankentry"
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
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_retroscan"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RetroScanStatus.values), name="retro_scan_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.processed}/{self.total}"
