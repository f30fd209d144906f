from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import settings as hypothesis_settings

from config.celery import app as celery_app
from fetching.publisher import fetch_publisher
from moderation.services import PlatformCredentials, SystemActor, platform_create
from tests import settings as test_settings
from tests.images import jpeg_bytes
from transport.signatures import sign

REPO_ROOT = Path(__file__).resolve().parent.parent
# Who acts when a test calls a service directly (every action names its actor).
TEST_ACTOR = SystemActor("tests")


def _shipped_model_versions() -> frozenset[str]:
    """Every "name@version" a verdict of the shipped default may carry: its CNN, ViT or thumbnail expert, or the
    cascade itself when it fused both models' scores."""
    root = REPO_ROOT / "detector" / "models" / "default"
    cascade = json.loads((root / "cascade.json").read_text())
    names = {f"{cascade['name']}@{cascade['version']}"} if cascade.get("name") else set()
    for folder in (cascade["cnn"], cascade["vit"], (cascade.get("thumbnail") or {}).get("model")):
        if folder:
            card = json.loads((root / folder / "card.json").read_text())
            names.add(f"{card['name']}@{card['version']}")
    return frozenset(names)


SHIPPED_MODEL_VERSIONS = _shipped_model_versions()
# Fuzz tests draw the same examples on every run (seeded from each test's own code, no example database), so a
# submission never fails on an input the previous run did not try. HYPOTHESIS_PROFILE=explore searches afresh; a
# failure it finds becomes an @example beside the test.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
REQUIRE_SERVICES = os.environ.get("MODERATION_REQUIRE_SERVICES") == "1"
_skipped_for_services: list[str] = []


