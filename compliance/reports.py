"""Transparency report (DSA Art. 15/24) for one platform and period, computed from the statements of reasons and the
appeals: decisions by type and ground, automated vs human, time to decision, appeals received/decided/reversed."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any

import numpy as np
from django.db.models import Count, F, QuerySet

from moderation.models import Platform

from .models import Appeal, AppealStatus, StatementOfReasons

VISIBILITY_NAMES = {
    "DECISION_VISIBILITY_CONTENT_LABELLED": "labelled",
    "DECISION_VISIBILITY_CONTENT_DEMOTED": "demoted",
    "DECISION_VISIBILITY_CONTENT_REMOVED": "removed",
}
AUTOMATION_NAMES = {
    "AUTOMATED_DECISION_FULLY": "fully automated",
    "AUTOMATED_DECISION_PARTIALLY": "partially automated",
    "AUTOMATED_DECISION_NOT_AUTOMATED": "not automated",
}


def _median_hours(pairs: Iterable[tuple[datetime, datetime]]) -> float | None:
    """The median of (end - start) over `pairs` of timestamps, in hours; only the seconds are held, 8 bytes each."""
    seconds = np.fromiter(((end - start).total_seconds() for start, end in pairs), dtype=np.float64)
    return round(float(np.median(seconds)) / 3600, 2) if seconds.size else None


def _counts(rows: QuerySet[Any], field: str, names: dict[str, str] | None = None) -> dict[str, int]:
    """How many rows have each value of `field` (shown as `names` gives it), counted by the database."""
    grouped = rows.order_by().values_list(field).annotate(count=Count("pk"))
    counts = Counter({(names or {}).get(value, value): count for value, count in grouped})
    return dict(sorted(counts.items()))


def transparency_report(*, platform: Platform, start: datetime, end: datetime) -> dict[str, Any]:
    """Counts over decisions taken and appeals received or decided in [start, end). Counted by the database, and the
    durations behind the medians streamed: a busy platform's month is hundreds of thousands of statements."""
    statements = StatementOfReasons.objects.filter(platform=platform, decided_at__gte=start, decided_at__lt=end)
    restricting = statements.filter(restricts=True)
    lifted = statements.filter(restricts=False)
    received = Appeal.objects.filter(platform=platform, received_at__gte=start, received_at__lt=end)
    decided = Appeal.objects.filter(platform=platform, decided_at__gte=start, decided_at__lt=end)
    upload_to_decision = restricting.order_by().values_list("upload__created_at", "decided_at")
    received_to_decided = decided.order_by().values_list("received_at", "decided_at")
    return {
        "platform": platform.slug,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "restrictions": {
            "total": restricting.count(),
            "by_type": _counts(restricting, "decision_visibility", VISIBILITY_NAMES),
            "by_ground": _counts(restricting, "reason_code"),
            "by_kind": _counts(restricting, "kind"),
            "by_automation": _counts(restricting, "automated_decision", AUTOMATION_NAMES),
            "automated_detection": restricting.filter(automated_detection=True).count(),
            "median_hours_upload_to_decision": _median_hours(upload_to_decision.iterator(chunk_size=10_000)),
        },
        "restrictions_lifted": {
            "total": lifted.count(),
            "by_kind": _counts(lifted, "kind"),
        },
        "appeals": {
            "received": received.count(),
            "decided": decided.count(),
            "upheld": decided.filter(status=AppealStatus.UPHELD).count(),
            "reversed": decided.filter(status=AppealStatus.REVERSED).count(),
            "open_at_end": Appeal.objects.filter(platform=platform, received_at__lt=end)
            .exclude(decided_at__lt=end)
            .count(),
            "decided_after_deadline": decided.filter(decided_at__gt=F("due_at")).count(),
            "median_hours_to_decide": _median_hours(received_to_decided.iterator(chunk_size=10_000)),
        },
    }


def report_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report flattened to (metric, value) rows for CSV."""
    rows: list[tuple[str, Any]] = [("platform", report["platform"])]
    rows += [(f"period.{key}", value) for key, value in report["period"].items()]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        else:
            rows.append((prefix, value))

    for section in ("restrictions", "restrictions_lifted", "appeals"):
        walk(section, report[section])
    return rows


def report_write_csv(report: dict[str, Any], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(["metric", "value"])
    writer.writerows(report_rows(report))
