"""Reads: an upload's statements, and statements for export."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import IO, Any

from django.db.models import QuerySet

from moderation.models import Platform, Upload

from .models import StatementOfReasons

# The columns of a CSV export, in order; `fields` (the whole statement as the database takes it) comes last as JSON.
EXPORT_COLUMNS = [
    "puid",
    "upload_id",
    "external_id",
    "version",
    "kind",
    "restricts",
    "reason_code",
    "decision_visibility",
    "automated_detection",
    "automated_decision",
    "decided_by",
    "decided_at",
    "submission_status",
    "explanation",
    "fields",
]


def statements_for_upload(upload: Upload) -> QuerySet[StatementOfReasons]:
    return StatementOfReasons.objects.filter(upload=upload).select_related("submission").order_by("version")


def statement_public(statement: StatementOfReasons) -> dict[str, Any]:
    """A statement as platforms receive it (callbacks, the lookup API, exports)."""
    return {
        "version": statement.version,
        "kind": statement.kind,
        "restricts": statement.restricts,
        "puid": statement.puid,
        "reason_code": statement.reason_code,
        "decided_at": statement.decided_at.isoformat(),
        "explanation": statement.explanation,
        "transparency_db": statement.fields,
    }


def statements_export_rows(
    *, platform: Platform, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    statements = (
        StatementOfReasons.objects.filter(platform=platform)
        .select_related("upload", "submission")
        .order_by("decided_at", "pk")
    )
    if since is not None:
        statements = statements.filter(decided_at__gte=since)
    if until is not None:
        statements = statements.filter(decided_at__lt=until)
    rows = []
    for statement in statements:
        submission = getattr(statement, "submission", None)
        rows.append(
            {
                "puid": statement.puid,
                "upload_id": str(statement.upload_id),
                "external_id": statement.upload.external_id,
                "version": statement.version,
                "kind": statement.kind,
                "restricts": statement.restricts,
                "reason_code": statement.reason_code,
                "decision_visibility": statement.decision_visibility,
                "automated_detection": statement.automated_detection,
                "automated_decision": statement.automated_decision,
                "decided_by": statement.decided_by,
                "decided_at": statement.decided_at.isoformat(),
                "submission_status": submission.status if submission else "",
                "explanation": statement.explanation,
                "fields": statement.fields,
            }
        )
    return rows


def statements_write_csv(rows: list[dict[str, Any]], out: IO[str]) -> None:
    """Export rows as CSV, `fields` as JSON in its column."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "fields": json.dumps(row["fields"], ensure_ascii=False)})
