"""Seed N uploads and time the console's pages through the full Django stack, printed as one JSON object.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python manage.py bench_console --uploads 100000

Seeds into a platform of its own (`bench-console`) and deletes it afterwards unless --keep. Timings are wall-clock
per request (URL resolution, middleware, queries, template rendering), median and worst of --repeat runs.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from tqdm import tqdm

from moderation.models import AuditEvent, Platform, Upload, UploadStatus, VerdictLabel
from moderation.services import COMMAND_LINE, platform_create
from reviews.models import ReviewDecision
from scanning.policy import review_priority

SLUG = "bench-console"
BATCH = 5000


@contextmanager
def _explicit_created_at() -> Any:
    """Let the seed set `created_at` (auto_now_add would stamp every row with now)."""
    field = Upload._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


class Command(BaseCommand):
    help = "Seed uploads and time the console's queue, item, stats and audit pages (JSON)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--uploads", type=int, default=100_000)
        parser.add_argument("--repeat", type=int, default=15)
        parser.add_argument("--keep", action="store_true", help="leave the seeded platform in the database")

    def handle(self, *args: Any, uploads: int, repeat: int, keep: bool, **options: Any) -> None:
        Platform.objects.filter(slug=SLUG).exists() and self._delete()
        platform = platform_create(slug=SLUG, name="console benchmark", acting_user=COMMAND_LINE).platform
        lead = get_user_model().objects.create_user(f"{SLUG}-lead", password=uuid.uuid4().hex)
        lead.groups.add(Group.objects.get(name="lead"))
        try:
            seed_seconds = self._seed(platform, lead, uploads)
            with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum would have
                if connection.vendor == "postgresql":
                    cursor.execute("ANALYZE moderation_upload")
            result = {
                "database": connection.vendor,
                "uploads": Upload.objects.count(),
                "needs_review": Upload.objects.filter(status=UploadStatus.NEEDS_REVIEW).count(),
                "seed_seconds": round(seed_seconds, 1),
                "pages_ms": self._time_pages(platform, lead, repeat),
                "target_ms": 300,
            }
            result["all_under_target"] = all(page["p50"] < 300 for page in result["pages_ms"].values())
            self.stdout.write(json.dumps(result, indent=2))
        finally:
            if not keep:
                self._delete()

    def _seed(self, platform: Platform, lead: Any, count: int) -> float:
        rng = random.Random(0)
        now = timezone.now()
        started = time.perf_counter()
        statuses = [UploadStatus.NEEDS_REVIEW] * 3 + [UploadStatus.TAGGED] * 6 + [UploadStatus.REVIEWED]
        with _explicit_created_at(), tqdm(total=count, desc="seeding uploads", unit="upload") as progress:
            for start in range(0, count, BATCH):
                rows = []
                for index in range(start, min(count, start + BATCH)):
                    status = rng.choice(statuses)
                    score = rng.random()
                    escalated = 0.33 < score < 0.77
                    verdict = (
                        VerdictLabel.NEEDS_REVIEW
                        if status == UploadStatus.NEEDS_REVIEW
                        else (VerdictLabel.AI_GENERATED if score >= 0.5 else VerdictLabel.LIKELY_REAL)
                    )
                    created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
                    rows.append(
                        Upload(
                            platform=platform,
                            external_id=f"bench-{index}",
                            webhook_id=f"msg_bench_{index}",
                            source_url="https://images.example/bench.jpg",
                            status=status,
                            status_history=[{"status": status, "at": created.isoformat()}],
                            scan_verdict=verdict,
                            scan_score=score,
                            scan_escalated=escalated,
                            scan_model_version="bench@1",
                            review_priority=review_priority(
                                score=score, threshold=0.5, escalated=escalated, platform_flagged=rng.random() < 0.01
                            ),
                            created_at=created,
                        )
                    )
                Upload.objects.bulk_create(rows)
                reviewed = [row for row in rows if row.status == UploadStatus.REVIEWED]
                ReviewDecision.objects.bulk_create(
                    ReviewDecision(upload=row, reviewer=lead, label=rng.choice(["ai-generated", "real"]))
                    for row in reviewed
                )
                AuditEvent.objects.bulk_create(
                    AuditEvent(
                        actor=lead, platform=platform, action="upload.reviewed", object_type="upload",
                        object_id=str(row.pk), data={"label": "real"},
                    )
                    for row in reviewed
                )  # fmt: skip
                progress.update(len(rows))
        return time.perf_counter() - started

    def _time_pages(self, platform: Platform, lead: Any, repeat: int) -> dict[str, dict[str, float]]:
        client = Client()
        client.force_login(lead)
        middle = Upload.objects.filter(platform=platform, status=UploadStatus.NEEDS_REVIEW).order_by(
            "-review_priority", "created_at", "id"
        )[Upload.objects.filter(status=UploadStatus.NEEDS_REVIEW).count() // 2]
        pages = {
            "queue": "/console/",
            "queue_deep_page": f"/console/?after={middle.pk}",
            "queue_filtered": "/console/?status=all&verdict=ai-generated&score_min=0.6&score_max=0.9&escalated=true",
            "item": f"/console/uploads/{middle.pk}/",
            "stats": "/console/stats/",
            "audit": "/console/audit/",
        }
        timings = {}
        with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
            for name, url in pages.items():
                samples = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = client.get(url)
                    samples.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"{url} answered {response.status_code}")
                timings[name] = {"p50": round(statistics.median(samples), 1), "max": round(max(samples), 1)}
        return timings

    def _delete(self) -> None:
        platform = Platform.objects.get(slug=SLUG)
        AuditEvent.objects.filter(platform=platform).delete()
        Upload.objects.filter(platform=platform).delete()
        get_user_model().objects.filter(username=f"{SLUG}-lead").delete()
        platform.delete()
