"""The transparency report page and its downloads in the console (leads)."""

from __future__ import annotations

import csv
import io

import pytest

from reviews.services import console_user_set
from tests.compliance.test_report import november  # noqa: F401 (the seeded month)
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
    statements = client.get(f"/console/statements/?{query}&format=json").json()
    assert len(statements) == 8, "every version decided in November, restricting or lifting"
    table = list(csv.DictReader(io.StringIO(client.get(f"/console/statements/?{query}&format=csv").content.decode())))
    assert len(table) == 8


def test_moderators_cannot_read_the_report(client, platform):
    moderator, _ = console_user_set(
        username="mia", role="moderator", platforms=[platform.platform], acting_user=TEST_ACTOR
    )
    client.force_login(moderator)
    assert client.get("/console/transparency/").status_code == 403
