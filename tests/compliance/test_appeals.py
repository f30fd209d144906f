"""Appeals end to end: a signed `upload.appealed` webhook → the review queue, first in line → the moderator who took
the decision cannot decide it → a second moderator reverses it → tags, hash bank, audit, callback and statement."""

from __future__ import annotations

import json

import pytest

from callbacks.models import CallbackDelivery
from compliance.models import Appeal, StatementOfReasons
from hashbank.models import HashBankEntry
from moderation.models import AuditEvent, UploadStatus
from reviews.services import console_user_set, review_decide
from tests.conftest import TEST_ACTOR, post_webhook, scanned_upload, signed_headers

pytestmark = [pytest.mark.compliance, pytest.mark.django_db]


def _appeal_body(external_id: str, complaint: str = "I took this photo myself.") -> bytes:
    return json.dumps(
        {"type": "upload.appealed", "appeal": {"external_id": external_id, "complaint": complaint}}
    ).encode()


def _moderator(name: str, credentials):
    user, _ = console_user_set(
        username=name, role="moderator", platforms=[credentials.platform], acting_user=TEST_ACTOR
    )
    return user


def test_an_appeal_is_decided_by_a_second_moderator_and_reversal_updates_everything(
    client, coin_model, platform, django_capture_on_commit_callbacks
):
    mia, noor = _moderator("mia", platform), _moderator("noor", platform)
    upload = scanned_upload(platform, "appeal-1")
    scanned_upload(platform, "appeal-2")
    review_decide(upload=upload, reviewer=mia, label="ai-generated")  # restricted by mia; its hashes banked
    assert HashBankEntry.objects.filter(upload=upload).exists()
    platform.platform.callback_url = "https://platform.example/hooks"
    platform.platform.save()

    body = _appeal_body("appeal-1")
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret, msg_id="msg_appeal_1"))
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["status"] == "open" and answer["due_at"]
    appeal = Appeal.objects.get(pk=answer["appeal_id"])
    assert appeal.appealed_statement.decided_by == "mia" and appeal.complaint == "I took this photo myself."
    again = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret, msg_id="msg_appeal_1"))
    assert again.json()["appeal_id"] == appeal.pk and Appeal.objects.count() == 1, "a retried delivery is one appeal"

    upload.refresh_from_db()
    assert upload.status == UploadStatus.NEEDS_REVIEW
    assert upload.status_history[-1]["reason"] == "appealed by the user"
    client.force_login(noor)
    queue = client.get("/console/").content.decode()
    assert queue.index("appeal-1") < queue.index("appeal-2"), "the appeal leads the queue"
    assert "appeal · due" in queue
    assert AuditEvent.objects.filter(action="upload.appealed", object_id=str(upload.pk)).exists()

    client.force_login(mia)
    page = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert "another moderator must decide it (four eyes)" in page and 'id="decision"' not in page
    refused = client.post(f"/console/uploads/{upload.pk}/decide", {"label": "real"})
    assert refused.status_code == 302
    upload.refresh_from_db()
    assert upload.status == UploadStatus.NEEDS_REVIEW, "mia's attempt changed nothing"
    with pytest.raises(Exception, match="four eyes"):
        review_decide(upload=upload, reviewer=mia, label="real")

    client.force_login(noor)
    page = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert "The user writes: “I took this photo myself.”" in page and "Decision under appeal: v1" in page
    with django_capture_on_commit_callbacks(execute=False):
        decided = client.post(f"/console/uploads/{upload.pk}/decide", {"label": "real"})
    assert decided.status_code == 302

    upload.refresh_from_db()
    appeal.refresh_from_db()
    assert upload.status == UploadStatus.REVIEWED
    assert list(upload.tags.values_list("name", flat=True)) == ["real"]
    assert not HashBankEntry.objects.filter(upload=upload).exists(), "its hashes left the bank"
    assert (appeal.status, appeal.decided_by) == ("reversed", "noor")
    statement = appeal.outcome_statement
    assert (statement.version, statement.kind, statement.restricts) == (2, "appeal_reversed", False)
    assert statement.fields["end_date_visibility_restriction"] == statement.decided_at.date().isoformat()
    assert AuditEvent.objects.filter(action="upload.appeal_decided", object_id=str(upload.pk), actor=noor).exists()
    delivery = CallbackDelivery.objects.get(upload=upload, event_type="upload.appeal_decided")
    assert delivery.payload["data"]["appeal"]["status"] == "reversed"
    assert delivery.payload["data"]["statement"]["kind"] == "appeal_reversed"


def test_an_upheld_appeal_keeps_the_restriction_with_a_new_statement(coin_model, platform):
    mia, noor = _moderator("mia", platform), _moderator("noor", platform)
    upload = scanned_upload(platform, "appeal-3")
    review_decide(upload=upload, reviewer=mia, label="ai-generated")
    from compliance.services import appeal_receive
    from moderation.services import INTAKE

    appeal_receive(
        platform=platform.platform, webhook_id="msg_a3", external_id="appeal-3", complaint="", acting_user=INTAKE
    )
    review_decide(upload=upload, reviewer=noor, label="ai-generated")
    latest = StatementOfReasons.objects.filter(upload=upload).order_by("-version").first()
    assert (latest.kind, latest.restricts, latest.decided_by) == ("appeal_upheld", True, "noor")
    assert list(upload.tags.values_list("name", flat=True)) == ["ai-generated"]


def test_an_appeal_needs_a_restriction_and_a_known_upload(client, coin_model, platform):
    scanned_upload(platform, "appeal-4")  # needs review: nothing restricted it
    for external_id, status, code in (("appeal-4", 409, "nothing_to_appeal"), ("nope", 404, "not_found")):
        body = _appeal_body(external_id)
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        assert response.status_code == status and response.json()["error"] == code
    body = json.dumps({"type": "upload.appealed", "appeal": {}}).encode()
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 400 and "appeal.external_id" in json.dumps(response.json())
    assert not Appeal.objects.exists()
