"""Both brokers end to end. Redis runs under every `services` test (tests/settings.py); here the same web server and
worker processes run on RabbitMQ: quorum queues, publisher confirms, late acks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests import settings as test_settings
from tests.conftest import photo_bytes, upload_body, wait_for
from tests.test_faults import Stack, _accepts, service_env
from transport.signatures import sign

pytestmark = [pytest.mark.scale, pytest.mark.services, pytest.mark.rabbitmq]


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def rabbitmq_url() -> Iterator[str]:
    """A vhost of this test's own where rabbitmqctl is at hand (so runs sharing a RabbitMQ never meet), else the
    configured URL as is."""
    if shutil.which("rabbitmqctl") is None:
        yield test_settings.TEST_RABBITMQ_URL
        return
    vhost = f"moderation-test-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    user = urlsplit(test_settings.TEST_RABBITMQ_URL).username or "guest"
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    parts = urlsplit(test_settings.TEST_RABBITMQ_URL)
    yield urlunsplit(parts._replace(path=f"/{vhost}"))
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def rabbitmq_stack(transactional_db, coin_model, rabbitmq_url, tmp_path) -> Iterator[Stack]:
    """gunicorn and a Celery worker on every queue, both on RabbitMQ and the test database."""
    from django.db import connection

    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # INFO, so the worker's log shows the tasks it ran and the broker it ran them from.
    env = service_env(tmp_path, database_url=database_url, broker_url=rabbitmq_url, model=coin_model, LOG_LEVEL="INFO")
    stack = Stack(root=tmp_path, postgres=None, redis=None, env=env)
    web = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{stack.web_port}", "--workers", "2"]
    try:
        stack.spawn("web", web, lambda: _accepts(stack.web_port))
        stack.start_worker("worker", "fetch,detect,callbacks")
        yield stack
    finally:
        stack.stop_all()


def test_uploads_flow_through_rabbitmq_quorum_queues(platform, rabbitmq_stack):
    from moderation.models import Upload

    ids = []
    for index in range(4):
        body = upload_body(f"rabbit-{index}", image=photo_bytes(300 + index))
        headers = {
            "content-type": "application/json",
            **sign(body, secret=platform.webhook_secret, msg_id=f"msg_{index}"),
        }
        response = requests.post(f"{rabbitmq_stack.base_url}/webhooks/acme/uploads", data=body, headers=headers,
                                 timeout=10)  # fmt: skip
        assert response.status_code == 202, response.text
        ids.append(response.json()["upload_id"])
    done = ["tagged", "needs_review"]
    wait_for(lambda: Upload.objects.filter(id__in=ids, status__in=done).count() == len(ids), timeout=90)
    worker_log = (rabbitmq_stack.root / "worker.log").read_text()
    assert "amqp://" in worker_log and "moderation.tasks.uploads_scan" in worker_log
    if shutil.which("rabbitmqctl") is not None:
        vhost = urlsplit(rabbitmq_stack.env["CELERY_BROKER_URL"]).path.lstrip("/")
        queues = dict(
            line.split()[:2] for line in _rabbitmqctl("list_queues", "-p", vhost, "name", "type").splitlines()
        )
        assert {queues.get(name) for name in ("fetch", "detect")} == {"quorum"}, queues
