"""Outbound: POST a signed event to a platform's callback URL through the same address checks as image fetching."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3.exceptions import HTTPError as Urllib3Error

from . import signatures
from .fetch import FetchRefused, FetchTransient, pool_for, resolve_checked


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None
    latency_ms: float
    error: str = ""
    # The address checks refused the URL (private, loopback, bad scheme …): no retry can succeed.
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_signed(
    url: str, body: bytes, *, secrets: Sequence[str], event_id: str, timeout: float, allow_loopback: bool = False
) -> DeliveryResult:
    """One delivery attempt, signed with each of `secrets`. Never raises for network or HTTP failures: the result says
    what happened."""
    started = time.perf_counter()
    try:
        address = resolve_checked(url, allow_loopback=allow_loopback)
    except FetchRefused as exc:
        return DeliveryResult(None, (time.perf_counter() - started) * 1000, f"refused: {exc}", refused=True)
    except FetchTransient as exc:  # e.g. DNS briefly failing: worth another attempt
        return DeliveryResult(None, (time.perf_counter() - started) * 1000, str(exc))
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": "ai-image-moderation/1",
        **signatures.sign_with_each(body, secrets=secrets, msg_id=event_id),
    }
    pool = pool_for(url, address, timeout)
    try:
        # Only the status matters. The body is never read, let alone decoded: a gzip bomb or a body dripped a byte at a
        # time inside each read's timeout could otherwise exhaust the worker's memory or hold it past its time limit.
        response = pool.urlopen(
            "POST", target, body=body, headers=headers, redirect=False, preload_content=False, decode_content=False
        )
        response.close()
        return DeliveryResult(response.status, (time.perf_counter() - started) * 1000)
    except Urllib3Error as exc:
        return DeliveryResult(None, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
    finally:
        pool.close()
