"""The standalone service's Django project. The apps (`moderation`, `webhooks`, `admin_ui`) never import it."""

from .celery import app as celery_app

__all__ = ["celery_app"]
