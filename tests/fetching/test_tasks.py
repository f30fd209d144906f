"""A web process's batch on the fetch queue: held bytes stored in the batch task itself, everything else (a URL, a
failure, what is left when time runs out) handed to a task of its own."""

from __future__ import annotations

import uuid

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from fetching.tasks import upload_fetch, uploads_fetch_each
from moderation.models import Upload, UploadStatus
from scanning.tasks import uploads_scan
from tests.conftest import held_upload, photo_bytes
from webhooks.services import upload_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_media_root")]


@pytest.fixture
def published(monkeypatch) -> dict[str, list[str]]:
    """What the batch publishes, by task: nothing is sent to a broker or run."""
    sent: dict[str, list[str]] = {"upload_fetch": [], "uploads_scan": []}
    monkeypatch.setattr(upload_fetch, "delay", lambda upload_id: sent["upload_fetch"].append(str(upload_id)))
    monkeypatch.setattr(uploads_scan, "delay", lambda upload_id: sent["uploads_scan"].append(str(upload_id)))
    return sent


def _upload(platform, external_id: str, **source: str) -> str:
    upload, _ = upload_create(
        platform=platform.platform, webhook_id=f"msg_{uuid.uuid4().hex}", external_id=external_id, **source
    )
    return str(upload.pk)


def _held(platform, external_id: str, seed: int) -> str:
    return str(held_upload(platform, external_id, photo_bytes(seed)).pk)


