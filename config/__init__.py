"""The standalone service's Django project: settings, URLs, the Celery app and `run`. The apps never import it.

As in Celery's Django guide, the Celery app loads with the project, so every process (web, worker, manage.py,
`python -m django`) publishes through it. Nothing here touches the disk: the entry points (manage.py, wsgi, asgi,
`config.run`) call `config.bootstrap.prepare_data_dir` first.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
