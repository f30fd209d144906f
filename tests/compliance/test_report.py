"""The transparency report equals a seeded scenario's known counts exactly."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from compliance.models import Appeal, PlatformAction, StatementKind
from compliance.reports import transparency_report
from compliance.services import policy_for, statement_issue
from moderation.models import Upload, UploadStatus

pytestmark = [pytest.mark.compliance, pytest.mark.django_db]


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _upload(platform, name: str, created: datetime, verdict: str = "ai-generated") -> Upload:
    upload = Upload.objects.create(
        platform=platform.platform,
        external_id=name,
        webhook_id=f"msg_{name}",
        sha256="b" * 64,
        status=UploadStatus.TAGGED,
        scan_verdict=verdict,
        scan_score=0.9,
        scan_model_version="cascade@0.3.0",
    )
    Upload.objects.filter(pk=upload.pk).update(created_at=created)
    upload.refresh_from_db()
    return upload


def _issue(upload, kind, decided_at, restricts=True, **extra):
    by = "" if kind == StatementKind.AUTOMATIC else "mia"
    return statement_issue(
        upload=upload, kind=kind, restricts=restricts, decided_at=decided_at, decided_by=by, threshold=0.5, **extra
    )


def _appeal(upload, statement, received, decided=None, status="open", hours=72):
    return Appeal.objects.create(
        upload=upload,
        platform=upload.platform,
        webhook_id=f"msg_appeal_{upload.external_id}",
        appealed_statement=statement,
        received_at=received,
        due_at=received + timedelta(hours=hours),
        status=status,
        decided_at=decided,
        decided_by="noor" if decided else "",
    )


@pytest.fixture
def november(platform):
    """Seven uploads, eight statements and three appeals around November 2026 (the period is [Nov 1, Dec 1))."""
    auto, confirmed = StatementKind.AUTOMATIC, StatementKind.REVIEWER_OVERTURNED
    u1 = _upload(platform, "u1", at(2))
    _issue(u1, auto, at(2, 2))  # 2 h
    u2 = _upload(platform, "u2", at(3))
    _issue(u2, auto, at(3, 1))  # 1 h
    _issue(u2, confirmed, at(4), restricts=False)  # a moderator lifts it
    u3 = _upload(platform, "u3", at(5), verdict="likely-real")
    s3 = _issue(u3, confirmed, at(5, 6), reason_code="misleading-ai-listing")  # 6 h, not detected by us
    _appeal(u3, s3, at(6), decided=at(7), status="reversed")  # 24 h
    _issue(u3, StatementKind.APPEAL_REVERSED, at(7), restricts=False)
    u4 = _upload(platform, "u4", at(10))
    s4 = _issue(u4, auto, at(10, 4))  # 4 h
    _appeal(u4, s4, at(11), decided=at(15), status="upheld")  # 96 h: past the 72 h deadline
    _issue(u4, StatementKind.APPEAL_UPHELD, at(15))  # 120 h after the upload
    policy = policy_for(platform.platform)
    policy.ai_generated_action = PlatformAction.DEMOTE
    policy.save()
    u6 = _upload(platform, "u6", at(20))
    s6 = _issue(u6, auto, at(20, 3))  # 3 h, demoted
    _appeal(u6, s6, at(28))  # still open on Dec 1
    u5 = _upload(platform, "u5", at(30))
    _issue(u5, auto, at(1, 1, month=12))  # decided after the period
    u7 = _upload(platform, "u7", at(30, month=10))
    _issue(u7, auto, at(31, 1, month=10))  # decided before it
    return platform


def test_the_report_counts_a_seeded_month_exactly(november):
    report = transparency_report(platform=november.platform, start=at(1), end=at(1, month=12))
    assert report["restrictions"] == {
        "total": 6,
        "by_type": {"demoted": 1, "labelled": 5},
        "by_ground": {"misleading-ai-listing": 1, "undisclosed-ai": 5},
        "by_kind": {"appeal_upheld": 1, "automatic": 4, "reviewer_overturned": 1},
        "by_automation": {"fully automated": 4, "not automated": 2},
        "automated_detection": 5,
        "median_hours_upload_to_decision": 3.5,  # of 1, 2, 3, 4, 6 and 120 hours
    }
    assert report["restrictions_lifted"] == {
        "total": 2,
        "by_kind": {"appeal_reversed": 1, "reviewer_overturned": 1},
    }
    assert report["appeals"] == {
        "received": 3,
        "decided": 2,
        "upheld": 1,
        "reversed": 1,
        "open_at_end": 1,
        "decided_after_deadline": 1,
        "median_hours_to_decide": 60.0,  # of 24 and 96 hours
    }


def test_the_report_command_prints_json_and_csv(november):
    out = io.StringIO()
    call_command("transparency_report", "acme", "--from", "2026-11-01", "--to", "2026-12-01", stdout=out)
    assert json.loads(out.getvalue())["appeals"]["received"] == 3
    out = io.StringIO()
    call_command(
        "transparency_report", "acme", "--from", "2026-11-01", "--to", "2026-12-01", "--format", "csv", stdout=out
    )
    rows = dict(csv.reader(io.StringIO(out.getvalue())))
    assert rows["restrictions.total"] == "6" and rows["restrictions.by_type.demoted"] == "1"
    assert rows["appeals.median_hours_to_decide"] == "60.0"
