"""Request helpers for the standalone project's security settings."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for login throttling: the connection's, or behind TRUSTED_PROXY_COUNT reverse proxies, the
    address the outermost of them saw (counted from the right of X-Forwarded-For, the part a client cannot forge)."""
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
