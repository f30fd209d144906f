"""The web process's hand-off to the fetch queue: one background thread publishes committed uploads, many to a message.

A publish through Celery costs about as much CPU as the webhook's insert (0.4 ms: building the message, the
producer pool, the broker round trip), and the request would wait for it. Instead the request thread appends the
upload's id to this process's queue and answers; the thread sends whatever has gathered since its last message as one
`uploads_fetch_each` message, gathering for WEBHOOK_PUBLISH_LINGER_SECONDS (20 ms) after the first. A fetch worker
stores the batch's held bytes in that task and gives each URL upload an `upload_fetch` of its own (with its retries).

Nothing is lost if the broker refuses or the process dies first: every id is of an upload already committed
`queued`. A refused batch goes back to `received` for the sweeper to publish when the broker is back; a process
killed with ids still held leaves them `queued`, and the sweeper resends them once they count as stalled
(SWEEP_STALLED_AFTER_SECONDS). A normal exit (gunicorn restarting a worker, a deploy) sends what is held first.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable

from celery import current_app
from django.db import connections

from fetching.tasks import upload_publish, uploads_fetch_each
from moderation.conf import app_setting
from moderation.models import Upload, UploadStatus
from moderation.services import INTAKE, IllegalTransition, upload_transition

logger = logging.getLogger(__name__)

# Ids per message: a message stays a few tens of KB however far behind the thread falls.
MAX_IDS_PER_MESSAGE = 500
EXIT_FLUSH_SECONDS = 10

_STOP = object()


class FetchPublisher:
    """A queue of upload ids and the daemon thread that publishes them with `send` (a list of ids per call)."""

    def __init__(self, send: Callable[[list[str]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._pending: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closing = threading.Event()  # cuts the linger short
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, upload_id: str) -> None:
        """Queue a committed `queued` upload for publishing; returns at once."""
        if self._thread is None or self._pid != os.getpid():
            self._start()
        self._pending.put(upload_id)

    def close(self, timeout: float = EXIT_FLUSH_SECONDS) -> None:
        """Publish everything queued so far and stop the thread (a later `submit` starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None or self._pid != os.getpid():
                return
            self._pending.put(_STOP)
            self._closing.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("fetch publisher still sending after %s s; the sweeper resends what it held", timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            if self._pid != os.getpid():
                # A fork (a pre-forked server's worker) inherits the parent's queue but not its thread: start afresh.
                self._pending = queue.SimpleQueue()
            self._closing = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, args=(self._pending, self._closing), name="fetch-publisher", daemon=True
            )
            self._thread.start()

    def _run(self, pending: queue.SimpleQueue[object], closing: threading.Event) -> None:
        while True:
            batch = [pending.get()]
            # Gather for a moment after the first: each process sees only its share of the webhooks, so without it
            # most messages would carry one upload. Asleep, not waiting on the queue: a wake-up per id would take
            # the GIL from the request threads each time. `close` ends the wait.
            if batch[0] is not _STOP:
                closing.wait(app_setting("WEBHOOK_PUBLISH_LINGER_SECONDS"))
            while len(batch) < MAX_IDS_PER_MESSAGE and batch[-1] is not _STOP:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            ids = [item for item in batch if item is not _STOP]
            if ids:
                self._publish(ids)  # type: ignore[arg-type]
            if len(ids) < len(batch):
                return

    def _publish(self, upload_ids: list[str]) -> None:
        try:
            self._send(upload_ids)
        except Exception as exc:  # the broker's errors are transport-specific
            logger.warning("broker refused %d uploads; the sweeper publishes them later: %s", len(upload_ids), exc)
            _uploads_back_to_received(upload_ids, reason=f"broker refused the publish: {exc}"[:500])


def _uploads_back_to_received(upload_ids: list[str], *, reason: str) -> None:
    try:
        for upload in Upload.objects.filter(pk__in=upload_ids, status=UploadStatus.QUEUED):
            with contextlib.suppress(IllegalTransition):  # a sweep or a worker took it further meanwhile
                upload_transition(upload=upload, to=UploadStatus.RECEIVED, reason=reason, acting_user=INTAKE)
    except Exception:
        # The database is out too: the uploads stay `queued` and the sweeper resends them once stalled.
        logger.exception("could not mark %d unpublished uploads for the sweeper", len(upload_ids))
    finally:
        connections.close_all()  # this thread's own: it seldom needs one, so it keeps none open


def _send_to_fetch_queue(upload_ids: list[str]) -> None:
    uploads_fetch_each.delay(upload_ids)


fetch_publisher = FetchPublisher(_send_to_fetch_queue)
atexit.register(fetch_publisher.close)


def upload_publish_in_background(*, upload: Upload) -> None:
    """Hand a committed `queued` upload to the fetch queue without waiting for the broker (the webhook's way)."""
    if current_app.conf.task_always_eager:
        # Eager tasks run in the caller: keep them in the request, where the host (or a test) expects them.
        upload_publish(upload=upload, acting_user=INTAKE)
    else:
        fetch_publisher.submit(str(upload.pk))
