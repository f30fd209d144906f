"""The inbound upload webhook: signatures, validation, idempotency and failure handling, through HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from moderation.models import Upload, UploadStatus
from scanning.models import Scan
from tests.conftest import (
    SHIPPED_MODEL_VERSIONS,
    TEST_ACTOR,
    api_get,
    photo_bytes,
    post_webhook,
    signed_headers,
    upload_body,
)
from tests.images import encode, jpeg_bytes

pytestmark = pytest.mark.django_db


def test_signed_upload_is_accepted_and_tagged(client, platform, django_capture_on_commit_callbacks):
    body = upload_body("photo-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status_url"] == "/api/v1/uploads/photo-1"
    upload = Upload.objects.get(id=data["upload_id"])
    assert upload.status in (UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW)
    assert [entry["status"] for entry in upload.status_history] == [
        "received",
        "queued",
        "fetched",
        "scanned",
        upload.status,
    ]

    lookup = api_get(client, data["status_url"], platform.api_token).json()
    assert lookup["verdict"]["model_version"] in SHIPPED_MODEL_VERSIONS
    assert 0.0 <= lookup["verdict"]["score"] <= 1.0
    assert [tag["name"] for tag in lookup["tags"]] == [lookup["verdict"]["label"]]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda h: {k: v for k, v in h.items() if k != "HTTP_WEBHOOK_SIGNATURE"}, id="missing-signature"),
        pytest.param(lambda h: {}, id="no-headers"),
        pytest.param(
            lambda h: {**h, "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA" + h["HTTP_WEBHOOK_SIGNATURE"][7:]}, id="wrong-signature"
        ),
        pytest.param(lambda h: {**h, "HTTP_WEBHOOK_SIGNATURE": "garbage-without-comma"}, id="malformed-signature"),
        pytest.param(lambda h: {**h, "HTTP_WEBHOOK_ID": "msg_other"}, id="signature-for-another-id"),
    ],
)
def test_bad_signature_is_401_and_records_nothing(client, platform, mutate):
    body = upload_body()
    response = post_webhook(client, "acme", body, mutate(signed_headers(body, platform.webhook_secret)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert not Upload.objects.exists()


def test_signature_from_another_platforms_secret_is_401(client, platform, other_platform):
    body = upload_body()
    response = post_webhook(client, "acme", body, signed_headers(body, other_platform.webhook_secret))
    assert response.status_code == 401


def test_tampered_body_is_401(client, platform):
    body = upload_body("a")
    headers = signed_headers(body, platform.webhook_secret)
    response = post_webhook(client, "acme", body.replace(b'"a"', b'"b"'), headers)
    assert response.status_code == 401


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_timestamp_outside_window_is_401(client, platform, skew):
    body = upload_body()
    headers = signed_headers(body, platform.webhook_secret, timestamp=datetime.now(tz=UTC) + skew)
    response = post_webhook(client, "acme", body, headers)
    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"].lower()


def test_unknown_platform_is_404(client, platform):
    body = upload_body()
    response = post_webhook(client, "nobody", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 404


@pytest.mark.services
def test_the_webhook_insert_is_prepared_once_per_connection(client, platform):
    from django.db import connection

    def runs_of_the_prepared_insert() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                ['WITH inserted AS (INSERT INTO "moderation_upload"%'],
            )
            return [runs for (runs,) in cursor.fetchall()]

    assert connection.vendor == "postgresql"
    before = sum(runs_of_the_prepared_insert())  # the session's connection may have prepared it in an earlier test
    for index in range(7):  # psycopg prepares a statement on its sixth run on a connection
        body = upload_body(f"prepared-{index}", image=photo_bytes(index))
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        assert response.status_code == 202
    after = runs_of_the_prepared_insert()
    assert len(after) == 1 and after[0] - before >= 2, "one statement, prepared once and run from then on"
    assert Upload.objects.filter(external_id__startswith="prepared-").count() == 7


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/*"])
def test_the_webhook_answers_json_whatever_the_sender_accepts(client, platform, accept):
    body = upload_body("accepts-html", image=photo_bytes(5))
    headers = {**signed_headers(body, platform.webhook_secret), "HTTP_ACCEPT": accept}
    accepted = post_webhook(client, "acme", body, headers)
    assert accepted.status_code == 202 and accepted["Content-Type"] == "application/json"
    assert accepted.json()["status"] == "queued"
    refused = post_webhook(client, "acme", body + b" ", headers)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_signature"


def test_malformed_json_is_400_naming_the_body(client, platform):
    body = b'{"type": "upload.created", "upload": '
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert "body" in response.json()["fields"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "upload.created", "upload": {"data_base64": "AAAA"}}, "upload.external_id"),
        ({"type": "upload.created"}, "upload"),
        ({"upload": {"external_id": "x"}}, "type"),
        ({"type": "upload.created", "upload": {"external_id": "x"}}, "upload.url"),
        ({"type": "upload.created", "upload": {"external_id": "x", "url": "not a url"}}, "upload.url"),
        (
            {"type": "upload.created", "upload": {"external_id": "x", "data_base64": "%%%not-base64"}},
            "upload.data_base64",
        ),
        ({"type": "upload.created", "upload": {"external_id": "x", "data_base64": "AAAA="}}, "upload.data_base64"),
        ({"type": "upload.created", "upload": {"external_id": "x" * 300, "data_base64": "AAAA"}}, "upload.external_id"),
        # Lone surrogates (unpaired JSON escapes) that PostgreSQL's jsonb cannot store: were a 500 after the insert.
        (
            {
                "type": "upload.created",
                "upload": {"external_id": "x", "data_base64": "AAAA", "metadata": {"k": "a\ud800"}},
            },
            "upload.metadata",
        ),
        (
            {
                "type": "upload.created",
                "upload": {"external_id": "x", "data_base64": "AAAA", "metadata": {"\udc00": 1}},
            },
            "upload.metadata",
        ),
        # A port no socket can have: accepted by Django's URLField, then every fetch attempt raised and the upload
        # stayed queued.
        (
            {"type": "upload.created", "upload": {"external_id": "x", "url": "https://example.com:99999/a.png"}},
            "upload.url",
        ),
        ([1, 2, 3], "body"),
    ],
)
def test_invalid_payload_is_400_naming_the_field(client, platform, payload, field):
    body = json.dumps(payload).encode()
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    assert not Upload.objects.exists()


def test_a_signed_webhook_id_longer_than_the_column_is_400_naming_the_header(client, platform):
    body = upload_body("long-id")
    too_long = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret, msg_id="m" * 256))
    assert too_long.status_code == 400, too_long.content  # a 500 would have the sender retry it for ever
    assert "webhook-id" in too_long.json()["fields"]
    assert not Upload.objects.exists()
    longest = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret, msg_id="m" * 255))
    assert longest.status_code == 202, longest.content


def test_unknown_event_type_is_acknowledged_and_ignored(client, platform):
    body = json.dumps({"type": "upload.deleted", "upload": {"external_id": "x"}}).encode()
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"


def test_replayed_event_returns_same_upload_and_scans_once(client, platform, django_capture_on_commit_callbacks):
    body = upload_body("replayed")
    headers = signed_headers(body, platform.webhook_secret, msg_id="msg_replay")
    with django_capture_on_commit_callbacks(execute=True):
        first = post_webhook(client, "acme", body, headers)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post_webhook(client, "acme", body, headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["upload_id"] == second.json()["upload_id"]
    assert callbacks == []
    assert Scan.objects.filter(upload_id=first.json()["upload_id"]).count() == 1


def test_secret_rotation_keeps_the_old_secret_valid_until_retired(client, platform, monkeypatch):
    from django.core.management import call_command

    from moderation.models import Platform
    from webhooks import selectors

    clock = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock[0])
    body = upload_body("rot-before")
    assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
    call_command("rotate_webhook_secret", "acme")
    new_secret, old_secret = Platform.objects.get(slug="acme").webhook_secrets
    assert old_secret == platform.webhook_secret
    # The new secret works at once, although this process keeps the platform's row from before the rotation.
    for index, secret in enumerate((new_secret, old_secret)):
        body = upload_body(f"rot-{index}")
        assert post_webhook(client, "acme", body, signed_headers(body, secret)).status_code == 202
    call_command("rotate_webhook_secret", "acme", "--retire-old")
    # A retired secret is refused once the kept row is older than WEBHOOK_PLATFORM_CACHE_SECONDS (5 s).
    clock[0] += 5.01
    body = upload_body("rot-late")
    assert post_webhook(client, "acme", body, signed_headers(body, old_secret)).status_code == 401
    assert post_webhook(client, "acme", body, signed_headers(body, new_secret)).status_code == 202


def test_each_web_process_reads_a_platform_once_per_cache_lifetime(client, platform, monkeypatch, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webhooks import selectors

    clock = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock[0])

    def platform_reads(external_id: str) -> int:
        body = upload_body(external_id)
        with CaptureQueriesContext(connection) as queries:
            assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
        return sum('FROM "moderation_platform"' in q["sql"] for q in queries.captured_queries)

    assert platform_reads("kept-1") == 1
    clock[0] += 4.99
    assert platform_reads("kept-2") == 0, "kept for WEBHOOK_PLATFORM_CACHE_SECONDS"
    clock[0] += 0.02
    assert platform_reads("kept-3") == 1, "read again once older than that"
    settings.AI_MODERATION = {**getattr(settings, "AI_MODERATION", {}), "WEBHOOK_PLATFORM_CACHE_SECONDS": 0}
    assert platform_reads("kept-5") == 1 and platform_reads("kept-6") == 1, "0 turns the cache off"


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        pytest.param(b"this is not an image at all", "not a recognised image format", id="not-an-image"),
        pytest.param(jpeg_bytes(640, 480)[:1500], "corrupt image", id="truncated-jpeg"),
        pytest.param(
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "not a recognised image format", id="pdf-named-jpg"
        ),
    ],
)
def test_corrupt_image_ends_failed_with_reason(client, platform, django_capture_on_commit_callbacks, image, reason):
    body = upload_body("broken", image=image)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 202
    upload = Upload.objects.get(id=response.json()["upload_id"])
    assert upload.status == UploadStatus.FAILED
    assert reason in upload.failure_reason
    scan = upload.scans.get()
    assert scan.error and scan.score is None
    lookup = api_get(client, "/api/v1/uploads/broken", platform.api_token).json()
    assert lookup["status"] == "failed" and reason in lookup["failure_reason"]


def test_url_to_private_address_fails_without_fetching(client, platform, django_capture_on_commit_callbacks):
    body = upload_body("internal", url="http://10.0.0.1/secret.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    upload = Upload.objects.get(id=response.json()["upload_id"])
    assert upload.status == UploadStatus.FAILED
    assert "not a public address" in upload.failure_reason


def test_oversize_body_is_413_before_reading_it(client, platform, settings):
    settings.AI_MODERATION = {**settings.AI_MODERATION, "MAX_WEBHOOK_BODY_BYTES": 10_000}
    body = upload_body("big", image=b"x" * 20_000)
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"
    assert not Upload.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 5000])
def test_a_number_json_or_the_database_cannot_hold_is_a_400_not_a_500(client, platform, number):
    """Python's json reads NaN, Infinity and 1e400 (as inf), which jsonb refuses on insert; a 5,000-digit integer
    raises past Python's digit limit. Each was a 500, which senders retry for ever."""
    body = (
        '{"type": "upload.created", "upload": {"external_id": "odd-number", "url": "https://images.example.com/a.jpg",'
        f' "metadata": {{"x": {number}}}}}}}'
    ).encode()
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 400 and response.json()["error"] == "malformed_json", response.content[:200]
    assert not Upload.objects.exists()


