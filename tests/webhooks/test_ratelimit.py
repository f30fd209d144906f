"""The webhook rate limit is one count for every web process: a file-based cache on the embedded defaults, Redis
where a Redis broker (or CACHE_URL) is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests import settings as test_settings
from tests.conftest import REPO_ROOT
from webhooks import ratelimit

# Every process counts at the same instant (argv[3]), so a minute boundary between them cannot start a new window.
COUNT = """
import json, sys, types
import django
django.setup()
from webhooks import ratelimit
ratelimit.time = types.SimpleNamespace(time=lambda: float(sys.argv[3]))
platform_id, requests = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps([ratelimit.retry_after_if_limited(platform_id=platform_id, limit=5) for _ in range(requests)]))
"""


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("CACHE_URL", "CELERY_BROKER_URL", "DATABASE_URL", "MEDIA_ROOT")
    }
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MODERATION_DATA_DIR": str(tmp_path),
        "DJANGO_DEBUG": "true",
        **extra,
    }


def _cache_setting(tmp_path, **extra: str) -> dict:
    code = "import json; from config import settings; print(json.dumps(settings.CACHES['default']))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(tmp_path, **extra), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _count_in_processes(tmp_path, platform_id: int, per_process: list[int], **extra: str) -> list[list]:
    """Each process counts its requests in turn against the same limit of 5 a minute."""
    results, now = [], time.time()
    for requests in per_process:
        result = subprocess.run(
            [sys.executable, "-c", COUNT, str(platform_id), str(requests), str(now)],
            cwd=REPO_ROOT,
            env=_env(tmp_path, **extra),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        results.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return results


def test_the_cache_is_chosen_from_the_environment(tmp_path):
    embedded = _cache_setting(tmp_path)
    assert embedded["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert embedded["LOCATION"] == str(tmp_path / "cache" / "django")
    redis = _cache_setting(tmp_path, CELERY_BROKER_URL="redis://redis.internal:6379/3")
    assert redis["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert redis["LOCATION"] == "redis://redis.internal:6379/3"
    # Namespaced per deployment (its secret key): the same deployment agrees, another one does not collide.
    assert (
        _cache_setting(tmp_path, CELERY_BROKER_URL="redis://redis.internal:6379/3")["KEY_PREFIX"] == redis["KEY_PREFIX"]
    )
    other = _cache_setting(
        tmp_path / "other", CELERY_BROKER_URL="redis://redis.internal:6379/3", DJANGO_SECRET_KEY="another deployment"
    )
    assert other["KEY_PREFIX"] != redis["KEY_PREFIX"]
    explicit = _cache_setting(tmp_path, CELERY_BROKER_URL="redis://redis.internal:6379/3", CACHE_URL="locmemcache://")
    assert explicit["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_processes_share_one_count_on_the_embedded_defaults(tmp_path):
    first, second = _count_in_processes(tmp_path, 7, [3, 3])
    assert first == [None, None, None]
    assert second[:2] == [None, None] and isinstance(second[2], int) and 1 <= second[2] <= 61


@pytest.mark.services
def test_processes_share_one_count_in_the_redis_broker(tmp_path):
    import uuid

    platform_id = uuid.uuid4().int % 10**9  # the test Redis outlives this run: a fresh key
    first, second = _count_in_processes(tmp_path, platform_id, [4, 2], CELERY_BROKER_URL=test_settings.TEST_BROKER_URL)
    assert first == [None] * 4
    assert second[0] is None and isinstance(second[1], int)


def test_an_unreachable_cache_lets_requests_through(settings, monkeypatch, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    def down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(ratelimit.caches["default"], "add", down)
    assert ratelimit.retry_after_if_limited(platform_id=1, limit=0) is None
    assert "rate limit not enforced" in caplog.text


def test_an_unreachable_redis_lets_requests_through(settings, caplog):
    from tests.conftest import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    ratelimit._redis_client.cache_clear()  # the client is kept per process; this test changes the server
    try:
        assert ratelimit.retry_after_if_limited(platform_id=1, limit=0) is None
    finally:
        ratelimit._redis_client.cache_clear()
    assert "rate limit not enforced" in caplog.text and "ConnectionError" in caplog.text


def test_a_redis_cache_url_that_never_answers_lets_requests_through_in_time(tmp_path, settings, caplog):
    """CACHE_URL (as compose and the Kubernetes manifests set it) used to come without socket timeouts: a Redis that
    accepts connections and never answers (a blackholed failover) hung every webhook, and every web thread."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        settings.CACHES = {
            "default": _cache_setting(tmp_path, CACHE_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        }
        ratelimit._redis_client.cache_clear()
        started = time.monotonic()
        try:
            assert ratelimit.retry_after_if_limited(platform_id=1, limit=0) is None
        finally:
            ratelimit._redis_client.cache_clear()
        assert time.monotonic() - started < 5 and "rate limit not enforced" in caplog.text
    finally:
        silent.close()


