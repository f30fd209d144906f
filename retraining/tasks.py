"""The batch-job (`training`) queue's periodic work: retrain weekly, calibrate daily."""

from __future__ import annotations

from celery import shared_task

from moderation.models import Platform
from moderation.services import SCHEDULER

from . import services

# Task names predate the split into stages; kept so that beat schedules and queued messages still match.


@shared_task(
    name="moderation.tasks.model_retrain",
    queue="training",
    acks_late=True,
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 300,
)
def model_retrain() -> None:
    """Periodic (weekly by default): does nothing unless enough new reviewer labels exist."""
    services.model_retrain(acting_user=SCHEDULER)


@shared_task(
    name="moderation.tasks.platforms_calibrate", queue="training", acks_late=True, soft_time_limit=600, time_limit=660
)
def platforms_calibrate() -> None:
    """Daily: every platform whose threshold a lead has not pinned in the console."""
    for platform in Platform.objects.filter(ai_threshold_pinned=False):
        services.platform_calibrate(platform=platform, acting_user=SCHEDULER)
