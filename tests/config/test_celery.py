"""Worker processes keep their database connection from task to task, as web processes do from request to request."""

from __future__ import annotations

import pytest
from django.db import connection

from moderation.models import Upload
from tests.conftest import post_webhook, signed_headers, upload_body, wait_for
from tests.images import jpeg_bytes


def _sessions_opened() -> int:
    """Connections ever opened to the test database (PostgreSQL's own count, flushed when a session ends)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.services
def test_a_worker_reuses_its_database_connection_across_tasks(client, platform, start_worker):
    uploads = 16
    before = _sessions_opened()
    worker = start_worker(queues="fetch", concurrency=1)
    for index in range(uploads):
        body = upload_body(f"reuse-{index}", image=jpeg_bytes(64, 48, seed=index))
        assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
    wait_for(lambda: Upload.objects.filter(status="fetched").count() == uploads, timeout=60)
    worker.terminate()  # its sessions end, so PostgreSQL counts them
    worker.wait(timeout=30)
    # Celery's default closed the connection around every task: at least one new session per upload. Kept, the worker
    # opens a handful (its process and pool child starting up).
    assert _sessions_opened() - before <= 4
