"""The whole path with real processes: signed webhook → broker → Celery worker process → detector → REST lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from moderation.models import Upload
from scanning.models import Scan
from tests.conftest import (
    REPO_ROOT,
    SHIPPED_MODEL_VERSIONS,
    api_get,
    free_port,
    post_webhook,
    signed_headers,
    upload_body,
    wait_for,
)
from tests.images import jpeg_bytes
from transport.signatures import sign


@pytest.mark.services
def test_postgres_redis_and_worker_process(client, platform, celery_worker_process):
    from django.db import connection

    assert connection.vendor == "postgresql"
    ids = []
    for index in range(3):
        body = upload_body(f"e2e-{index}", image=jpeg_bytes(800, 600, seed=index))
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        assert response.status_code == 202
        ids.append(response.json()["status_url"])
    corrupt = upload_body("e2e-corrupt", image=jpeg_bytes(800, 600)[:2000])
    assert post_webhook(client, "acme", corrupt, signed_headers(corrupt, platform.webhook_secret)).status_code == 202

    def all_tagged():
        results = [api_get(client, url, platform.api_token).json() for url in ids]
        return results if all(r["verdict"] for r in results) else None

    for result in wait_for(all_tagged, timeout=60):
        assert result["status"] in ("tagged", "needs_review")
        assert result["tags"][0]["source"] == "auto"
        assert result["verdict"]["model_version"] in SHIPPED_MODEL_VERSIONS
    failed = wait_for(lambda: Upload.objects.filter(external_id="e2e-corrupt", status="failed").first(), timeout=30)
    assert "corrupt image" in failed.failure_reason
    assert celery_worker_process.poll() is None, "the worker must survive a corrupt image"


@pytest.mark.timeout(600)
def test_embedded_defaults_as_make_run_starts_them(tmp_path: Path):
    """SQLite + the filesystem broker + gunicorn + a worker, exactly the processes `make run` launches. It prints
    "Serving on" once the model is prepared (a fresh ONNX export here: minutes on 2 busy cores) and the worker is warm,
    so from then on a verdict is quick."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "STATIC_ROOT")
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", MODERATION_DATA_DIR=str(tmp_path), PORT=str(free_port()))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*manage, "platform_create", "demo", "--json"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    credentials = json.loads(created.stdout)
    log = open(tmp_path / "service.log", "wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "config.run"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_for(
            lambda: service.poll() is not None or "Serving on" in (tmp_path / "service.log").read_text(), timeout=480
        )
        assert service.poll() is None, (tmp_path / "service.log").read_text()
        assert _answers(f"{base}/api/schema/")
        body = upload_body("embedded-1", image=jpeg_bytes(1024, 768))
        headers = {
            "content-type": "application/json",
            **sign(body, secret=credentials["webhook_secret"], msg_id="msg_embedded_1"),
        }
        accepted = requests.post(f"{base}/webhooks/demo/uploads", data=body, headers=headers, timeout=10)
        assert accepted.status_code == 202, accepted.text
        auth = {"Authorization": f"Token {credentials['api_token']}"}

        def tagged():
            result = requests.get(f"{base}{accepted.json()['status_url']}", headers=auth, timeout=10).json()
            return result if result["verdict"] else None

        result = wait_for(tagged, timeout=60)
        assert result["status"] in ("tagged", "needs_review")
        assert 0.0 <= result["verdict"]["score"] <= 1.0
        assert (tmp_path / "db.sqlite3").exists() and (tmp_path / "broker").is_dir()
    finally:
        service.terminate()
        service.wait(timeout=60)
        log.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.services
def test_detection_worker_scores_queued_uploads_in_batches(client, platform, start_worker):
    """Uploads pile up while no detection worker runs; one that starts then scores them in batches, all of them."""
    count = 24
    for index in range(count):
        body = upload_body(f"burst-{index}", image=jpeg_bytes(640, 480, seed=index))
        assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
    start_worker(queues="fetch", concurrency=2)
    wait_for(lambda: Upload.objects.filter(status="fetched").count() == count, timeout=60)
    start_worker(queues="detect", concurrency=1)
    wait_for(lambda: Scan.objects.count() == count, timeout=120)
    batch_sizes = list(Scan.objects.values_list("batch_size", flat=True))
    assert max(batch_sizes) > 1, batch_sizes
    assert all(scan.verdict for scan in Scan.objects.all())
    assert Upload.objects.filter(status__in=["tagged", "needs_review"]).count() == count