def test_a_content_length_that_is_not_a_number_is_refused_not_a_500(client, platform):
    body = upload_body("odd-length")
    headers = signed_headers(body, platform.webhook_secret)
    # "²" passes str.isdigit but not int(); a server in front may pass such a header through.
    response = client.post(
        "/webhooks/acme/uploads", data=body, content_type="application/json", CONTENT_LENGTH="²", **headers
    )
    assert response.status_code == 413 and not Upload.objects.exists()


def _bomb_png() -> bytes:
    return encode(Image.new("L", (12_000, 12_000)), "PNG")  # 144 MP of zeros: a few hundred KB compressed


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), color) for color in ((200, 10, 10), (10, 10, 200), (10, 200, 10))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        pytest.param(_bomb_png(), "decompression bomb", id="decompression-bomb"),
        pytest.param(encode(Image.new("L", (1, 100_000)), "PNG"), "aspect", id="1x100000"),
    ],
)
def test_hostile_images_end_failed_with_reason(client, platform, django_capture_on_commit_callbacks, image, reason):
    body = upload_body("hostile", image=image)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    upload = Upload.objects.get(id=response.json()["upload_id"])
    assert upload.status == UploadStatus.FAILED and reason in upload.failure_reason


def test_animated_gif_is_scored_from_its_first_frame(client, platform, django_capture_on_commit_callbacks):
    body = upload_body("animated", image=_animated_gif())
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    upload = Upload.objects.get(id=response.json()["upload_id"])
    assert upload.status in (UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW)


