"""The upload state machine: every move is in the table, recorded with its reason and actor, and nothing else moves."""

from __future__ import annotations

from unittest import mock

import pytest

from fetching.tasks import upload_publish
from moderation.models import Upload, UploadStatus
from moderation.services import upload_fail
from moderation.services.transitions import ALLOWED_TRANSITIONS, IllegalTransition, upload_transition
from tests.conftest import TEST_ACTOR, scanned_upload

S = UploadStatus


def test_the_table_names_every_state_and_a_failed_upload_never_moves_again():
    assert set(ALLOWED_TRANSITIONS) == {None, *S.values}
    assert ALLOWED_TRANSITIONS[S.FAILED] == frozenset()
    assert ALLOWED_TRANSITIONS[S.REVIEWED] == {S.NEEDS_REVIEW}, "only a user's appeal reopens a decided upload"
    for targets in ALLOWED_TRANSITIONS.values():
        assert targets <= set(S.values)


def test_a_pipeline_run_records_why_each_state_was_entered(coin_model, platform):
    upload = scanned_upload(platform, "history-1")
    steps = [(entry["status"], entry["reason"], entry["actor"]) for entry in upload.status_history]
    assert [status for status, _, _ in steps] == ["received", "queued", "fetched", "scanned", upload.status]
    assert all(reason for _, reason, _ in steps)
    # Each stage names itself: the webhook's intake received and queued it, the fetch and detect stages moved it on.
    actors = [actor for _, _, actor in steps]
    assert actors == ["system:intake", "system:intake", "system:fetching", "system:scanning", "system:scanning"]
    assert steps[3][1] == f"scored by {upload.scan_model_version}"


@pytest.mark.parametrize(
    ("start", "to"),
    [(S.REVIEWED, S.TAGGED), (S.FAILED, S.QUEUED), (S.TAGGED, S.RECEIVED), (S.NEEDS_REVIEW, S.TAGGED)],
)
def test_a_move_outside_the_table_is_refused_and_changes_nothing(start, to):
    upload = Upload(status=start, status_history=[{"status": start, "at": "2026-12-01T00:00:00+00:00"}])
    with pytest.raises(IllegalTransition) as refused:
        upload_transition(upload=upload, to=to, reason="test", acting_user=TEST_ACTOR)
    assert refused.value.extra == {"from": start, "to": to}
    assert upload.status == start and len(upload.status_history) == 1


def test_a_late_failure_does_not_undo_a_verdict(coin_model, platform):
    upload = scanned_upload(platform, "late-failure-1")
    verdict_status = upload.status
    upload_fail(upload=upload, reason="fetch failed after retries: timeout", acting_user=TEST_ACTOR)
    upload.refresh_from_db()
    assert upload.status == verdict_status and upload.failure_reason == ""


def test_a_refused_publish_goes_back_to_received_with_the_reason(platform, django_capture_on_commit_callbacks):
    from webhooks.services import upload_create

    with django_capture_on_commit_callbacks(execute=False):
        upload, _ = upload_create(
            platform=platform.platform, webhook_id="msg_refused", external_id="refused-1", data_base64="aGVsbG8="
        )
    with mock.patch("fetching.tasks.upload_fetch.delay", side_effect=ConnectionError("broker down")):
        with pytest.raises(ConnectionError):
            upload_publish(upload=upload, acting_user=TEST_ACTOR)
    upload.refresh_from_db()
    assert upload.status == S.RECEIVED
    assert [entry["status"] for entry in upload.status_history] == ["received", "queued", "received"]
    assert "broker down" in upload.status_history[-1]["reason"]


def test_every_action_names_its_actor(platform):
    from moderation.models import AuditEvent
    from moderation.services import audit_record

    with pytest.raises(TypeError, match="needs an actor"):
        audit_record(actor=None, platform=platform.platform, action="platform.created", obj=platform.platform)
    event = AuditEvent.objects.get(action="platform.created", platform=platform.platform)
    assert event.actor is None and event.system_actor == "tests", "the fixture's platform was created by the tests"


