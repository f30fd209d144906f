"""The web process's publisher: uploads gathered into few messages, nothing lost when the broker refuses or at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from fetching.publisher import FetchPublisher
from moderation.models import Upload, UploadStatus
from tests.conftest import REPO_ROOT, post_webhook, signed_headers, upload_body


class Recorder:
    """A `send` that keeps each message's ids; `refuse` makes it raise like a broker that is down."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.messages: list[list[str]] = []
        self.refuse = refuse
        self.sent = threading.Event()

    def __call__(self, upload_ids: list[str]) -> None:
        if self.refuse:
            raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.messages.append(list(upload_ids))
        self.sent.set()


def test_uploads_arriving_together_go_out_in_one_message(settings):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "WEBHOOK_PUBLISH_LINGER_SECONDS": 0.5}
    recorder = Recorder()
    publisher = FetchPublisher(recorder)
    ids = [f"upload-{n}" for n in range(40)]
    for upload_id in ids:
        publisher.submit(upload_id)
    assert recorder.sent.wait(5)
    publisher.close()
    assert recorder.messages == [ids], "one message, every id, in order"


def test_with_no_linger_each_upload_goes_out_at_once(settings):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "WEBHOOK_PUBLISH_LINGER_SECONDS": 0}
    recorder = Recorder()
    publisher = FetchPublisher(recorder)
    publisher.submit("first")
    assert recorder.sent.wait(5), "sent without waiting for more"
    publisher.close()
    assert recorder.messages == [["first"]]


def test_closing_sends_what_is_held_without_waiting_out_the_linger(settings):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "WEBHOOK_PUBLISH_LINGER_SECONDS": 60}
    recorder = Recorder()
    publisher = FetchPublisher(recorder)
    for upload_id in ("a", "b", "c"):
        publisher.submit(upload_id)
    publisher.close(timeout=5)
    assert recorder.messages == [["a", "b", "c"]]
    publisher.submit("d")  # a later submit starts the thread again
    publisher.close(timeout=5)
    assert recorder.messages == [["a", "b", "c"], ["d"]]


def _queued_uploads(client: Any, credentials: Any, prefix: str, count: int) -> list[str]:
    """Uploads recorded by the webhook and left `queued`: its own publish (inline, as tasks run eagerly) is skipped."""
    ids = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("fetching.publisher.upload_publish", lambda **_: None)
        for n in range(count):
            body = upload_body(f"{prefix}-{n}")
            response = post_webhook(client, "acme", body, signed_headers(body, credentials.webhook_secret))
            assert response.status_code == 202 and response.json()["status"] == "queued"
            ids.append(response.json()["upload_id"])
    return ids


@pytest.mark.django_db(transaction=True)  # the publisher's thread reads through its own connection
def test_a_refused_batch_goes_back_to_received_for_the_sweeper(client, platform, settings):
    from fetching.tasks import uploads_requeue

    settings.AI_MODERATION = {**settings.AI_MODERATION, "WEBHOOK_PUBLISH_LINGER_SECONDS": 0.2}
    ids = _queued_uploads(client, platform, "refused", 3)
    publisher = FetchPublisher(Recorder(refuse=True))
    for upload_id in ids:
        publisher.submit(upload_id)
    publisher.close(timeout=10)
    uploads = Upload.objects.filter(pk__in=ids)
    assert {upload.status for upload in uploads} == {UploadStatus.RECEIVED}, "recorded, and left for the sweeper"
    assert all("broker refused" in upload.status_history[-1]["reason"] for upload in uploads)
    assert uploads_requeue(received_after_seconds=0) == 3, "the sweeper publishes all three"
    assert set(Upload.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {"tagged", "needs_review"}


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_fetched_one_upload_at_a_time(client, platform):
    from fetching.tasks import uploads_fetch_each

    ids = _queued_uploads(client, platform, "batch", 3)
    uploads_fetch_each.delay(ids)  # eager here: each `upload_fetch` runs, and its scan after it
    assert set(Upload.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {"tagged", "needs_review"}


EXITING_PROCESS = """
import json, sys, django
django.setup()
from fetching.publisher import fetch_publisher
fetch_publisher._send = lambda ids: open(sys.argv[1], "a").write(json.dumps(ids) + "\\n")
for n in range(5):
    fetch_publisher.submit(f"upload-{n}")
"""


def test_a_process_exiting_normally_sends_what_it_holds_first(tmp_path: Path):
    """gunicorn restarting a worker, or a deploy: the held ids are sent before the process ends."""
    sent = tmp_path / "sent.jsonl"
    env: dict[str, Any] = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MODERATION_DATA_DIR": str(tmp_path / "data"),
        "WEBHOOK_PUBLISH_LINGER_SECONDS": "30",  # longer than the process lives: only the exit can send them
    }
    subprocess.run([sys.executable, "-c", EXITING_PROCESS, str(sent)], env=env, cwd=REPO_ROOT, check=True, timeout=120)
    assert [json.loads(line) for line in sent.read_text().splitlines()] == [[f"upload-{n}" for n in range(5)]]
