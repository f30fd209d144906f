"""Per-platform fixed-window rate limit on signed webhook requests, counted in Django's default cache.

The settings make that cache one every web process shares (CACHE_URL, else a Redis broker, else a file-based cache
on the embedded defaults), so two gunicorn workers do not each allow the full limit.

Far from the limit a process adds its requests to the shared count in batches (up to SYNC_EVERY requests, or
SYNC_SECONDS, whichever comes first) rather than one round trip each, which was a tenth of the webhook's CPU. Close to
it, it counts every request: a process holds back at most an eighth of what is left of the window's allowance, so the
limit is exact for the last requests before it and a window is never over-admitted by more than that share per process.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
KEY_TIMEOUT_SECONDS = WINDOW_SECONDS + 5
SYNC_EVERY = 16
SYNC_SECONDS = 0.1


@dataclass
class _Window:
    """One platform's current window as this process sees it: the shared count when last read, and what this process
    has let through since without adding it yet."""

    number: int
    shared: int = 0
    held: int = 0
    read_at: float = 0.0


_windows: dict[int, _Window] = {}
_lock = threading.Lock()


def retry_after_if_limited(*, platform_id: int, limit: int) -> int | None:
    """Count one request; return seconds until the window resets if it is over `limit`, else None.

    Fails open: while the cache is unreachable (Redis restarting) requests are let through, so the webhook keeps
    answering 202 like it does when the broker is down.
    """
    now = time.time()
    number = int(now // WINDOW_SECONDS)
    with _lock:
        window = _windows.get(platform_id)
        if window is None or window.number != number:
            window = _windows[platform_id] = _Window(number)
        window.held += 1
        holdable = min(SYNC_EVERY, (limit - window.shared) // 8)
        if window.held <= holdable and now - window.read_at < SYNC_SECONDS:
            return None  # far below the limit: counted here, added to the shared count with the next batch
        held, window.held = window.held, 0
    key = f"ai-moderation:webhook-rate:{platform_id}:{number}"
    try:
        count = _add_in_redis(key, held) if isinstance(caches["default"], RedisCache) else _add_in_cache(key, held)
    except Exception as exc:  # each cache backend raises its own connection errors
        logger.warning("webhook rate limit not enforced: cache unreachable (%s: %s)", type(exc).__name__, exc)
        return None
    with _lock:
        if window.number == number:
            window.shared, window.read_at = count, now
    if count <= limit:
        return None
    return max(1, int((number + 1) * WINDOW_SECONDS - now) + 1)


def _add_in_redis(key: str, requests: int) -> int:
    # One round trip on a client kept for the process: Django's cache API would take two (add, incr) and build a new
    # Redis client object for each.
    full_key = caches["default"].make_and_validate_key(key)
    pipeline = _redis_client().pipeline(transaction=False)
    pipeline.set(full_key, 0, ex=KEY_TIMEOUT_SECONDS, nx=True)
    pipeline.incrby(full_key, requests)
    _, count = pipeline.execute()
    return int(count)


def rate_limit_forget() -> None:
    """Drop this process's view of every window (tests; the shared counts are untouched)."""
    with _lock:
        _windows.clear()


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


def _add_in_cache(key: str, requests: int) -> int:
    cache = caches["default"]
    cache.add(key, 0, timeout=KEY_TIMEOUT_SECONDS)
    try:
        return cache.incr(key, requests)
    except ValueError:  # evicted between add and incr: start the window again
        cache.set(key, requests, timeout=KEY_TIMEOUT_SECONDS)
        return requests
