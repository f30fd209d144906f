"""System checks for a host project that installs the apps as a plugin."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register


@register()
def celery_broker_configured(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Uploads are processed by Celery tasks. Without a configured app, `.delay()` silently publishes to Celery's
    default, amqp://guest@localhost//, and every upload stays `received`: fail at startup instead."""
    from celery import current_app

    conf = current_app.conf
    if conf.broker_url or conf.task_always_eager:
        return []
    return [
        Error(
            "No Celery broker is configured, so uploads would never be fetched or scanned (Celery would publish to "
            "amqp://guest@localhost// and fail quietly).",
            hint=(
                "Set CELERY_BROKER_URL (e.g. redis://…) and load a Celery app that reads it, in your project's "
                "__init__.py: app = Celery('yours'); app.config_from_object('django.conf:settings', "
                "namespace='CELERY'); app.autodiscover_tasks(). See the README's plugin section for the queues and "
                "beat jobs to run."
            ),
            id="moderation.E001",
        )
    ]
