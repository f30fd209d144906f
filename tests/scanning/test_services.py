"""Recording a detection batch: one locked read and one transaction for the whole batch, every verdict written."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fetching.services import upload_fetch
from moderation.models import Upload, UploadStatus
from scanning.models import Scan
from scanning.services import uploads_scan
from tests.conftest import held_upload, photo_bytes

pytestmark = pytest.mark.django_db


def _fetched(platform, count: int) -> list[Upload]:
    uploads = [held_upload(platform, f"batch-{index}", photo_bytes(index)) for index in range(count)]
    assert all(upload_fetch(upload_id=upload.pk) for upload in uploads)
    return uploads


def test_a_batch_is_recorded_under_one_locked_read(platform, coin_model):
    uploads = _fetched(platform, 4)
    with CaptureQueriesContext(connection) as queries:
        scans = uploads_scan(upload_ids=[upload.pk for upload in uploads])
    locking = [sql for query in queries if "FOR UPDATE" in (sql := query["sql"]) and 'FROM "moderation_upload"' in sql]
    assert len(locking) == 1, "the batch's uploads are locked in one read, not one each"
    assert 'FOR UPDATE OF "moderation_upload"' in locking[0], "the platform row is read, not locked"
    statements = [query["sql"] for query in queries]
    assert len([sql for sql in statements if sql.startswith('INSERT INTO "moderation_scan"')]) == 1, "scans: one"
    tag_statements = ('DELETE FROM "moderation_tag"', 'INSERT INTO "moderation_tag"')
    tag_writes = [sql for sql in statements if sql.startswith(tag_statements)]
    assert len(tag_writes) == 2, "the batch's automatic tags replaced in one DELETE and one INSERT"
    upload_writes = [sql for sql in statements if sql.startswith('UPDATE "moderation_upload"')]
    assert '"scan_attempts"' in upload_writes[0], "the batch's start counted in one statement, before scoring"
    assert len(upload_writes) == 1 + 4, "then scored and tagged in one statement per upload"
    assert len(scans) == 4 and Scan.objects.count() == 4
    for upload in Upload.objects.filter(pk__in=[upload.pk for upload in uploads]):
        # The coin model scores 0.5, in its review zone: every verdict, with its columns, is written.
        assert upload.status == UploadStatus.NEEDS_REVIEW
        assert upload.scan_verdict == "needs-review" and upload.scan_score == pytest.approx(0.5)
        assert upload.scan_model_version and upload.review_priority > 0
        assert [entry["status"] for entry in upload.status_history][-3:] == ["fetched", "scanned", "needs_review"]


def test_an_upload_that_moved_on_is_left_alone_and_the_rest_recorded(platform, coin_model):
    first, *rest = _fetched(platform, 3)
    scanned_first = uploads_scan(upload_ids=[first.pk])
    assert len(scanned_first) == 1
    # A duplicate delivery of the same batch: the upload already scored keeps its one scan.
    scans = uploads_scan(upload_ids=[first.pk, *(upload.pk for upload in rest)])
    assert {scan.upload_id for scan in scans} == {upload.pk for upload in rest}
    assert Scan.objects.filter(upload=first).count() == 1


def test_a_batch_calls_back_each_upload_with_its_own_payload_read_once(platform, coin_model):
    from callbacks.models import CallbackDelivery
    from moderation.models import Platform

    Platform.objects.filter(pk=platform.platform.pk).update(callback_url="https://platform.example/hooks")
    uploads = _fetched(platform, 3)
    with CaptureQueriesContext(connection) as queries:
        uploads_scan(upload_ids=[upload.pk for upload in uploads])
    deliveries = list(CallbackDelivery.objects.filter(event_type="upload.tagged"))
    assert sorted(delivery.payload["data"]["external_id"] for delivery in deliveries) == [
        "batch-0",
        "batch-1",
        "batch-2",
    ]
    for delivery in deliveries:
        data = delivery.payload["data"]
        assert data["upload_id"] == str(delivery.upload_id) and data["status"] == "needs_review"
        assert data["verdict"]["label"] == "needs-review" and data["tags"][0]["name"] == "needs-review"
    # The payloads are read for the batch together: one read of each relation, not one per upload.
    assert sum('FROM "compliance_appeal"' in query["sql"] for query in queries) == 1


class WorkerCrashed(BaseException):
    """Stands in for the death of the worker process while it scores (a fault in native code, the OOM killer, the hard
    time limit): nothing after it runs in that process."""


def _crashes_on(monkeypatch, poison: bytes) -> list[int]:
    """Scoring a batch that holds `poison` crashes the worker; returns the size of each batch scored."""
    from registry.detection import get_detector

    detector = get_detector()
    predict, batches = detector.predict, []

    def predict_or_crash(images, *args, **kwargs):
        batches.append(len(images))
        if poison in images:
            raise WorkerCrashed
        return predict(images, *args, **kwargs)

    monkeypatch.setattr(detector, "predict", predict_or_crash)
    return batches


def test_after_a_crash_each_upload_is_scored_alone_and_an_image_that_always_crashes_ends_failed(
    platform, coin_model, monkeypatch
):
    from scanning.services import SCAN_MAX_ATTEMPTS

    uploads = _fetched(platform, 3)
    ids = [upload.pk for upload in uploads]
    batches = _crashes_on(monkeypatch, photo_bytes(1))
    with pytest.raises(WorkerCrashed):
        uploads_scan(upload_ids=ids)
    # Redelivered (or resent by the sweeper): each upload on its own, so the crash costs only its own upload.
    with pytest.raises(WorkerCrashed):
        uploads_scan(upload_ids=ids)
    assert batches == [3, 1, 1]
    with pytest.raises(WorkerCrashed):
        uploads_scan(upload_ids=ids)
    assert batches == [3, 1, 1, 1, 1], "fewest starts first: the one left unscored, then the crashing one again"
    statuses = dict(Upload.objects.filter(pk__in=ids).values_list("external_id", "status"))
    assert statuses == {"batch-0": "needs_review", "batch-1": "fetched", "batch-2": "needs_review"}
    for _ in range(SCAN_MAX_ATTEMPTS - 3):
        with pytest.raises(WorkerCrashed):
            uploads_scan(upload_ids=ids)
    [scan] = uploads_scan(upload_ids=ids)
    assert len(batches) == 5 + SCAN_MAX_ATTEMPTS - 3, "not opened again"
    poison = Upload.objects.get(pk=uploads[1].pk)
    reason = f"scoring was started {SCAN_MAX_ATTEMPTS} times and never finished"
    assert poison.status == UploadStatus.FAILED and reason in poison.failure_reason
    assert scan.error.startswith(reason) and scan.upload_id == poison.pk, "a failed scan records why"
