"""The standalone service's Django project: settings, URLs, the Celery app and `run`. The apps never import it.

The Celery app lives in `config.celery` (found by `celery -A config`) and is imported by the entry points, not here, so
that importing the settings starts nothing.
"""
