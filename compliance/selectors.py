"""Reads: an upload's statements, and statements for export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet

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
) -> Iterator[dict[str, Any]]:
    """The platform's statements in the period, oldest first, as export rows: read in chunks and yielded one at a
    time, so an export of any length holds a chunk in memory (and none of its uploads but their external ids)."""
    statements = (
        StatementOfReasons.objects.filter(platform=platform)
        .select_related("submission")
        .annotate(external_id=F("upload__external_id"))
        .order_by("decided_at", "pk")
    )
    if since is not None:
        statements = statements.filter(decided_at__gte=since)
    if until is not None:
        statements = statements.filter(decided_at__lt=until)
    for statement in statements.iterator(chunk_size=2000):
        submission = getattr(statement, "submission", None)
        yield {
            "puid": statement.puid,
            "upload_id": str(statement.upload_id),
            "external_id": statement.external_id,
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


def statements_json_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Export rows as a JSON array, one row (one line) at a time."""
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + "\n  " + json.dumps(row, ensure_ascii=False)
    yield "\n]\n"


class _Line:
    def write(self, line: str) -> str:
        return line


def statements_csv_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Export rows as CSV lines, `fields` as JSON in its column."""
    writer = csv.DictWriter(_Line(), fieldnames=EXPORT_COLUMNS)
    yield writer.writeheader()
    for row in rows:
        yield writer.writerow({**row, "fields": json.dumps(row["fields"], ensure_ascii=False)})
