"""The transparency report page and its downloads in the console (leads)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from compliance.selectors import statements_export_rows
from reviews.services import console_user_set
from tests.compliance.test_report import at, november  # noqa: F401 (the seeded month)
from tests.conftest import TEST_ACTOR

pytestmark = [pytest.mark.compliance, pytest.mark.django_db]


def test_a_lead_reads_the_report_with_charts_and_downloads_it(client, november):  # noqa: F811
    lead, _ = console_user_set(username="leo", role="lead", platforms=[], acting_user=TEST_ACTOR)
    client.force_login(lead)
    query = "platform=acme&from=2026-11-01&to=2026-12-01"
    page = client.get(f"/console/transparency/?{query}").content.decode()
    assert "Restrictions by type" in page and "<svg" in page and "restricting decisions" in page
    data = client.get(f"/console/transparency/?{query}&format=json").json()
    assert data["restrictions"]["total"] == 6 and data["appeals"]["reversed"] == 1
    rows = dict(csv.reader(io.StringIO(client.get(f"/console/transparency/?{query}&format=csv").content.decode())))
    assert rows["appeals.received"] == "3"
    exported = client.get(f"/console/statements/?{query}&format=json")
    assert exported.streaming and exported["Content-Disposition"].endswith('.json"')
    statements = json.loads(b"".join(exported.streaming_content))
    assert len(statements) == 8, "every version decided in November, restricting or lifting"
    exported = client.get(f"/console/statements/?{query}&format=csv")
    table = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(table) == 8 and [row["puid"] for row in table] == [row["puid"] for row in statements]


def test_the_report_and_the_export_never_load_the_statements_whole(client, november):  # noqa: F811
    """A busy platform's month is hundreds of thousands of statements: the report counts in the database and the
    export streams, neither reading an upload's row beyond its external id."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from compliance.reports import transparency_report

    with CaptureQueriesContext(connection) as queries:
        transparency_report(platform=november.platform, start=at(1), end=at(1, month=12))
    statement_reads = [q["sql"] for q in queries if 'FROM "compliance_statementofreasons"' in q["sql"]]
    assert statement_reads and not [sql for sql in statement_reads if '."fields"' in sql or '."explanation"' in sql]
    assert not [q["sql"] for q in queries if '"moderation_upload"."evidence"' in q["sql"]]
    with CaptureQueriesContext(connection) as queries:
        rows = list(statements_export_rows(platform=november.platform))
    assert len(rows) == 10 and not [q["sql"] for q in queries if '"moderation_upload"."evidence"' in q["sql"]]


def test_moderators_cannot_read_the_report(client, platform):
    moderator, _ = console_user_set(
        username="mia", role="moderator", platforms=[platform.platform], acting_user=TEST_ACTOR
    )
    client.force_login(moderator)
    assert client.get("/console/transparency/").status_code == 403
