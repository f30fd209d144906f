"""Probes for orchestrators: `/healthz` (the process answers) and `/readyz` (it can do its work).

Both are cheap and safe to call every few seconds. `readyz` checks what a web process needs to accept uploads: the
database answers, the Celery broker accepts a connection, and the active model's checkpoint is on disk and readable
(every model of a cascade: its card parses and its safetensors header is intact), so workers can load it. It never
imports torch: web processes do not load models. A plugin host mounts the same views with
`path("", include("moderation.health"))`.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache

from moderation.conf import app_setting
from registry.models import BUILTIN_CHECKPOINT, ModelStatus, ModelVersion

BROKER_TIMEOUT_SECONDS = 2.0


def _shipped_checkpoint() -> Path:
    # detector.DEFAULT_CHECKPOINT, without importing detector.detector (and torch with it).
    spec = importlib.util.find_spec("detector")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "models" / "default"


def database_check() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    return {"ok": True}


def broker_check() -> dict[str, Any]:
    from celery import current_app

    if current_app.conf.task_always_eager:
        return {"ok": True, "detail": "tasks run in-process (task_always_eager)"}
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
            transport = conn.transport_cls
    except Exception as exc:  # kombu raises each transport's own errors: any of them means "not reachable"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    return {"ok": True, "transport": str(transport)}


def _safetensors_header_ok(file: Path) -> bool:
    """The 8-byte length and the JSON header that start every safetensors file, without reading the weights."""
    with file.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            return False
        (length,) = struct.unpack("<Q", prefix)
        if length > file.stat().st_size - 8:
            return False
        return isinstance(json.loads(handle.read(length)), dict)


def model_check() -> dict[str, Any]:
    """The active model version (or, before any is registered, the one that would be) is complete on disk."""
    from detector.card import ModelCard
    from detector.cascade import CASCADE_FILENAME, CascadeSpec

    try:
        active = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
    except DatabaseError as exc:
        return {"ok": False, "error": f"cannot read the model registry: {exc}".strip()}
    if active is not None:
        shipped = active.checkpoint_path == BUILTIN_CHECKPOINT
        root = _shipped_checkpoint() if shipped else Path(active.checkpoint_path)
        name = f"{active.name}@{active.version}"
    else:
        root = Path(app_setting("DETECTOR_CHECKPOINT") or _shipped_checkpoint())
        name = "(none registered yet)"
    try:
        parts = [root]
        if (root / CASCADE_FILENAME).is_file():
            spec = CascadeSpec.load(root)
            parts = [root / part for part in (spec.cnn, spec.vit, spec.thumbnail) if part]
        models = []
        for part in parts:
            card = ModelCard.load(part / "card.json")
            weights = part / "model.safetensors"
            if not _safetensors_header_ok(weights):
                return {"ok": False, "model": name, "error": f"{weights} is truncated or not safetensors"}
            models.append(f"{card.name}@{card.version}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"ok": False, "model": name, "error": f"checkpoint {root} unreadable: {exc}"}
    return {"ok": True, "model": name, "checkpoint": str(root), "models": models}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering. Touches nothing else (no database), so a database outage never restarts it."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the broker and the active model are all reachable, else 503 naming what is not."""
    checks = {"database": database_check(), "broker": broker_check()}
    checks["model"] = model_check() if checks["database"]["ok"] else {"ok": False, "error": "needs the database"}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


urlpatterns = [path("healthz", healthz, name="healthz"), path("readyz", readyz, name="readyz")]
