"""`manage.py send_test_webhook`: PORT / --base-url, --url, --metadata, and the webhook path from the URLconf."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks.webhooks import Webhook

from moderation.models import Upload
from webhooks.management.commands import send_test_webhook

pytestmark = pytest.mark.django_db


class Sent:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, *, data: bytes, headers: dict[str, str], timeout: float) -> Any:
        self.calls.append({"url": url, "body": data, "headers": headers})
        return type("Response", (), {"status_code": 202, "text": '{"status": "queued"}'})()


@pytest.fixture
def sent(monkeypatch) -> Sent:
    recorder = Sent()
    monkeypatch.setattr(send_test_webhook.requests, "post", recorder)
    return recorder


def _run(*args: str) -> str:
    out = StringIO()
    call_command("send_test_webhook", *args, stdout=out)
    return out.getvalue()


def test_a_file_is_sent_signed_to_port_from_the_environment(platform, sent, monkeypatch, tmp_path):
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8not-really-a-jpeg")
    monkeypatch.setenv("PORT", "9123")
    assert _run(str(image), "--platform", "acme", "--external-id", "p-1").startswith("HTTP 202")
    (call,) = sent.calls
    assert call["url"] == "http://127.0.0.1:9123/webhooks/acme/uploads"
    event = Webhook(platform.webhook_secret).verify(call["body"], call["headers"])
    assert event["upload"]["external_id"] == "p-1" and "data_base64" in event["upload"]
    assert "metadata" not in event["upload"]


def test_url_and_metadata_with_base_url(platform, sent, monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    _run(
        "--url",
        "https://images.example/cat.png",
        "--metadata",
        '{"flagged": true, "uploader": "u-7"}',
        "--platform",
        "acme",
        "--base-url",
        "https://moderation.example/",
    )
    (call,) = sent.calls
    assert call["url"] == "https://moderation.example/webhooks/acme/uploads"
    upload = json.loads(call["body"])["upload"]
    assert upload["url"] == "https://images.example/cat.png" and "data_base64" not in upload
    assert upload["metadata"] == {"flagged": True, "uploader": "u-7"}


def test_the_path_follows_a_plugin_mount_or_path(platform, sent, settings, monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    settings.ROOT_URLCONF = "tests.plugin.host_project.urls"
    _run("--url", "https://images.example/cat.png", "--platform", "acme")
    assert sent.calls[-1]["url"] == "http://127.0.0.1:8000/marketplace/hooks/acme/uploads"
    _run("--url", "https://images.example/cat.png", "--platform", "acme", "--path", "/custom/hook")
    assert sent.calls[-1]["url"] == "http://127.0.0.1:8000/custom/hook"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "acme"], "image file or --url"),
        (["x.jpg", "--url", "https://a.example/x.png", "--platform", "acme"], "not both"),
        (["--url", "https://a.example/x.png", "--metadata", "[1]", "--platform", "acme"], "JSON object"),
        (["--url", "https://a.example/x.png", "--metadata", "{nope", "--platform", "acme"], "not JSON"),
        (["--url", "https://a.example/x.png", "--platform", "nobody"], "no platform"),
    ],
)
def test_bad_arguments_are_refused(platform, sent, args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)
    assert not sent.calls


def test_against_a_running_server(platform, live_server, settings):
    """The real request: accepted, with the URL and metadata recorded (a private URL, so it fails fast, unfetched)."""
    out = _run(
        "--url",
        "http://10.0.0.1/x.jpg",
        "--metadata",
        '{"flagged": true}',
        "--platform",
        "acme",
        "--external-id",
        "live-1",
        "--base-url",
        live_server.url,
    )
    assert out.startswith("HTTP 202"), out
    upload = Upload.objects.get(external_id="live-1")
    assert upload.source_url == "http://10.0.0.1/x.jpg" and upload.metadata == {"flagged": True}
