"""The registry's writes: register the shipped default as the active model.

`detector` (torch) is imported inside the functions that score: web processes import this module and stay light.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from moderation.conf import app_setting
from registry.models import BUILTIN_CHECKPOINT, ModelStatus, ModelVersion

logger = logging.getLogger(__name__)


def model_store() -> Path:
    return Path(app_setting("MODEL_STORE") or Path(settings.MEDIA_ROOT) / "models")


@transaction.atomic
def model_version_ensure_default() -> ModelVersion:
    """The active version, registering the checkpoint shipped in `detector` as active when there is none."""
    from detector import DEFAULT_CHECKPOINT

    active = ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).first()
    if active is not None:
        return active
    checkpoint = Path(app_setting("DETECTOR_CHECKPOINT") or DEFAULT_CHECKPOINT)
    name, version = _describe(checkpoint)
    existing = ModelVersion.objects.filter(name=name, version=version).first()
    if existing is not None:
        existing.status, existing.activated_at = ModelStatus.ACTIVE, timezone.now()
        existing.save(update_fields=["status", "activated_at"])
        return existing
    return ModelVersion.objects.create(
        name=name,
        version=version,
        checkpoint_path=BUILTIN_CHECKPOINT if checkpoint == DEFAULT_CHECKPOINT else str(checkpoint),
        status=ModelStatus.ACTIVE,
        activated_at=timezone.now(),
    )


def _describe(checkpoint: Path) -> tuple[str, str]:
    """A cascade's own name and version where it has one (a photo path), else its CNN's."""
    from detector.card import ModelCard
    from detector.cascade import CASCADE_FILENAME, CascadeSpec

    if (checkpoint / CASCADE_FILENAME).is_file():
        spec = CascadeSpec.load(checkpoint)
        if spec.name:
            return spec.name, spec.version
        checkpoint = checkpoint / spec.cnn
    card = ModelCard.load(checkpoint / "card.json")
    return card.name, card.version