def _missing(item: pytest.Item) -> str | None:
    """What an integration test needs and this machine lacks, or None."""
    if item.get_closest_marker("services") and not test_settings.SERVICES_AVAILABLE:
        return "PostgreSQL/Redis not reachable"
    if item.get_closest_marker("rabbitmq") and not test_settings.RABBITMQ_AVAILABLE:
        return "RabbitMQ not reachable"
    if item.get_closest_marker("kubectl") and shutil.which("kubectl") is None:
        return "kubectl not installed (apt-get install kubectl, or kubernetes-client)"
    if item.get_closest_marker("browser") and shutil.which("chromium") is None:
        return "chromium not installed (apt-get install chromium chromium-driver)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REQUIRE_SERVICES:
        return
    for item in items:
        if reason := _missing(item):
            _skipped_for_services.append(f"{item.nodeid} ({reason})")
            item.add_marker(pytest.mark.skip(reason=f"{reason}; runs on the embedded defaults only"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if REQUIRE_SERVICES and (reason := _missing(item)):
        pytest.fail(f"MODERATION_REQUIRE_SERVICES=1 but {reason}", pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_for_services:
        terminalreporter.section("integration tests NOT run")
        for nodeid in _skipped_for_services:
            terminalreporter.write_line(nodeid)


@pytest.fixture(autouse=True)
def _celery_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests run tasks eagerly in-process; `services` tests send them to the real broker and worker."""
    eager = request.node.get_closest_marker("services") is None
    celery_app.conf.broker_url
    celery_app.conf.task_always_eager = eager
    celery_app.conf.task_eager_propagates = eager
    yield
    fetch_publisher.close()  # what the test's webhooks handed to the publisher goes out under the test's settings
    celery_app.conf.task_always_eager = False


@pytest.fixture
def platform(db: None) -> PlatformCredentials:
    return platform_create(slug="acme", name="Acme Resale", acting_user=TEST_ACTOR)


@pytest.fixture
def other_platform(db: None) -> PlatformCredentials:
    return platform_create(slug="globex", name="Globex Social", acting_user=TEST_ACTOR)


def upload_body(external_id: str = "img-1", image: bytes | None = None, **upload: Any) -> bytes:
    payload_upload: dict[str, Any] = {"external_id": external_id, **upload}
    if "url" not in upload and "data_base64" not in upload:
        payload_upload["data_base64"] = base64.b64encode(image if image is not None else jpeg_bytes()).decode()
    return json.dumps({"type": "upload.created", "upload": payload_upload}).encode()


def signed_headers(
    body: bytes, secret: str, *, msg_id: str | None = None, timestamp: datetime | None = None
) -> dict[str, str]:
    headers = sign(
        body, secret=secret, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", timestamp=timestamp or datetime.now(tz=UTC)
    )
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}


def post_webhook(client: Any, slug: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/webhooks/{slug}/uploads", data=body, content_type="application/json", **headers)


def api_get(client: Any, path: str, token: str) -> Any:
    return client.get(path, HTTP_AUTHORIZATION=f"Token {token}")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for the servers the tests start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def start_worker(transactional_db: None) -> Iterator[Any]:
    """Starts real `celery worker` processes on the test database and the Redis broker; stops them afterwards.

    Queues are purged when the fixture is set up, so messages a test sends before starting a worker are kept.
    """
    from django.db import connection

    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    for queue in ("fetch", "detect", "callbacks"):
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "MODERATION_DATA_DIR": str(django_settings.DATA_DIR),
        "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
    }
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(
        queues: str = "fetch,detect,callbacks", concurrency: int = 2, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        name = f"worker-{uuid.uuid4().hex[:8]}"
        log = open(Path(django_settings.DATA_DIR) / f"{name}.log", "wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-n", f"{name}@%h",
             "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=REPO_ROOT, env={**env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append((worker, log))
        wait_for(
            lambda: (
                worker.poll() is not None
                or celery_app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5)
            ),
            timeout=60,
        )
        assert worker.poll() is None, Path(log.name).read_text()
        return worker

    yield start
    for worker, log in started:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


@pytest.fixture
def celery_worker_process(start_worker: Any) -> subprocess.Popen[bytes]:
    """One real worker on every queue."""
    return start_worker()


@pytest.fixture
def coin_model(settings: Any, tmp_path: Path) -> Path:
    """An active tiny model that scores every image 0.5, so a platform's threshold alone decides the verdict:
    the card's 0.5 (±0.1 margin) sends everything to review; a platform threshold of 0.3 tags it ai-generated."""
    from tests.detector.conftest import write_tiny

    checkpoint = write_tiny(tmp_path / "coin", "test_efficientnet", seed=0, head_scale=0.0)
    settings.AI_MODERATION = {
        **settings.AI_MODERATION,
        "DETECTOR_CHECKPOINT": str(checkpoint),
        "DETECTOR_DEVICE": "cpu",
    }
    return checkpoint


def photo_bytes(seed: int, *, quality: int = 90, size: tuple[int, int] = (480, 360)) -> bytes:
    """A photo-like JPEG; different seeds are different pictures to a perceptual hash."""
    from tests.images import encode, natural_photo

    return encode(natural_photo(*size, seed), "JPEG", quality=quality)


def scanned_upload(
    credentials: PlatformCredentials, external_id: str, *, image: bytes | None = None, **metadata: Any
) -> Any:
    """An upload taken through create → fetch → scan in-process (tasks run eagerly), returned fresh. Each external id
    gets its own picture unless `image` is given."""
    from django.test import TestCase

    from moderation.models import Upload
    from webhooks.services import upload_create

    if image is None:
        image = photo_bytes(zlib.crc32(external_id.encode()))
    with TestCase.captureOnCommitCallbacks(execute=True):
        upload, _ = upload_create(
            platform=credentials.platform,
            webhook_id=f"msg_{uuid.uuid4().hex}",
            external_id=external_id,
            data_base64=base64.b64encode(image).decode(),
            metadata=metadata,
        )
    return Upload.objects.get(pk=upload.pk)


@pytest.fixture
def own_media_root(settings: Any, tmp_path: Path) -> None:
    """Stored images in this test's own folder, not the session's (where another test's identical image would be
    found). Only for tests whose uploads no worker process stores."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


def held_upload(credentials: PlatformCredentials, external_id: str, image: bytes) -> Any:
    """An upload as the webhook records it, `queued` with its bytes held in the database; nothing is published."""
    from webhooks.services import upload_create

    upload, _ = upload_create(
        platform=credentials.platform,
        webhook_id=f"msg_{uuid.uuid4().hex}",
        external_id=external_id,
        data_base64=base64.b64encode(image).decode(),
    )
    return upload


# --- an S3 API server for the object-storage and multi-node tests ------------------------------------------------

S3_CREDENTIALS = {"MEDIA_S3_ACCESS_KEY_ID": "test-key", "MEDIA_S3_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 API server in its own thread, listening on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, settings: Any) -> Iterator[Any]:
    """A fresh bucket, and this process's media pointed at it (as MEDIA_S3_* would in production)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["MEDIA_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["MEDIA_S3_SECRET_ACCESS_KEY"],
    )
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": S3_CREDENTIALS["MEDIA_S3_ACCESS_KEY_ID"],
                "secret_key": S3_CREDENTIALS["MEDIA_S3_SECRET_ACCESS_KEY"],
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    client.bucket = bucket
    yield client


@pytest.fixture(autouse=True)
def _fresh_platform_cache() -> Iterator[None]:
    """Each test starts with no platform kept by the webhook (the test database's rows are new each time) and no rate
    limit window held by this process."""
    from webhooks.ratelimit import rate_limit_forget
    from webhooks.selectors import platform_for_webhook_forget

    platform_for_webhook_forget()
    rate_limit_forget()
    yield
    platform_for_webhook_forget()
    rate_limit_forget()
