"""The detect stage's records: each scan of an upload, the tags it earned, shadow models' opinions."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from moderation.models import Upload, VerdictLabel
from registry.models import ModelVersion


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
    verdict = models.CharField(max_length=16, choices=VerdictLabel.choices, blank=True)
    # Why the detector itself asked for a person (its models disagree), whatever the score; blank when it did not.
    review_reason = models.CharField(max_length=120, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    batch_size = models.PositiveIntegerField(default=1)
    # Grad-CAM overlay: stored for flagged and escalated uploads, made on demand for the rest.
    heatmap = models.FileField(upload_to="heatmaps/%Y/%m/%d/", blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_scan"
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
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_tag"
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


class ShadowScore(models.Model):
    """A shadow model's opinion of a live upload, recorded beside the active model's scan without touching tags."""

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="shadow_scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="shadow_scores")
    score = models.FloatField()
    is_ai = models.BooleanField()
    agrees = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_shadowscore"
        constraints = [models.UniqueConstraint(fields=["scan", "model_version"], name="shadow_score_once_per_scan")]

    def __str__(self) -> str:
        return f"shadow {self.model_version_id} on scan {self.scan_id}: {'agrees' if self.agrees else 'differs'}"
