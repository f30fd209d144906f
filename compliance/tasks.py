"""The submission queue: every minute, send each platform's due statements to the Transparency Database."""

from __future__ import annotations

import logging

from celery import shared_task

from moderation.models import Platform

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="compliance.tasks.statements_submit_due", queue="callbacks", soft_time_limit=240, time_limit=300)
def statements_submit_due() -> None:
    for platform in Platform.objects.filter(decision_policy__transparency_db_enabled=True):
        counts = services.statements_submit(platform=platform)
        if any(counts.values()):
            logger.info("transparency database, %s: %s", platform.slug, counts)
