"""Signed callbacks: verified with the Standard Webhooks library, retried, dead-lettered, redelivered."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callbacks.models import CallbackDelivery
from moderation.models import Platform
from moderation.services import platform_webhook_secret_retire_old, platform_webhook_secret_rotate
from tests.conftest import TEST_ACTOR, post_webhook, signed_headers, upload_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A platform's endpoint on loopback that records what it got and answers with the next queued status."""
    received: list[tuple[dict, bytes]] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(statuses.pop(0) if statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks/ai-tags", received, statuses
    httpd.shutdown()


@pytest.fixture
def calling_back(settings, platform, receiver):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "FETCH_ALLOW_LOOPBACK": True, "CALLBACK_MAX_ATTEMPTS": 3}
    Platform.objects.filter(slug="acme").update(callback_url=receiver[0])
    return receiver


def _send(client, platform, django_capture_on_commit_callbacks, external_id="cb-1"):
    body = upload_body(external_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202


def test_tagged_upload_is_called_back_with_a_verifiable_signature(
    client, platform, calling_back, django_capture_on_commit_callbacks
):
    _, received, _ = calling_back
    _send(client, platform, django_capture_on_commit_callbacks)
    assert len(received) == 1
    headers, body = received[0]
    event = Webhook(platform.webhook_secret).verify(body, headers)  # exactly what a platform would run
    assert event["type"] == "upload.tagged"
    assert (
        event["data"]["external_id"] == "cb-1" and event["data"]["verdict"]["label"] == event["data"]["tags"][0]["name"]
    )
    delivery = CallbackDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.last_status_code == 204
    assert headers["webhook-id"] == delivery.event_id


def test_while_a_secret_rotation_is_open_callbacks_verify_under_either_secret(
    client, platform, calling_back, django_capture_on_commit_callbacks
):
    _, received, _ = calling_back
    acme = Platform.objects.get(slug="acme")
    new_secret = platform_webhook_secret_rotate(platform=acme, acting_user=TEST_ACTOR)
    _send(client, platform, django_capture_on_commit_callbacks, external_id="rotating")
    headers, body = received[-1]
    # A platform that has not switched yet, and one that has: both accept it (it was signed with the new one only).
    for secret in (platform.webhook_secret, new_secret):
        assert Webhook(secret).verify(body, headers)["data"]["external_id"] == "rotating"
    platform_webhook_secret_retire_old(platform=acme, acting_user=TEST_ACTOR)
    body = upload_body("rotated")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, "acme", body, signed_headers(body, new_secret)).status_code == 202
    headers, body = received[-1]
    assert Webhook(new_secret).verify(body, headers)["data"]["external_id"] == "rotated"
    with pytest.raises(WebhookVerificationError):
        Webhook(platform.webhook_secret).verify(body, headers)  # retired: no longer signs


def test_failures_are_retried_then_dead_lettered_and_can_be_redelivered(
    client, platform, calling_back, django_capture_on_commit_callbacks
):
    from config.celery import app

    app.conf.task_eager_propagates = False  # so eager mode runs each retry in turn instead of raising Retry
    _, received, statuses = calling_back
    statuses.extend([500, 503, 502])
    _send(client, platform, django_capture_on_commit_callbacks)
    delivery = CallbackDelivery.objects.get()
    assert delivery.status == "dead" and delivery.attempts == 3 and delivery.last_status_code == 502
    assert len({headers["webhook-id"] for headers, _ in received}) == 1, "retries keep the event id"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("redeliver_callbacks", "--dead")
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and len(received) == 4
    attempts = list(delivery.attempt_log.values_list("number", "outcome", "status_code"))
    assert attempts == [(1, "failed", 500), (2, "failed", 503), (3, "failed", 502), (4, "delivered", 204)]


@pytest.mark.parametrize(
    "callback_url", ["http://169.254.169.254/latest", "http://10.0.0.1/hooks", "http://[64:ff9b::7f00:1]/hooks"]
)
def test_callback_to_an_internal_address_is_dead_at_once_without_retries(
    client, platform, settings, django_capture_on_commit_callbacks, callback_url
):
    from config.celery import app

    app.conf.task_eager_propagates = False  # a retry would run eagerly in turn: none may happen
    settings.AI_MODERATION = {**settings.AI_MODERATION, "CALLBACK_MAX_ATTEMPTS": 8}
    Platform.objects.filter(slug="acme").update(callback_url=callback_url)
    _send(client, platform, django_capture_on_commit_callbacks)
    delivery = CallbackDelivery.objects.get()
    assert delivery.status == "dead" and delivery.attempts == 1, "refused by policy: permanent, not retried"
    assert delivery.last_error.startswith("refused: ") and "not a public address" in delivery.last_error
    assert delivery.last_status_code is None
    (attempt,) = delivery.attempt_log.all()
    assert attempt.outcome == "refused" and attempt.error == delivery.last_error


