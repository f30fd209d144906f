"""The detect queue (batched scoring, heatmaps) and the batch-job queue's re-scans, with their publishers."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import timedelta

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery import shared_task
from celery.signals import worker_process_init
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from hashbank.models import HashBankEntry, RetroScan, RetroScanKind
from moderation.conf import app_setting
from moderation.models import Platform
from moderation.services import Actor
from registry.services import model_version_ensure_default
from scanning.models import Scan

from . import rescans, services

logger = logging.getLogger(__name__)
worker_logger = logging.getLogger("moderation.worker")

# Task names predate the split into stages; kept so that messages queued before an upgrade still run.


class BatchesRequeuedOnWorkerLost(Batches):
    """celery-batches, plus what Celery does for a single task with `acks_late` and `reject_on_worker_lost`: when the
    pool process running a batch dies (a crash in native code, the OOM killer), the batch's messages go back to the
    queue, and after any other pool failure (the hard time limit) they are acknowledged. celery-batches acknowledges
    only a batch that returned, so these stayed taken and unacknowledged until the worker restarted, each counting
    against its prefetch limit: a few crashes could leave it unable to take any message at all. A redelivered batch
    cannot loop: `services.uploads_scan` counts each upload's starts and gives up on one that never finishes."""

    def flush(self, requests: list) -> object:
        acks_late = [request for request in requests if request.task.acks_late]
        acks_early = [request for request in requests if not request.task.acks_late]

        def on_accepted(pid: int, time_accepted: float) -> None:
            for request in acks_early:
                request.acknowledge()

        def on_return(result: object) -> None:
            for request in acks_late:
                request.acknowledge()

        def on_pool_error(failure: ExceptionInfo) -> None:
            lost = isinstance(failure.exception, WorkerLostError)
            worker_logger.warning("a detection batch of %d failed in the pool: %s", len(requests), failure.exception)
            for request in acks_late:
                if lost:
                    request.reject(requeue=True)
                else:
                    request.acknowledge()

        return self._pool.apply_async(
            apply_batches_task,
            (self, ([SimpleRequest.from_request(request) for request in requests],), 0, None),
            accept_callback=on_accepted,
            callback=on_return,
            error_callback=on_pool_error,
        )


@shared_task(
    name="moderation.tasks.uploads_scan",
    base=BatchesRequeuedOnWorkerLost,
    queue="detect",
    flush_every=app_setting("DETECTOR_MAX_BATCH_SIZE"),
    flush_interval=app_setting("DETECTOR_BATCH_WAIT_SECONDS"),
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=360,
)
def uploads_scan(requests: list) -> None:
    """Batched: the worker buffers `uploads_scan.delay(upload_id)` calls and runs the detector once per batch."""
    services.uploads_scan(upload_ids=[request.args[0] for request in requests])


@shared_task(
    name="moderation.tasks.scan_heatmap",
    queue="detect",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def scan_heatmap(scan_id: int) -> None:
    services.scan_heatmap_ensure(scan_id=scan_id)


def scan_heatmap_request(*, scan: Scan) -> None:
    """Queue the heatmap once a minute at most, however many clients poll for it. While the cache is unreachable
    every poll queues it (the task is idempotent), rather than the lookup failing; while the broker is, none does, and
    the lookup still answers "pending"."""
    try:
        first = cache.add(f"moderation:heatmap-requested:{scan.pk}", 1, timeout=60)
    except Exception as exc:  # each cache backend raises its own connection errors
        logger.warning("heatmap request not deduplicated: cache unreachable (%s: %s)", type(exc).__name__, exc)
        first = True
    if first:
        try:
            scan_heatmap.delay(scan.pk)
        except Exception as exc:  # the broker is down: the client polls again, and that poll queues it
            logger.warning(
                "heatmap for scan %s not queued: broker unreachable (%s: %s)", scan.pk, type(exc).__name__, exc
            )
            with contextlib.suppress(Exception):  # so that the next poll queues it
                cache.delete(f"moderation:heatmap-requested:{scan.pk}")


# What a worker logs once its model is loaded and warmed up; `make run` waits for it before it says "Serving". Not on
# the task logger, whose format expects a task ("???[???]" outside one).
DETECTOR_READY_LOG = "detector ready"


@worker_process_init.connect
def _warm_up_detector(**_: object) -> None:
    # In the child process, after the fork: CUDA must never be initialised in the prefork parent.
    if app_setting("DETECTOR_WARM_UP"):
        from registry.detection import get_detector_for  # imported here: web processes never load torch

        started = time.perf_counter()
        version = model_version_ensure_default()
        get_detector_for(version).warm_up()
        worker_logger.info(
            "%s: %s@%s loaded and warmed up in %.1f s (pid %d)",
            DETECTOR_READY_LOG,
            version.name,
            version.version,
            time.perf_counter() - started,
            os.getpid(),
        )


def retro_scan_start(
    *, platform: Platform | None, entries: list[HashBankEntry], acting_user: Actor, queue: bool = True
) -> RetroScan:
    """Record a retro scan of these bank entries; with `queue`, a worker runs it after commit."""
    scan = RetroScan.objects.create(
        kind=RetroScanKind.HASH_MATCH,
        platform=platform,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    scan.entries.set(entries)
    if queue:
        transaction.on_commit(lambda: retro_scan_run.delay(scan.pk))
    return scan


def retro_rescore_start(*, window_days: float, acting_user: Actor, queue: bool = True) -> RetroScan:
    """Re-score the last `window_days` of scanned, unreviewed uploads with the model that is active now."""
    scan = RetroScan.objects.create(
        kind=RetroScanKind.MODEL_RESCORE,
        window_since=timezone.now() - timedelta(days=window_days),
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    if queue:
        transaction.on_commit(lambda: retro_scan_run.delay(scan.pk))
    return scan


@shared_task(
    name="moderation.tasks.retro_scan_run",
    queue="training",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=3600,
    time_limit=3700,
)
def retro_scan_run(retro_scan_id: int) -> None:
    """New bank hashes against earlier uploads, or a re-score after a promotion. On the batch-job queue, so a long
    look-back never holds up fetching; idempotent (a re-run flags nothing twice)."""
    rescans.retro_scan_run(retro_scan_id=retro_scan_id)


@shared_task(
    name="scanning.tasks.known_fake_matches_withdraw",
    queue="training",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=3600,
    time_limit=3700,
)
def known_fake_matches_withdraw(entry_ids: list[int]) -> None:
    """After a confirmed fake is overturned: its matches withdrawn from the uploads they flagged (idempotent)."""
    rescans.known_fake_matches_withdraw(entry_ids=entry_ids)