def _second_store_raises(monkeypatch, error: BaseException) -> None:
    """The media storage raises `error` when the batch stores its second image (a full disk, the soft time limit)."""
    storage = Upload._meta.get_field("image").storage
    save, calls = storage.save, []

    def save_raising_the_second_time(name, content, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise error
        return save(name, content, *args, **kwargs)

    monkeypatch.setattr(storage, "save", save_raising_the_second_time)


def test_held_bytes_are_stored_in_the_batch_and_go_straight_to_detection(platform, published):
    ids = [_held(platform, f"held-{n}", n) for n in range(3)]
    uploads_fetch_each(ids)
    assert published == {"upload_fetch": [], "uploads_scan": ids}, "no task of their own"
    assert set(Upload.objects.filter(pk__in=ids).values_list("status", flat=True)) == {UploadStatus.FETCHED}


def test_a_url_upload_and_a_vanished_one_leave_the_rest_of_the_batch_alone(platform, published):
    held = _held(platform, "held", 1)
    remote = _upload(platform, "remote", url="https://images.example.com/a.jpg")
    uploads_fetch_each([str(uuid.uuid4()), remote, held])
    assert published == {"upload_fetch": [remote], "uploads_scan": [held]}, "the URL is fetched by its own task"
    assert Upload.objects.get(pk=remote).status == UploadStatus.QUEUED, "untouched until then"
    assert Upload.objects.get(pk=held).status == UploadStatus.FETCHED


def test_an_upload_that_fails_to_store_is_retried_by_a_task_of_its_own(platform, published, monkeypatch):
    ids = [_held(platform, f"held-{n}", n) for n in range(3)]
    _second_store_raises(monkeypatch, OSError(28, "No space left on device"))
    uploads_fetch_each(ids)
    assert published == {"upload_fetch": [ids[1]], "uploads_scan": [ids[0], ids[2]]}
    assert Upload.objects.get(pk=ids[1]).status == UploadStatus.QUEUED, "nothing lost: still queued for its task"


def test_a_batch_out_of_time_hands_the_rest_to_tasks_of_their_own(platform, published, monkeypatch):
    ids = [_held(platform, f"held-{n}", n) for n in range(4)]
    _second_store_raises(monkeypatch, SoftTimeLimitExceeded())
    uploads_fetch_each(ids)
    assert published == {"upload_fetch": ids[1:], "uploads_scan": ids[:1]}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("Port out of range 0-65535"), "ValueError: Port out of range 0-65535"),
        (SoftTimeLimitExceeded(), "the fetch ran past its time limit"),
    ],
)
def test_a_fetch_that_keeps_raising_ends_failed_with_the_reason(platform, published, monkeypatch, error, reason):
    """Anything the fetch did not expect is retried like a timeout, then recorded: the upload used to stay `queued`,
    and the sweeper resent it every minute for ever."""
    from fetching import services

    remote = _upload(platform, "remote", url="https://images.example.com/a.jpg")
    calls = []

    def raising(**kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(services, "upload_fetch", raising)
    monkeypatch.setitem(upload_fetch.app.conf, "task_eager_propagates", False)  # as a worker: errors become states
    result = upload_fetch.apply(args=[remote])  # eager: each retry is applied at once, in turn
    assert result.state == "SUCCESS", "retried, then recorded: no task error"
    upload = Upload.objects.get(pk=remote)
    assert len(calls) == upload_fetch.max_retries + 1
    assert upload.status == UploadStatus.FAILED
    assert upload.failure_reason == f"fetch failed after retries: {reason}"
    assert published == {"upload_fetch": [], "uploads_scan": []}


class WorkerCrashed(BaseException):
    """Stands in for the death of the worker process (a fault in native decoding code, the kernel's OOM killer, the
    hard time limit): nothing after it runs in that process, no retry and no failure recorded."""


def _crashes_on(monkeypatch, external_id: str) -> list[str]:
    """Opening the image of upload `external_id` crashes the worker; returns the external ids opened, in order."""
    from fetching import services

    collect, opened = services._evidence_collect, []

    def collect_or_crash(*, upload, data):
        opened.append(upload.external_id)
        if upload.external_id == external_id:
            raise WorkerCrashed
        return collect(upload=upload, data=data)

    monkeypatch.setattr(services, "_evidence_collect", collect_or_crash)
    return opened


def test_a_batch_delivered_again_after_a_crash_sends_each_upload_to_a_task_of_its_own(platform, published, monkeypatch):
    ids = [_held(platform, f"held-{n}", n) for n in range(3)]
    _crashes_on(monkeypatch, "held-1")
    with pytest.raises(WorkerCrashed):
        uploads_fetch_each(ids)
    assert published == {"upload_fetch": [], "uploads_scan": ids[:1]}
    uploads_fetch_each(ids)  # redelivered: any of its uploads may be the one that crashed the worker
    assert published == {"upload_fetch": ids, "uploads_scan": ids[:1]}, "nothing fetched in the batch again"
    for upload_id in ids:
        try:
            upload_fetch(upload_id)
        except WorkerCrashed:
            pass
    statuses = dict(Upload.objects.filter(pk__in=ids).values_list("external_id", "status"))
    assert statuses == {"held-0": "fetched", "held-1": "queued", "held-2": "fetched"}, "one crash costs only its own"


def test_an_image_that_crashes_every_fetch_ends_failed_unopened(platform, published, monkeypatch):
    from fetching.services import FETCH_MAX_ATTEMPTS

    poison = _held(platform, "poison", 1)
    opened = _crashes_on(monkeypatch, "poison")
    for _ in range(FETCH_MAX_ATTEMPTS):  # each a redelivery, or the sweeper's resend of a `queued` upload
        with pytest.raises(WorkerCrashed):
            upload_fetch(poison)
    upload_fetch(poison)
    upload = Upload.objects.get(pk=poison)
    assert upload.status == UploadStatus.FAILED
    assert f"started {FETCH_MAX_ATTEMPTS} times and never finished" in upload.failure_reason
    assert len(opened) == FETCH_MAX_ATTEMPTS, "not opened again"
    assert published == {"upload_fetch": [], "uploads_scan": []}


def test_every_retry_of_a_failing_fetch_runs_before_the_crash_limit(platform, published, monkeypatch):
    """The batch's start and all of the task's own retries fit under FETCH_MAX_ATTEMPTS: an error the task sees is
    recorded as itself, not as a crash."""
    from fetching import services

    held = _held(platform, "held", 1)
    monkeypatch.setattr(services, "_evidence_collect", lambda **_: (_ for _ in ()).throw(ValueError("bad marker")))
    uploads_fetch_each([held])
    assert published["upload_fetch"] == [held], "its storing failed in the batch: a task of its own"
    monkeypatch.setitem(upload_fetch.app.conf, "task_eager_propagates", False)
    assert upload_fetch.apply(args=[held]).state == "SUCCESS"
    upload = Upload.objects.get(pk=held)
    assert upload.fetch_attempts == 1 + upload_fetch.max_retries + 1 <= services.FETCH_MAX_ATTEMPTS
    assert (upload.status, upload.failure_reason) == ("failed", "fetch failed after retries: ValueError: bad marker")


def test_the_sweeper_resends_a_stalled_upload_once_per_stalled_window(platform, published):
    """Not every sweep (every minute): copies of one upload piling up behind a backlog could start it enough times at
    once to be failed as a crashing image."""
    from datetime import timedelta

    from django.utils import timezone

    from fetching.tasks import uploads_requeue

    held = _held(platform, "held", 1)
    uploads_fetch_each([held])
    assert published["uploads_scan"] == [held]
    Upload.objects.filter(pk=held).update(updated_at=timezone.now() - timedelta(seconds=901))
    assert uploads_requeue(stalled_after_seconds=900) == 1
    assert uploads_requeue(stalled_after_seconds=900) == 0, "the next sweep waits for another stalled window"
    assert published["uploads_scan"] == [held, held]
    Upload.objects.filter(pk=held).update(updated_at=timezone.now() - timedelta(seconds=901))
    assert uploads_requeue(stalled_after_seconds=900) == 1
    assert Upload.objects.get(pk=held).status == UploadStatus.FETCHED, "only its time of last sending moved"