@pytest.fixture
def redis_round_trips(settings):
    """This process's rate limit on the test Redis, under a fresh key prefix; yields the list of commands it sends."""
    import uuid

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": test_settings.TEST_BROKER_URL,
            "KEY_PREFIX": f"ratelimit-test-{uuid.uuid4().hex}",
        }
    }
    ratelimit._redis_client.cache_clear()
    client = ratelimit._redis_client()
    sent: list[bytes] = []
    original = client.connection_pool.get_connection

    def counting(*args, **kwargs):
        connection = original(*args, **kwargs)
        if not hasattr(connection, "counted_send"):  # the pool hands out the same connection again
            connection.counted_send = send = connection.send_packed_command

            def send_packed_command(command, *a, **k):
                sent.append(command)
                return send(command, *a, **k)

            connection.send_packed_command = send_packed_command
        return connection

    client.connection_pool.get_connection = counting
    yield sent
    ratelimit._redis_client.cache_clear()


def _shared_count(platform_id: int) -> int:
    from django.core.cache import caches

    key = f"ai-moderation:webhook-rate:{platform_id}:{int(time.time() // ratelimit.WINDOW_SECONDS)}"
    return int(ratelimit._redis_client().get(caches["default"].make_and_validate_key(key)) or 0)


@pytest.mark.services
def test_near_the_limit_every_request_is_counted_in_one_round_trip(redis_round_trips):
    from django.core.cache import caches

    answers = [ratelimit.retry_after_if_limited(platform_id=42, limit=3) for _ in range(5)]
    assert answers[:3] == [None] * 3 and all(isinstance(a, int) for a in answers[3:]), answers
    assert len(redis_round_trips) == 5, "one packed pipeline per request"
    key = caches["default"].make_and_validate_key(f"ai-moderation:webhook-rate:42:{int(time.time() // 60)}")
    assert 0 < ratelimit._redis_client().ttl(key) <= ratelimit.KEY_TIMEOUT_SECONDS, "the window's key expires"


@pytest.mark.services
def test_far_from_the_limit_requests_are_added_in_batches(redis_round_trips, monkeypatch):
    monkeypatch.setattr(ratelimit, "SYNC_SECONDS", 60)  # only the batch size decides here, not the clock
    answers = [ratelimit.retry_after_if_limited(platform_id=43, limit=10**6) for _ in range(64)]
    assert answers == [None] * 64
    # The first request reads the shared count; then one round trip per SYNC_EVERY + 1 requests.
    assert len(redis_round_trips) == 1 + (64 - 1) // (ratelimit.SYNC_EVERY + 1)
    assert 64 - ratelimit.SYNC_EVERY <= _shared_count(43) <= 64, "at most one batch not yet added"


@pytest.mark.services
def test_a_process_holds_back_at_most_an_eighth_of_what_is_left(redis_round_trips, monkeypatch):
    """Two processes, each holding requests back, together still stop at the limit within their held share."""
    monkeypatch.setattr(ratelimit, "SYNC_SECONDS", 60)
    limit, admitted, views = 200, 0, ({}, {})  # each process's own view of the window: its shared and held counts
    for _ in range(400):
        for view in views:
            monkeypatch.setattr(ratelimit, "_windows", view)
            admitted += ratelimit.retry_after_if_limited(platform_id=44, limit=limit) is None
    assert limit <= admitted <= limit + 2 * ratelimit.SYNC_EVERY, admitted
