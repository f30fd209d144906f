"""Model versions and where each is in its life: candidate → shadow → active → retired."""

from __future__ import annotations

from pathlib import Path

from django.db import models
from django.db.models import Q

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
    # When a rollback took it out of service: a later rollback never returns to it.
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it had before the model moved out of the core app (no data is copied).
        db_table = "moderation_modelversion"
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
