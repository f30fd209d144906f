"""Thin Celery tasks: take ids, call one service. Routed to named queues: `fetch` (I/O) and `detect` (model)."""

from __future__ import annotations

import logging
import os
import random
import time

from celery import shared_task
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger
from celery_batches import Batches

from transport.fetch import FetchTransient

from . import services
from .conf import app_setting
from .models import DeliveryStatus, Platform, Upload

logger = get_task_logger(__name__)

FETCH_MAX_RETRIES = 5


@shared_task(
    bind=True,
    queue="fetch",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=FETCH_MAX_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def upload_fetch(self, upload_id: str) -> None:
    try:
        services.upload_fetch(upload_id=upload_id)
    except Upload.DoesNotExist:
        logger.warning("upload %s no longer exists; dropping its fetch", upload_id)
    except FetchTransient as exc:
        if self.request.retries >= self.max_retries:
            services.upload_fail(upload=Upload.objects.get(id=upload_id), reason=f"fetch failed after retries: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from exc


@shared_task(
    base=Batches,
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


@shared_task(queue="detect", acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def scan_heatmap(scan_id: int) -> None:
    services.scan_heatmap_ensure(scan_id=scan_id)


# What a worker logs once its model is loaded and warmed up; `make run` waits for it before it says "Serving". Not on
# the task logger, whose format expects a task ("???[???]" outside one).
DETECTOR_READY_LOG = "detector ready"
worker_logger = logging.getLogger("moderation.worker")


@worker_process_init.connect
def _warm_up_detector(**_: object) -> None:
    # In the child process, after the fork: CUDA must never be initialised in the prefork parent.
    if app_setting("DETECTOR_WARM_UP"):
        from .detection import get_detector_for  # imported here: web processes never load torch

        started = time.perf_counter()
        version = services.model_version_ensure_default()
        get_detector_for(version).warm_up()
        worker_logger.info(
            "%s: %s@%s loaded and warmed up in %.1f s (pid %d)",
            DETECTOR_READY_LOG,
            version.name,
            version.version,
            time.perf_counter() - started,
            os.getpid(),
        )


@shared_task(queue="training", acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def model_retrain() -> None:
    """Periodic (weekly by default): does nothing unless enough new reviewer labels exist."""
    services.model_retrain()


@shared_task(queue="training", acks_late=True, soft_time_limit=600, time_limit=660)
def platforms_calibrate() -> None:
    for platform in Platform.objects.all():
        services.platform_calibrate(platform=platform)


@shared_task(
    bind=True, queue="callbacks", acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90
)
def callback_deliver(self, delivery_id: int) -> None:
    """Retried with exponential backoff and jitter (10 s, 20 s, 40 s … capped at an hour) until delivered or dead."""
    delivery = services.callback_attempt(delivery_id=delivery_id)
    if delivery.status == DeliveryStatus.PENDING:
        delay = min(3600.0, 10.0 * 2**self.request.retries) * random.uniform(0.5, 1.5)
        raise self.retry(countdown=delay, max_retries=None)


@shared_task(queue="fetch", soft_time_limit=120, time_limit=150)
def uploads_requeue_stalled() -> None:
    """Periodic (every minute): publish what a broker outage held back, resend what stalled."""
    services.uploads_requeue_stalled(
        received_after_seconds=app_setting("SWEEP_RECEIVED_AFTER_SECONDS"),
        stalled_after_seconds=app_setting("SWEEP_STALLED_AFTER_SECONDS"),
    )


@shared_task(queue="training", acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def retro_scan_run(retro_scan_id: int) -> None:
    """New bank hashes against earlier uploads, or a re-score after a promotion. On the batch-job queue, so a long
    look-back never holds up fetching; idempotent (a re-run flags nothing twice)."""
    services.retro_scan_run(retro_scan_id=retro_scan_id)
