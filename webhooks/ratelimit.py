"""Per-platform fixed-window rate limit on signed webhook requests, counted in Django's default cache.

The settings make that cache one every web process shares (CACHE_URL, else a Redis broker, else a file-based cache
on the embedded defaults), so two gunicorn workers do not each allow the full limit.
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
KEY_TIMEOUT_SECONDS = WINDOW_SECONDS + 5


def retry_after_if_limited(*, platform_id: int, limit: int) -> int | None:
    """Count one request; return seconds until the window resets if it is over `limit`, else None.

    Fails open: while the cache is unreachable (Redis restarting) requests are let through, so the webhook keeps
    answering 202 like it does when the broker is down.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"ai-moderation:webhook-rate:{platform_id}:{window}"
    try:
        count = _count_in_redis(key) if isinstance(caches["default"], RedisCache) else _count_in_cache(key)
    except Exception as exc:  # each cache backend raises its own connection errors
        logger.warning("webhook rate limit not enforced: cache unreachable (%s: %s)", type(exc).__name__, exc)
        return None
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)


def _count_in_redis(key: str) -> int:
    # One round trip on a client kept for the process: Django's cache API would take two (add, incr) and build a new
    # Redis client object for each, about a tenth of the webhook's CPU.
    full_key = caches["default"].make_and_validate_key(key)
    pipeline = _redis_client().pipeline(transaction=False)
    pipeline.set(full_key, 0, ex=KEY_TIMEOUT_SECONDS, nx=True)
    pipeline.incr(full_key)
    _, count = pipeline.execute()
    return int(count)


@functools.cache
def _redis_client() -> redis.Redis:
    """A client on the default cache's Redis server (the first, the writer, where several are listed)."""
    config = settings.CACHES["default"]
    location = config["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
    # The rest of OPTIONS are connection settings (timeouts); these three are Django's own.
    django_only = ("parser_class", "pool_class", "serializer")
    options = {k: v for k, v in config.get("OPTIONS", {}).items() if k not in django_only}
    return redis.Redis.from_url(url, **options)


def _count_in_cache(key: str) -> int:
    cache = caches["default"]
    cache.add(key, 0, timeout=KEY_TIMEOUT_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr: start the window again
        cache.set(key, 1, timeout=KEY_TIMEOUT_SECONDS)
        return 1