def test_broker_outage_still_answers_202_and_the_sweeper_publishes_later(
    client, platform, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from fetching import tasks
    from fetching.tasks import uploads_requeue

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.upload_fetch, "delay", broker_down)
        body = upload_body("during-outage")
        with django_capture_on_commit_callbacks(execute=True):
            response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        assert response.status_code == 202
        upload = Upload.objects.get(id=response.json()["upload_id"])
        assert upload.status == UploadStatus.RECEIVED, "not published, but recorded"
        assert uploads_requeue(received_after_seconds=0) == 0, "still down: nothing sent, nothing lost"
    with django_capture_on_commit_callbacks(execute=True):
        assert uploads_requeue(received_after_seconds=0) == 1
    upload.refresh_from_db()
    assert upload.status in (UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW)
    assert uploads_requeue(received_after_seconds=0) == 0


def test_rate_limit_answers_429_with_retry_after(client, platform):
    from django.core.cache import cache

    from moderation.models import Platform

    cache.clear()
    Platform.objects.filter(slug="acme").update(webhook_rate_limit_per_minute=2)
    codes = []
    for index in range(3):
        body = upload_body(f"rl-{index}")
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        codes.append(response.status_code)
    assert codes == [202, 202, 429]
    assert 1 <= int(response["Retry-After"]) <= 61 and response.json()["error"] == "rate_limited"
    assert Upload.objects.count() == 2


