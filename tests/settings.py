"""Test settings: the standalone settings, pointed at the real PostgreSQL + Redis where they answer.

Where they do not (a laptop without servers), the suite runs on the embedded defaults and the tests marked
`services` are skipped and named at the end; with MODERATION_REQUIRE_SERVICES=1 (as .ci/run sets) they fail instead.
"""

import os
import secrets
import socket
import tempfile
from urllib.parse import urlsplit

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
# The RabbitMQ the broker tests run a worker against (a vhost of their own is made per run).
TEST_RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


SERVICES_AVAILABLE = _reachable(TEST_DATABASE_URL, 5432) and _reachable(TEST_BROKER_URL, 6379)
RABBITMQ_AVAILABLE = _reachable(TEST_RABBITMQ_URL, 5672)

# Never let a developer's own environment point the tests at a real database or broker.
os.environ["MODERATION_DATA_DIR"] = tempfile.mkdtemp(prefix="moderation-tests-")
# ONNX exports made by the detector library outside Django land in this run's own cache, not the user's.
os.environ["XDG_CACHE_HOME"] = os.path.join(os.environ["MODERATION_DATA_DIR"], "xdg-cache")
for name in (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "DETECTOR_CHECKPOINT",
    "DETECTOR_CPU_RUNTIME",
    "DETECTOR_ONNX_CACHE_DIR",
    "DJANGO_SECRET_KEY",
):
    os.environ.pop(name, None)
# Django's detector (DETECTOR_ONNX_CACHE_DIR) and the library's default share one cache, so each shipped model is
# exported once per run, not once per entry point (about 45 s of the suite).
os.environ["DETECTOR_ONNX_CACHE_DIR"] = os.path.join(os.environ["XDG_CACHE_HOME"], "ai-moderation", "onnx")
os.environ["DJANGO_DEBUG"] = "true"
# One key for this run, inherited by the worker and web processes the tests start.
os.environ["DJANGO_SECRET_KEY"] = "tests-" + secrets.token_urlsafe(32)
if SERVICES_AVAILABLE:
    os.environ["DATABASE_URL"] = TEST_DATABASE_URL
    os.environ["CELERY_BROKER_URL"] = TEST_BROKER_URL

from config.bootstrap import prepare_data_dir  # noqa: E402

prepare_data_dir()

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
