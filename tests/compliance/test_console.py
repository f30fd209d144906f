"""The console: a decision carries the chosen policy reason, and the item page shows every statement version."""

from __future__ import annotations

import pytest

from compliance.models import StatementOfReasons
from reviews.services import console_user_set
from tests.conftest import TEST_ACTOR, scanned_upload

pytestmark = [pytest.mark.compliance, pytest.mark.django_db]


def test_a_console_decision_states_the_chosen_reason_and_the_page_shows_it(client, coin_model, platform):
    user, _ = console_user_set(username="mia", role="moderator", platforms=[platform.platform], acting_user=TEST_ACTOR)
    client.force_login(user)
    upload = scanned_upload(platform, "console-1")
    page = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert 'value="misleading-ai-listing"' in page and "none (no restriction was decided)" in page
    response = client.post(
        f"/console/uploads/{upload.pk}/decide", {"label": "ai-generated", "reason_code": "misleading-ai-listing"}
    )
    assert response.status_code == 302
    statement = StatementOfReasons.objects.get(upload=upload)
    assert statement.reason_code == "misleading-ai-listing" and statement.decided_by == "mia"
    page = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert "Moderator overturned the automatic verdict" in page and statement.puid in page
    assert "Transparency Database: not submitted" in page
    refused = client.post(f"/console/uploads/{upload.pk}/decide", {"label": "real", "reason_code": "nonsense"})
    assert refused.status_code == 302 and StatementOfReasons.objects.filter(upload=upload).count() == 1