# Regressions from fuzzing (#14): external ids are any printable text, kept exactly, and always reachable.
@pytest.mark.parametrize(
    "external_id",
    [
        "https://images.example.com/a.jpg",  # a "/" answered 500 after saving, and the upload was unreachable
        "a/../b",
        "a/./b",
        "...",
        " a",
        "a ",
        "100%",
        "a?b#c",
        "ümlaut/名前",
        "x/heatmap",  # the exact id wins over the heatmap route of "x"
    ],
)
def test_any_printable_external_id_is_accepted_and_looked_up_by_its_status_url(
    client, platform, django_capture_on_commit_callbacks, external_id
):
    body = upload_body(external_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    assert "/" not in status_url.removeprefix("/api/v1/uploads/")  # one percent-encoded segment
    lookup = api_get(client, status_url, platform.api_token)
    assert lookup.status_code == 200, lookup.content
    assert lookup.json()["external_id"] == external_id
    heatmap = api_get(client, lookup.json()["heatmap_url"], platform.api_token)
    assert heatmap.status_code in (200, 202)
    assert heatmap.get("Content-Type") != "application/json" or heatmap.json() == {"status": "pending"}


def test_external_ids_differing_only_in_spaces_stay_separate(client, platform, django_capture_on_commit_callbacks):
    ids = {}
    for external_id in ("a", " a", "a "):
        body = upload_body(external_id)
        with django_capture_on_commit_callbacks(execute=True):
            response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        ids[external_id] = response.json()["upload_id"]
    assert len(set(ids.values())) == 3
    assert sorted(Upload.objects.values_list("external_id", flat=True)) == sorted(ids)


@pytest.mark.parametrize(
    ("external_id", "problem"),
    [(".", "cannot be looked up"), ("..", "cannot be looked up"), ("a\nb", "printable"), ("tab\t", "printable"),
     ("", "blank"), ("x" * 256, "255")],
)  # fmt: skip
def test_unusable_external_id_is_400_naming_the_field_and_records_nothing(client, platform, external_id, problem):
    body = upload_body(external_id)
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 400
    messages = response.json()["fields"]["upload.external_id"]
    assert any(problem in message for message in messages), messages
    assert not Upload.objects.exists()


def test_lookup_shows_the_status_history(client, platform, django_capture_on_commit_callbacks):
    body = upload_body("hist-1")
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    history = api_get(client, "/api/v1/uploads/hist-1", platform.api_token).json()["status_history"]
    assert [entry["status"] for entry in history][:4] == ["received", "queued", "fetched", "scanned"]
    assert all(datetime.fromisoformat(entry["at"]) for entry in history)
    assert history[0]["reason"] == "webhook accepted" and all(entry["reason"] for entry in history)


def test_the_webhook_writes_two_rows_in_one_statement_and_no_file(
    coin_model, client, platform, settings, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from fetching.models import PendingImage
    from fetching.tasks import upload_publish
    from moderation.models import Upload

    body = upload_body("hot-path-1", image=photo_bytes(991))
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 202
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    statements = [s for s in statements if s not in ("SAVEPOINT", "RELEASE")]  # the test's own transaction
    # The platform, then the upload (already `queued`) and its bytes: one data-modifying statement on PostgreSQL, a
    # transaction of two inserts elsewhere. No idempotency read for a new event; the publish waits for the commit.
    assert statements == (["SELECT", "WITH"] if connection.vendor == "postgresql" else ["SELECT", "INSERT", "INSERT"])
    assert response.json()["status"] == "queued"
    upload = Upload.objects.get(pk=response.json()["upload_id"])
    assert not upload.image and upload.sha256, "the request stored no file"
    assert not any(Path(settings.MEDIA_ROOT).rglob(f"{upload.sha256[:32]}*"))
    upload_publish(upload=upload, acting_user=TEST_ACTOR)  # what the commit hook does; tasks run eagerly here
    upload.refresh_from_db()
    assert upload.status in ("tagged", "needs_review") and upload.image
    assert not PendingImage.objects.filter(upload=upload).exists(), "the database keeps no second copy"