def test_no_callback_url_means_no_delivery(client, platform, django_capture_on_commit_callbacks):
    _send(client, platform, django_capture_on_commit_callbacks)
    assert not CallbackDelivery.objects.exists()


def test_without_a_callback_url_the_payload_is_not_built(platform):
    from callbacks.tasks import callback_enqueue
    from tests.conftest import scanned_upload

    upload = scanned_upload(platform, "no-url")
    built = []
    assert callback_enqueue(upload=upload, event_type="upload.tagged", payload=built.append) is None
    assert built == [], "reading the upload back for a payload nobody receives is a quarter of a detection batch"
    Platform.objects.filter(pk=upload.platform_id).update(callback_url="https://platform.example/hooks")
    upload.platform.refresh_from_db()
    delivery = callback_enqueue(
        upload=upload, event_type="upload.tagged", payload=lambda u: {"external_id": u.external_id}
    )
    assert delivery.payload["data"] == {"external_id": "no-url"} and delivery.payload["type"] == "upload.tagged"


def _pending_delivery(platform, external_id: str) -> CallbackDelivery:
    from callbacks.tasks import callback_enqueue
    from tests.conftest import scanned_upload

    upload = scanned_upload(platform, external_id)
    Platform.objects.filter(pk=upload.platform_id).update(callback_url="https://platform.example/hooks")
    upload.platform.refresh_from_db()
    return callback_enqueue(upload=upload, event_type="upload.tagged", payload=lambda u: {"id": u.external_id})


def test_a_redelivery_during_an_attempt_is_not_overwritten_by_it(platform, settings, monkeypatch):
    """The attempt's result is written to the row as it is after the POST: an admin's redelivery during the last
    attempt keeps the delivery `pending` (it used to be saved `dead` over the reset), and numbers never collide."""
    from callbacks import services
    from callbacks.tasks import callback_redeliver
    from transport.signed_post import DeliveryResult

    settings.AI_MODERATION = {**settings.AI_MODERATION, "CALLBACK_MAX_ATTEMPTS": 2}
    delivery = _pending_delivery(platform, "redelivered-meanwhile")
    CallbackDelivery.objects.filter(pk=delivery.pk).update(attempts=1)

    def post_while_an_admin_redelivers(*args, **kwargs):
        callback_redeliver(delivery=CallbackDelivery.objects.get(pk=delivery.pk), acting_user=TEST_ACTOR)
        return DeliveryResult(503, 5.0)

    monkeypatch.setattr(services, "post_signed", post_while_an_admin_redelivers)
    services.callback_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 1, "the redelivery's fresh start stands"
    assert list(delivery.attempt_log.values_list("number", "outcome")) == [(1, "failed")]


def test_the_sweeper_resends_pending_deliveries_whose_message_was_lost(platform, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from callbacks.models import CallbackDeliveryAttempt
    from callbacks.tasks import callback_deliver, callbacks_requeue

    lost, retrying, _recent, delivered = (
        _pending_delivery(platform, name) for name in ("lost", "retrying", "fresh", "ok")
    )
    long_ago = timezone.now() - timedelta(hours=3)
    CallbackDelivery.objects.filter(pk__in=[lost.pk, retrying.pk, delivered.pk]).update(created_at=long_ago)
    CallbackDelivery.objects.filter(pk=delivered.pk).update(status="delivered")
    CallbackDeliveryAttempt.objects.create(delivery=retrying, number=1, outcome="failed", status_code=503)
    sent = []
    monkeypatch.setattr(callback_deliver, "delay", sent.append)
    assert callbacks_requeue(stalled_after_seconds=7200) == 1
    assert sent == [lost.pk], "an attempt in the last two hours means a retry is still scheduled"


def test_an_attempt_that_raises_still_counts_and_ends_dead(platform, settings, monkeypatch):
    """The task's soft time limit (an endpoint dripping its headers) used to escape uncounted: the delivery stayed
    `pending` and the sweeper resent it every two hours for ever."""
    from celery.exceptions import SoftTimeLimitExceeded

    from callbacks import services

    settings.AI_MODERATION = {**settings.AI_MODERATION, "CALLBACK_MAX_ATTEMPTS": 2}
    delivery = _pending_delivery(platform, "slow-endpoint")

    def time_runs_out(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, "post_signed", time_runs_out)
    assert services.callback_attempt(delivery_id=delivery.pk).status == "pending"
    delivery = services.callback_attempt(delivery_id=delivery.pk)
    assert delivery.status == "dead" and delivery.attempts == 2
    assert "SoftTimeLimitExceeded" in delivery.last_error
    assert list(delivery.attempt_log.values_list("number", "outcome")) == [(1, "failed"), (2, "failed")]
