"""Both brokers end to end. Redis runs under every `services` test (tests/settings.py); here the same web server and
worker processes run on RabbitMQ: quorum queues, publisher confirms, late acks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests import settings as test_settings
from tests.conftest import REPO_ROOT, photo_bytes, upload_body, wait_for
from transport.signatures import sign

pytestmark = [pytest.mark.scale, pytest.mark.services, pytest.mark.rabbitmq]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
def rabbitmq_stack(transactional_db, coin_model, rabbitmq_url, settings, tmp_path) -> Iterator[dict]:
    """gunicorn and a Celery worker on every queue, both on RabbitMQ and the test database."""
    from django.db import connection

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": rabbitmq_url,
        "MODERATION_DATA_DIR": str(settings.DATA_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DETECTOR_CHECKPOINT": str(coin_model),
        "DETECTOR_DEVICE": "cpu",
    }
    port = _free_port()
    commands = {
        "web": [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "fetch,detect,callbacks",
                   "-n", f"rabbit-{uuid.uuid4().hex[:6]}@%h", "--concurrency", "2", "--loglevel", "INFO",
                   "--without-gossip", "--without-mingle"],
    }  # fmt: skip
    processes = {}
    for name, command in commands.items():
        log = open(tmp_path / f"{name}.log", "wb")
        processes[name] = (subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log)

    def up() -> bool:
        for name, (process, _) in processes.items():
            assert process.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
        with socket.socket() as probe:
            web = probe.connect_ex(("127.0.0.1", port)) == 0
        return web and b" ready." in (tmp_path / "worker.log").read_bytes()

    try:
        wait_for(up, timeout=90)
        yield {"base_url": f"http://127.0.0.1:{port}", "url": rabbitmq_url, "logs": tmp_path}
    finally:
        for process, log in processes.values():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def test_uploads_flow_through_rabbitmq_quorum_queues(platform, rabbitmq_stack):
    from moderation.models import Upload

    ids = []
    for index in range(4):
        body = upload_body(f"rabbit-{index}", image=photo_bytes(300 + index))
        headers = {
            "content-type": "application/json",
            **sign(body, secret=platform.webhook_secret, msg_id=f"msg_{index}"),
        }
        response = requests.post(f"{rabbitmq_stack['base_url']}/webhooks/acme/uploads", data=body, headers=headers,
                                 timeout=10)  # fmt: skip
        assert response.status_code == 202, response.text
        ids.append(response.json()["upload_id"])
    done = ["tagged", "needs_review"]
    wait_for(lambda: Upload.objects.filter(id__in=ids, status__in=done).count() == len(ids), timeout=90)
    worker_log = (Path(rabbitmq_stack["logs"]) / "worker.log").read_text()
    assert "amqp://" in worker_log and "moderation.tasks.uploads_scan" in worker_log
    if shutil.which("rabbitmqctl") is not None:
        vhost = urlsplit(rabbitmq_stack["url"]).path.lstrip("/")
        queues = dict(
            line.split()[:2] for line in _rabbitmqctl("list_queues", "-p", vhost, "name", "type").splitlines()
        )
        assert {queues.get(name) for name in ("fetch", "detect")} == {"quorum"}, queues
