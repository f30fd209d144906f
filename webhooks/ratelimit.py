"""Per-platform fixed-window rate limit on signed webhook requests, counted in Django's default cache.

The settings make that cache one every web process shares (CACHE_URL, else a Redis broker, else a file-based cache
on the embedded defaults), so two gunicorn workers do not each allow the full limit.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def retry_after_if_limited(*, platform_id: int, limit: int) -> int | None:
    """Count one request; return seconds until the window resets if it is over `limit`, else None.

    Fails open: while the cache is unreachable (Redis restarting) requests are let through, so the webhook keeps
    answering 202 like it does when the broker is down.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"ai-moderation:webhook-rate:{platform_id}:{window}"
    try:
        cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr: start the window again
            cache.set(key, 1, timeout=WINDOW_SECONDS + 5)
            count = 1
    except Exception as exc:  # each cache backend raises its own connection errors
        logger.warning("webhook rate limit not enforced: cache unreachable (%s: %s)", type(exc).__name__, exc)
        return None
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
