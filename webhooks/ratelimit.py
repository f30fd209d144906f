"""Per-platform fixed-window rate limit on signed webhook requests, kept in Django's cache (Redis in production)."""

from __future__ import annotations

import time

from django.core.cache import cache

WINDOW_SECONDS = 60


def retry_after_if_limited(*, platform_id: int, limit: int) -> int | None:
    """Count one request; return seconds until the window resets if it is over `limit`, else None."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"ai-moderation:webhook-rate:{platform_id}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: start the window again
        cache.set(key, 1, timeout=WINDOW_SECONDS + 5)
        count = 1
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
