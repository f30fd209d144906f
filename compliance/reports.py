"""Transparency report (DSA Art. 15/24) for one platform and period, computed from the statements of reasons and the
appeals: decisions by type and ground, automated vs human, time to decision, appeals received/decided/reversed."""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from datetime import datetime
from typing import IO, Any

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


def _median_hours(durations: list[float]) -> float | None:
    return round(statistics.median(durations) / 3600, 2) if durations else None


def transparency_report(*, platform: Platform, start: datetime, end: datetime) -> dict[str, Any]:
    """Counts over decisions taken and appeals received or decided in [start, end)."""
    statements = list(
        StatementOfReasons.objects.filter(platform=platform, decided_at__gte=start, decided_at__lt=end)
        .select_related("upload")
        .order_by("decided_at")
    )
    restricting = [s for s in statements if s.restricts]
    received = Appeal.objects.filter(platform=platform, received_at__gte=start, received_at__lt=end)
    decided = list(Appeal.objects.filter(platform=platform, decided_at__gte=start, decided_at__lt=end))
    return {
        "platform": platform.slug,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "restrictions": {
            "total": len(restricting),
            "by_type": dict(sorted(Counter(VISIBILITY_NAMES[s.decision_visibility] for s in restricting).items())),
            "by_ground": dict(sorted(Counter(s.reason_code for s in restricting).items())),
            "by_kind": dict(sorted(Counter(s.kind for s in restricting).items())),
            "by_automation": dict(sorted(Counter(AUTOMATION_NAMES[s.automated_decision] for s in restricting).items())),
            "automated_detection": sum(s.automated_detection for s in restricting),
            "median_hours_upload_to_decision": _median_hours(
                [(s.decided_at - s.upload.created_at).total_seconds() for s in restricting]
            ),
        },
        "restrictions_lifted": {
            "total": len(statements) - len(restricting),
            "by_kind": dict(sorted(Counter(s.kind for s in statements if not s.restricts).items())),
        },
        "appeals": {
            "received": received.count(),
            "decided": len(decided),
            "upheld": sum(a.status == AppealStatus.UPHELD for a in decided),
            "reversed": sum(a.status == AppealStatus.REVERSED for a in decided),
            "open_at_end": Appeal.objects.filter(platform=platform, received_at__lt=end)
            .exclude(decided_at__lt=end)
            .count(),
            "decided_after_deadline": sum(a.decided_at > a.due_at for a in decided),
            "median_hours_to_decide": _median_hours([(a.decided_at - a.received_at).total_seconds() for a in decided]),
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
