"""Submission to the DSA Transparency Database, against a local server that validates like the real one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import StatementOfReasons, StatementSubmission, SubmissionRequest
from compliance.services import statements_submit
from tests.compliance.conftest import labelled_upload

pytestmark = [pytest.mark.compliance, pytest.mark.django_db]


def _statuses() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in StatementSubmission.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_submission_is_off_unless_the_platform_turns_it_on(platform, transparency_db):
    labelled_upload(platform)
    assert not StatementSubmission.objects.exists()
    assert statements_submit(platform=platform.platform) == {
        "submitted": 0,
        "duplicate": 0,
        "dead": 0,
        "retry_later": 0,
    }
    assert transparency_db.requests == []


def test_statements_go_in_batches_of_at_most_100(platform, submitting, transparency_db):
    for index in range(230):
        labelled_upload(platform, f"batch-{index}")
    counts = statements_submit(platform=platform.platform)
    assert counts["submitted"] == 230
    assert [len(request["puids"]) for request in transparency_db.requests] == [100, 100, 30]
    assert len(transparency_db.stored) == 230
    submission = StatementSubmission.objects.select_related("statement").first()
    assert submission.remote_uuid == transparency_db.stored[submission.statement.puid]["uuid"]
    assert SubmissionRequest.objects.count() == 3
    assert statements_submit(platform=platform.platform)["submitted"] == 0, "nothing is sent twice"


def test_a_run_that_overlaps_a_slow_one_sends_none_of_its_statements(
    platform, submitting, transparency_db, monkeypatch
):
    """Beat starts a run a minute; one slowed by the database's answers must not be joined by the next on the same
    statements (sent twice, and the second answer, "already there", written over the first's remote uuid)."""
    from compliance import services

    for index in range(3):
        labelled_upload(platform, f"slow-{index}")
    send, started, overlapping = services.transparency_db.submit_batch, [], []

    def slow_send(*args, **kwargs):
        if not started:  # the next run starts while this request is in flight
            started.append(True)
            overlapping.append(statements_submit(platform=platform.platform))
        return send(*args, **kwargs)

    monkeypatch.setattr(services.transparency_db, "submit_batch", slow_send)
    assert statements_submit(platform=platform.platform)["submitted"] == 3
    assert overlapping == [{"submitted": 0, "duplicate": 0, "dead": 0, "retry_later": 0}]
    assert len(transparency_db.requests) == 1
    assert all(StatementSubmission.objects.values_list("remote_uuid", flat=True))


def test_a_duplicate_puid_is_settled_without_sending_it_again(platform, submitting, transparency_db):
    uploads = [labelled_upload(platform, f"dup-{index}") for index in range(5)]
    already = StatementOfReasons.objects.get(upload=uploads[2])
    transparency_db.stored[already.puid] = {"uuid": "from-an-earlier-attempt"}  # that attempt timed out, yet landed
    counts = statements_submit(platform=platform.platform)
    assert counts == {"submitted": 4, "duplicate": 1, "dead": 0, "retry_later": 0}
    assert [request["status"] for request in transparency_db.requests] == [422, 201]
    assert already.puid not in transparency_db.requests[1]["puids"], "the duplicate is not resubmitted"
    assert StatementSubmission.objects.get(statement=already).status == "duplicate"
    assert "already there" in SubmissionRequest.objects.order_by("sent_at").first().outcome


def test_a_server_error_is_retried_later_with_backoff(platform, submitting, transparency_db):
    for index in range(3):
        labelled_upload(platform, f"flaky-{index}")
    transparency_db.fail_next = [503]
    now = timezone.now()
    assert statements_submit(platform=platform.platform, now=now)["retry_later"] == 3
    pending = StatementSubmission.objects.get(statement__upload__external_id="flaky-0")
    assert pending.status == "pending" and pending.attempts == 1 and "503" in pending.last_error
    assert pending.next_attempt_at == now + timedelta(seconds=60)
    assert statements_submit(platform=platform.platform, now=now + timedelta(seconds=30))["submitted"] == 0, "not due"
    assert statements_submit(platform=platform.platform, now=now + timedelta(seconds=61))["submitted"] == 3
    assert _statuses() == {"submitted": 3}


def test_a_refused_token_waits_for_an_operator_without_losing_statements(platform, submitting, transparency_db):
    labelled_upload(platform)
    submitting.transparency_db_token = "X|revoked"
    submitting.save()
    assert statements_submit(platform=platform.platform)["retry_later"] == 1
    assert "401" in StatementSubmission.objects.get().last_error


def test_an_invalid_statement_is_dead_lettered_with_the_reason_and_the_rest_go(platform, submitting, transparency_db):
    uploads = [labelled_upload(platform, f"bad-{index}") for index in range(4)]
    broken = StatementOfReasons.objects.get(upload=uploads[1])
    # A statement the database refuses (say, a vocabulary it no longer accepts), bypassing the model's own check.
    StatementOfReasons.objects.filter(pk=broken.pk).update(
        fields={**broken.fields, "automated_decision": "AUTOMATED_DECISION_SOMETIMES"}
    )
    counts = statements_submit(platform=platform.platform)
    assert counts == {"submitted": 3, "duplicate": 0, "dead": 1, "retry_later": 0}
    dead = StatementSubmission.objects.get(statement=broken)
    assert dead.status == "dead" and "automated_decision" in dead.last_error
    assert broken.puid not in transparency_db.stored and len(transparency_db.stored) == 3
    assert statements_submit(platform=platform.platform)["dead"] == 0, "a dead letter is never retried"


def test_the_periodic_task_submits_for_platforms_that_turned_it_on(
    platform, other_platform, submitting, transparency_db
):
    from compliance.tasks import statements_submit_due

    mine = labelled_upload(platform)
    labelled_upload(other_platform)  # submission off there: stays out of the database
    statements_submit_due()
    assert list(transparency_db.stored) == [StatementOfReasons.objects.get(upload=mine).puid]
