import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("moderation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Any = None, **_: Any) -> None:
    """Treat each task as Django treats a request: keep its connection up to CONN_MAX_AGE, check it before reuse
    (CONN_HEALTH_CHECKS), drop one an error left unusable. CELERY_DB_REUSE_MAX keeps Celery from closing it itself.
    Not for a task run eagerly: it runs inside its caller's request or transaction, whose connection is not ours."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
