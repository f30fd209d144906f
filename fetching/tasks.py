"""The fetch queue: publish an upload to it (`upload_enqueue`, or `upload_publish` for one already written `queued`;
the webhook's batches arrive as `uploads_fetch_each`), fetch, and the sweeper that resends what stalled. A fetched
upload goes on to the detect queue."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from hashbank.services import hash_banks_read_once
from moderation.conf import app_setting
from moderation.models import Upload, UploadStatus
from moderation.services import (
    FETCHING,
    SCHEDULER,
    Actor,
    IllegalTransition,
    upload_fail,
    upload_transition,
)
from scanning import tasks as scanning_tasks
from transport.fetch import FetchTransient

from . import services
from .selectors import uploads_for_fetch

logger = logging.getLogger(__name__)

# Task names predate the split into stages; kept so that messages queued before an upgrade still run.


@shared_task(
    name="moderation.tasks.upload_fetch",
    bind=True,
    queue="fetch",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=services.FETCH_MAX_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def upload_fetch(self, upload_id: str) -> None:
    """Fetch one upload. A transient failure is retried with backoff; so is anything unexpected (a storage outage, or
    a fault no retry will cure): after FETCH_MAX_RETRIES the upload ends `failed` with the reason, never left
    `queued` for the sweeper to resend for ever. Nor can a worker that crashes on the image (no retry, no failure
    recorded): each start is counted first, and past FETCH_MAX_ATTEMPTS the upload is failed unopened."""
    try:
        ready = services.upload_fetch(upload_id=upload_id)
    except Upload.DoesNotExist:
        logger.warning("upload %s no longer exists; dropping its fetch", upload_id)
    except Exception as exc:
        if isinstance(exc, FetchTransient):
            problem = str(exc)
        elif isinstance(exc, SoftTimeLimitExceeded):
            problem = "the fetch ran past its time limit"
        else:
            logger.exception("fetching upload %s failed unexpectedly", upload_id)
            problem = f"{type(exc).__name__}: {exc}"
        if self.request.retries >= self.max_retries:
            upload_fail(
                upload=Upload.objects.get(id=upload_id),
                reason=f"fetch failed after retries: {problem}",
                acting_user=FETCHING,
            )
            return
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from exc
    else:
        if ready:
            scanning_tasks.uploads_scan.delay(upload_id)


@shared_task(
    name="fetching.tasks.uploads_fetch_each",
    queue="fetch",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def uploads_fetch_each(upload_ids: list[str]) -> None:
    """A web process's batch (`fetching.publisher`). Bytes the webhook held are stored here, one upload after another:
    no network, and a task of their own per upload (its publish, delivery and acknowledgement) cost the fetch stage
    more CPU than storing them. An upload whose image is at its URL, or whose storing fails, gets its own
    `upload_fetch`, with that task's retries and time limits; so does the rest of a batch that runs out of time, and
    each upload a delivery of this batch started before (its worker lost, perhaps to that upload's image), so that one
    image that crashes workers cannot take the batch down again. The batch's uploads are read together
    (`uploads_for_fetch`), and each hash bank once."""
    services.uploads_fetch_started(upload_ids)
    handled = 0
    try:
        with hash_banks_read_once():
            for upload_id, upload in uploads_for_fetch(upload_ids):
                if upload is not None and upload.fetch_attempts > 1:  # started before this delivery
                    upload_fetch.delay(upload_id)
                else:
                    _batch_member_fetch(upload_id, upload)
                handled += 1
    except SoftTimeLimitExceeded:
        for rest in upload_ids[handled:]:
            upload_fetch.delay(rest)


def _batch_member_fetch(upload_id: str, upload: Upload | None) -> None:
    if upload is None:
        logger.warning("upload %s no longer exists; dropping its fetch", upload_id)
        return
    try:
        ready = services.upload_fetch_read(upload=upload, fetch_url=False)
    except services.RemoteImage:
        upload_fetch.delay(upload_id)
        return
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.exception("storing upload %s in its batch failed; retrying it in a task of its own", upload_id)
        upload_fetch.delay(upload_id)
        return
    if ready:
        scanning_tasks.uploads_scan.delay(upload_id)


def upload_enqueue(*, upload_id: Any, acting_user: Actor) -> None:
    """Mark a committed `received` upload queued and hand it to the fetch queue.

    Marked first, so a fast worker never sees it still `received`; if the broker refuses, it goes back to
    `received` and the error propagates.
    """
    upload = Upload.objects.get(id=upload_id)
    if upload.status != UploadStatus.RECEIVED:
        return
    try:
        upload_transition(
            upload=upload, to=UploadStatus.QUEUED, reason="published to the fetch queue", acting_user=acting_user
        )
    except IllegalTransition:
        return  # another process (a concurrent sweep) published it first
    upload_publish(upload=upload, acting_user=acting_user)


def upload_publish(*, upload: Upload, acting_user: Actor) -> None:
    """Publish a committed `queued` upload to the fetch queue. If the broker refuses, the upload goes back to
    `received` (for the sweeper to publish later) and the error propagates."""
    try:
        upload_fetch.delay(str(upload.pk))
    except Exception as exc:
        with contextlib.suppress(IllegalTransition):  # unless a worker somehow took it further already
            upload_transition(
                upload=upload,
                to=UploadStatus.RECEIVED,
                reason=f"broker refused the publish: {exc}"[:500],
                acting_user=acting_user,
            )
        raise


def uploads_requeue(*, received_after_seconds: float = 30, stalled_after_seconds: float = 900) -> int:
    """The sweeper that makes the upload row its own outbox: anything the broker never got (still `received`, e.g.
    during a broker outage) is published again, and anything stuck mid-pipeline is sent to its stage again (every
    stage is idempotent). Returns how many uploads were sent."""
    now = timezone.now()
    sent = 0
    unpublished = Upload.objects.filter(
        status=UploadStatus.RECEIVED, updated_at__lt=now - timedelta(seconds=received_after_seconds)
    ).values_list("id", flat=True)
    for upload_id in unpublished[:1000]:
        try:
            upload_enqueue(upload_id=upload_id, acting_user=SCHEDULER)
        except Exception:  # broker still down: the next sweep tries again
            logger.warning("broker refused upload %s; will retry on the next sweep", upload_id)
            return sent
        sent += 1
    in_flight = [UploadStatus.QUEUED, UploadStatus.FETCHED]
    stalled = Upload.objects.filter(
        status__in=in_flight, updated_at__lt=now - timedelta(seconds=stalled_after_seconds)
    ).values_list("id", "status")
    resent = []
    try:
        for upload_id, status in stalled[:1000]:
            if status == UploadStatus.QUEUED:
                upload_fetch.delay(str(upload_id))
            else:
                scanning_tasks.uploads_scan.delay(str(upload_id))
            resent.append(upload_id)
    finally:
        # Resent once per stalled window, not every sweep: an upload waiting behind a backlog would otherwise reach the
        # workers as a run of copies, which could start its scoring SCAN_MAX_ATTEMPTS times at once and fail it.
        Upload.objects.filter(pk__in=resent, status__in=in_flight).update(updated_at=now)
    return sent + len(resent)


@shared_task(name="moderation.tasks.uploads_requeue_stalled", queue="fetch", soft_time_limit=120, time_limit=150)
def uploads_requeue_stalled() -> None:
    """Periodic (every minute): publish what a broker outage held back, resend what stalled."""
    uploads_requeue(
        received_after_seconds=app_setting("SWEEP_RECEIVED_AFTER_SECONDS"),
        stalled_after_seconds=app_setting("SWEEP_STALLED_AFTER_SECONDS"),
    )
