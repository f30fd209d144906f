"""The Prometheus endpoint: pipeline state from the database, webhook counters, closed unless a token or
METRICS_PUBLIC opens it."""

import pytest

from tests.conftest import post_webhook, signed_headers, upload_body

pytestmark = pytest.mark.django_db


def _metric(text: str, name: str) -> float:
    """A sample's value; 0 when absent (a labelled counter appears only once incremented)."""
    line = next((line for line in text.splitlines() if line.startswith(name + " ")), f"{name} 0")
    return float(line.rsplit(" ", 1)[1])


def test_metrics_report_uploads_queue_depth_and_webhook_counts(
    client, platform, settings, django_capture_on_commit_callbacks
):
    settings.METRICS_PUBLIC = True
    before = client.get("/metrics").content.decode()
    body = upload_body("m-1")
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    post_webhook(client, "acme", body, {})  # unsigned: a 401
    text = client.get("/metrics").content.decode()
    tagged = _metric(text, 'moderation_uploads{status="tagged"}') + _metric(
        text, 'moderation_uploads{status="needs_review"}'
    )
    assert tagged == 1
    assert _metric(text, "moderation_queue_depth") == 0
    assert _metric(text, "moderation_scans_last_hour") == 1
    for status in ("202", "401"):
        name = f'moderation_webhook_requests_total{{status="{status}"}}'
        assert _metric(text, name) == _metric(before, name) + 1


def test_metrics_token_is_enforced_when_set(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer café").status_code == 401, "not a 500"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    settings.METRICS_PUBLIC = True  # opening it does not drop a token that is set
    assert client.get("/metrics").status_code == 401


def test_metrics_are_closed_without_a_token_unless_opened(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_PUBLIC = "", False
    response = client.get("/metrics")
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.content.decode() and "METRICS_PUBLIC=true" in response.content.decode()
    assert b"moderation_uploads" not in response.content
    settings.METRICS_PUBLIC = True
    response = client.get("/metrics")
    assert response.status_code == 200 and b"moderation_uploads" in response.content
