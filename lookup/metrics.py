"""`GET /metrics` (Prometheus). Pipeline state is read from every stage's tables at scrape time, so one scrape of any
web process sees every worker's work; the webhook's request counters (`moderation.metrics`) are per web process."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from callbacks.models import CallbackDelivery, DeliveryStatus
from moderation.models import Upload, UploadStatus
from scanning.models import Scan

PENDING = (UploadStatus.RECEIVED, UploadStatus.QUEUED, UploadStatus.FETCHED)


class PipelineCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        uploads = GaugeMetricFamily("moderation_uploads", "Uploads by status", labels=["status"])
        counts = dict(Upload.objects.values_list("status").annotate(n=Count("id")))
        for status in UploadStatus.values:
            uploads.add_metric([status], counts.get(status, 0))
        yield uploads
        yield GaugeMetricFamily(
            "moderation_queue_depth", "Uploads not yet scanned", value=sum(counts.get(s, 0) for s in PENDING)
        )
        hour = Scan.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1), error="")
        stats = hour.aggregate(
            n=Count("id"), escalated=Count("id", filter=Q(escalated=True)), latency=Avg("latency_ms")
        )
        yield GaugeMetricFamily("moderation_scans_last_hour", "Scored scans in the last hour", value=stats["n"])
        yield GaugeMetricFamily(
            "moderation_escalation_rate_last_hour",
            "Share of last hour's scans that the ViT decided",
            value=stats["escalated"] / stats["n"] if stats["n"] else 0.0,
        )
        yield GaugeMetricFamily(
            "moderation_scan_latency_ms_last_hour",
            "Mean per-image scan latency, last hour",
            value=stats["latency"] or 0.0,
        )
        deliveries = GaugeMetricFamily(
            "moderation_callback_deliveries", "Callback deliveries by status", labels=["status"]
        )
        delivery_counts = dict(CallbackDelivery.objects.values_list("status").annotate(n=Count("id")))
        for status in DeliveryStatus.values:
            deliveries.add_metric([status], delivery_counts.get(status, 0))
        yield deliveries


_collector_registered = False


CLOSED_MESSAGE = (
    "/metrics is closed: set METRICS_TOKEN and scrape with 'Authorization: Bearer <token>', "
    "or set METRICS_PUBLIC=true to open it to anyone who can reach it.\n"
)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`. Closed by default (403): with METRICS_TOKEN set, scrapers send `Authorization: Bearer <token>`;
    METRICS_PUBLIC=true opens it to anyone (then a token, if also set, is still required)."""
    global _collector_registered
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        # As bytes: compare_digest refuses str with non-ASCII characters, which a client may send.
        sent = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            return HttpResponse("missing or wrong bearer token\n", status=401, content_type="text/plain")
    elif not getattr(settings, "METRICS_PUBLIC", False):
        return HttpResponse(CLOSED_MESSAGE, status=403, content_type="text/plain")
    if not _collector_registered:
        REGISTRY.register(PipelineCollector())
        _collector_registered = True
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