def test_two_copies_of_one_upload_cannot_both_move_it_out_of_a_state(platform):
    upload = _stored_upload(platform, S.RECEIVED)  # e.g. one the broker refused, picked up by two sweeps at once
    first, second = Upload.objects.get(pk=upload.pk), Upload.objects.get(pk=upload.pk)
    upload_transition(upload=first, to=S.QUEUED, reason="first publisher", acting_user=TEST_ACTOR)
    with pytest.raises(IllegalTransition) as lost:
        upload_transition(upload=second, to=S.QUEUED, reason="second publisher", acting_user=TEST_ACTOR)
    assert lost.value.extra == {"from": S.RECEIVED, "to": S.QUEUED, "now": S.QUEUED}
    upload.refresh_from_db()
    assert upload.status == S.QUEUED, "written by the transition itself, not by a later save"
    assert [e["reason"] for e in upload.status_history] == ["set up", "first publisher"]


ALLOWED_MOVES = [(start, to) for start, targets in ALLOWED_TRANSITIONS.items() if start for to in sorted(targets)]
REFUSED_MOVES = [(start, to) for start in S.values for to in S.values if to not in ALLOWED_TRANSITIONS[start]]


def _stored_upload(platform, status: str) -> Upload:
    return Upload.objects.create(
        platform=platform.platform,
        external_id=f"state-{status}",
        webhook_id=f"msg_state_{status}",
        source_url="https://images.example.com/a.jpg",
        status=status,
        status_history=[{"status": status, "at": "2026-12-01T00:00:00+00:00", "reason": "set up", "actor": "tests"}],
        failure_reason="set up" if status == S.FAILED else "",
    )


@pytest.mark.parametrize(("start", "to"), ALLOWED_MOVES)
def test_every_allowed_move_is_written_with_its_reason_and_actor(platform, start, to):
    upload = _stored_upload(platform, start)
    fields = {"failure_reason": "it broke"} if to == S.FAILED else None
    upload_transition(upload=upload, to=to, reason=f"{start} to {to}", acting_user=TEST_ACTOR, fields=fields)
    stored = Upload.objects.get(pk=upload.pk)
    assert stored.status == to and stored.status_history[-1]["reason"] == f"{start} to {to}"
    assert stored.status_history[-1]["actor"] == "system:tests" and len(stored.status_history) == 2


@pytest.mark.parametrize(("start", "to"), REFUSED_MOVES)
def test_every_other_move_is_refused_and_the_row_stays(platform, start, to):
    upload = _stored_upload(platform, start)
    with pytest.raises(IllegalTransition, match=f"cannot move from {start} to {to}"):
        upload_transition(upload=upload, to=to, reason="not allowed", acting_user=TEST_ACTOR)
    stored = Upload.objects.get(pk=upload.pk)
    assert stored.status == start and len(stored.status_history) == 1


def test_several_steps_are_checked_each_recorded_and_written_in_one_statement(platform):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from moderation.services import upload_transitions

    upload = _stored_upload(platform, S.FETCHED)
    with CaptureQueriesContext(connection) as queries:
        upload_transitions(
            upload=upload,
            steps=[(S.SCANNED, "scored"), (S.TAGGED, "auto-tag real")],
            acting_user=TEST_ACTOR,
            fields={"review_priority": 7},
        )
    assert [query["sql"].split()[0] for query in queries] == ["UPDATE"]
    stored = Upload.objects.get(pk=upload.pk)
    assert (stored.status, stored.review_priority) == (S.TAGGED, 7)
    assert [(e["status"], e["reason"]) for e in stored.status_history[1:]] == [
        (S.SCANNED, "scored"),
        (S.TAGGED, "auto-tag real"),
    ]


def test_a_refused_later_step_refuses_them_all_and_names_its_own_start(platform):
    from moderation.services import upload_transitions

    upload = _stored_upload(platform, S.FETCHED)
    with pytest.raises(IllegalTransition, match="cannot move from scanned to reviewed") as refused:
        upload_transitions(
            upload=upload, steps=[(S.SCANNED, "scored"), (S.REVIEWED, "skipped review")], acting_user=TEST_ACTOR
        )
    assert refused.value.extra == {"from": S.SCANNED, "to": S.REVIEWED}
    stored = Upload.objects.get(pk=upload.pk)
    assert stored.status == S.FETCHED and len(stored.status_history) == 1 and upload.status == S.FETCHED
