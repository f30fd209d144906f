"""The webhook's Prometheus counters (per web process). `lookup.metrics` serves them at `GET /metrics` with the
pipeline's state."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

WEBHOOK_REQUESTS = Counter("moderation_webhook_requests", "Upload webhook requests by HTTP status", ["status"])


WEBHOOK_SECONDS = Histogram(
    "moderation_webhook_seconds", "Upload webhook handling time", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
)


class observe_webhook:
    """Times one webhook request and counts its status."""

    def __enter__(self) -> observe_webhook:
        self.started = time.perf_counter()
        self.status = 500
        return self

    def __exit__(self, *exc: object) -> None:
        WEBHOOK_SECONDS.observe(time.perf_counter() - self.started)
        WEBHOOK_REQUESTS.labels(status=str(self.status)).inc()
