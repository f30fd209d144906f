"""`/healthz` (process up, no database) and `/readyz` (database, broker and the active model reachable)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.db import OperationalError
from kombu import Connection

from config.celery import app as celery_app
from lookup import health
from registry.models import ModelStatus, ModelVersion

SHIPPED = Path(__file__).resolve().parents[2] / "detector" / "models" / "default"


def test_healthz_answers_without_touching_the_database(client):
    # No `db` fixture: pytest-django fails any query this test makes.
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ready_with_database_broker_and_the_shipped_model(client):
    celery_app.conf.task_always_eager = False  # check the real (embedded filesystem) broker, not eager mode
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] is True
    cnn = json.loads((SHIPPED / "cnn" / "card.json").read_text())
    assert f"{cnn['name']}@{cnn['version']}" in body["checks"]["model"]["models"]
    assert len(body["checks"]["model"]["models"]) == 3  # screen, ViT and thumbnail expert


@pytest.mark.django_db
def test_readyz_is_not_ready_when_the_broker_is_unreachable(client, monkeypatch):
    celery_app.conf.task_always_eager = False
    monkeypatch.setattr(celery_app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] and body["checks"]["model"]["ok"]


@pytest.mark.django_db
def test_readyz_is_not_ready_when_the_database_is_unreachable(client, monkeypatch):
    class Unreachable:
        def cursor(self):
            raise OperationalError("connection to server at 127.0.0.1 port 5432 failed: Connection refused")

    monkeypatch.setattr(health, "connection", Unreachable())
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False and "Connection refused" in checks["database"]["error"]
    assert checks["model"] == {"ok": False, "error": "needs the database"}


@pytest.mark.django_db
def test_readyz_is_not_ready_when_the_active_checkpoint_is_missing_or_truncated(client, tmp_path):
    checkpoint = tmp_path / "candidate"
    shutil.copytree(SHIPPED, checkpoint)
    ModelVersion.objects.create(name="cand", version="1", checkpoint_path=str(checkpoint), status=ModelStatus.ACTIVE)
    assert client.get("/readyz").status_code == 200

    weights = checkpoint / "vit" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a copy cut short
    response = client.get("/readyz")
    assert response.status_code == 503
    model = response.json()["checks"]["model"]
    assert model["ok"] is False and model["model"] == "cand@1" and "vit/model.safetensors" in model["error"]

    shutil.rmtree(checkpoint)  # e.g. the model volume is not mounted
    response = client.get("/readyz")
    assert response.status_code == 503 and "unreadable" in response.json()["checks"]["model"]["error"]


@pytest.mark.django_db
def test_probes_mount_in_a_plugin_host_under_any_prefix(settings, client):
    from django.urls import include, path

    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": [path("ops/", include("lookup.health"))]})
    assert client.get("/ops/healthz").status_code == 200
    assert client.get("/ops/readyz").status_code == 200
