"""Intake's reads: the platform a webhook names, kept briefly in each web process.

Reading the platform is one of the webhook's two statements (the other writes the upload); most requests come from a
few platforms, so each process keeps the row for WEBHOOK_PLATFORM_CACHE_SECONDS. A secret added by a rotation is
honoured at once (a signature that fails against the kept row is checked again against a fresh read); what waits up to
that long is a retired secret being refused, a changed rate limit, or a deleted platform disappearing.
"""

from __future__ import annotations

import threading
import time

from moderation.conf import app_setting
from moderation.models import Platform
from moderation.selectors import platform_by_slug

_kept: dict[str, tuple[float, Platform]] = {}
_lock = threading.Lock()


def platform_for_webhook(*, slug: str, fresh: bool = False) -> Platform | None:
    """The platform called `slug`, read at most WEBHOOK_PLATFORM_CACHE_SECONDS ago (now, if `fresh`)."""
    lifetime = app_setting("WEBHOOK_PLATFORM_CACHE_SECONDS")
    now = time.monotonic()
    if not fresh and lifetime > 0:
        kept = _kept.get(slug)
        if kept is not None and now - kept[0] < lifetime:
            return kept[1]
    platform = platform_by_slug(slug=slug)
    with _lock:
        if platform is None or lifetime <= 0:
            _kept.pop(slug, None)
        else:
            _kept[slug] = (now, platform)
    return platform


def platform_for_webhook_forget() -> None:
    """Drop every kept platform (tests; a process that must see a change at once)."""
    with _lock:
        _kept.clear()
