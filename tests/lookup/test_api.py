"""Tag lookup API: token auth, tenant isolation, listing and the OpenAPI schema."""

from __future__ import annotations

import threading

import pytest
import yaml
from django.db import connection, connections, transaction

from moderation.models import Upload, UploadStatus
from scanning.models import Tag, TagSource
from tests.conftest import api_get, post_webhook, signed_headers, upload_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def tagged_upload(client, platform, django_capture_on_commit_callbacks):
    body = upload_body("item-7")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 202
    return response.json()


def test_lookup_needs_a_token(client, tagged_upload):
    response = client.get("/api/v1/uploads/item-7")
    assert response.status_code == 401
    assert api_get(client, "/api/v1/uploads/item-7", "mod_wrong").status_code == 401


def test_platform_cannot_read_another_platforms_upload(client, tagged_upload, other_platform):
    response = api_get(client, "/api/v1/uploads/item-7", other_platform.api_token)
    assert response.status_code == 404
    listing = api_get(client, "/api/v1/uploads", other_platform.api_token).json()
    assert listing["results"] == []


def test_same_external_id_on_two_platforms_stays_separate(
    client, platform, other_platform, django_capture_on_commit_callbacks
):
    for credentials, slug in ((platform, "acme"), (other_platform, "globex")):
        body = upload_body("shared-id")
        with django_capture_on_commit_callbacks(execute=True):
            assert post_webhook(client, slug, body, signed_headers(body, credentials.webhook_secret)).status_code == 202
    a = api_get(client, "/api/v1/uploads/shared-id", platform.api_token).json()
    b = api_get(client, "/api/v1/uploads/shared-id", other_platform.api_token).json()
    assert a["upload_id"] != b["upload_id"]


def test_listing_filters_by_tag(client, platform, tagged_upload):
    tag = Tag.objects.get(upload_id=tagged_upload["upload_id"]).name
    hits = api_get(client, f"/api/v1/uploads?tag={tag}", platform.api_token).json()["results"]
    assert [item["external_id"] for item in hits] == ["item-7"]
    other = "likely-real" if tag != "likely-real" else "ai-generated"
    assert api_get(client, f"/api/v1/uploads?tag={other}", platform.api_token).json()["results"] == []
    bad = api_get(client, "/api/v1/uploads?status=sideways", platform.api_token)
    assert bad.status_code == 400 and "status" in bad.json()["fields"]


def test_openapi_schema_and_swagger_ui_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/webhooks/{platform}/uploads" in schema.content
    assert b"/api/v1/uploads/{external_id}" in schema.content
    paths = yaml.safe_load(schema.content)["paths"].values()
    operations = [operation["operationId"] for path in paths for operation in path.values()]
    assert len(operations) == len(set(operations)), operations  # no generated "_2" twins
    assert {"upload_retrieve", "upload_heatmap_retrieve", "upload_list"} <= set(operations)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content and b"swagger-ui" in docs.content


def test_heatmap_is_served_as_png_made_on_demand_when_missing(client, platform, tagged_upload):
    from scanning.models import Scan

    scan = Scan.objects.get(upload_id=tagged_upload["upload_id"])
    Scan.objects.filter(pk=scan.pk).update(heatmap="")  # as for a likely-real upload, which stores none at scan time
    detail = api_get(client, "/api/v1/uploads/item-7", platform.api_token).json()
    assert detail["heatmap_url"] == "/api/v1/uploads/item-7/heatmap"
    first = api_get(client, detail["heatmap_url"], platform.api_token)
    assert first.status_code == 202 and first["Retry-After"] == "2"
    second = api_get(client, detail["heatmap_url"], platform.api_token)  # the eager task has made it by now
    assert second.status_code == 200 and second["Content-Type"] == "image/png"
    assert b"".join(second.streaming_content).startswith(b"\x89PNG")


def test_heatmap_of_another_platforms_upload_is_404(client, tagged_upload, other_platform):
    assert api_get(client, "/api/v1/uploads/item-7/heatmap", other_platform.api_token).status_code == 404


def test_heatmap_lookup_still_answers_while_the_cache_is_down(client, platform, tagged_upload, monkeypatch):
    from django.core.cache import cache

    from scanning.models import Scan

    Scan.objects.filter(upload_id=tagged_upload["upload_id"]).update(heatmap="")

    def unreachable(*args, **kwargs):
        raise ConnectionError("redis is restarting")

    monkeypatch.setattr(cache, "add", unreachable)
    response = api_get(client, "/api/v1/uploads/item-7/heatmap", platform.api_token)
    assert response.status_code == 202  # queued anyway (the task is idempotent), not a 500


def test_heatmap_lookup_still_answers_while_the_broker_is_down(client, platform, tagged_upload, monkeypatch):
    from kombu.exceptions import OperationalError

    from scanning import tasks
    from scanning.models import Scan

    Scan.objects.filter(upload_id=tagged_upload["upload_id"]).update(heatmap="")
    published = []

    def broker_down(scan_id):
        published.append(scan_id)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.scan_heatmap, "delay", broker_down)
    for _ in range(2):
        response = api_get(client, "/api/v1/uploads/item-7/heatmap", platform.api_token)
        assert response.status_code == 202 and response["Retry-After"] == "2"
    assert len(published) == 2, "a poll that could not queue it leaves the next poll free to"


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_lookup_never_shows_a_result_committed_after_it_read_the_status(client, platform):
    """The upload's row and its tags are separate queries: a worker's commit between them must not show in part."""
    body = upload_body("read-once")
    assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
    upload_id = Upload.objects.get(external_id="read-once").pk
    committed = []

    def worker_tags_it() -> None:
        try:
            with transaction.atomic():
                Upload.objects.filter(pk=upload_id).update(status=UploadStatus.TAGGED)
                Tag.objects.create(upload_id=upload_id, name="ai-generated", source=TagSource.AUTO)
            committed.append(True)
        finally:
            connections.close_all()

    def commit_after_the_upload_row_is_read(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        result = execute(sql, params, many, context)
        if not committed and 'FROM "moderation_upload"' in sql:
            thread = threading.Thread(target=worker_tags_it)
            thread.start()
            thread.join(timeout=10)
        return result

    with connection.execute_wrapper(commit_after_the_upload_row_is_read):
        seen = api_get(client, "/api/v1/uploads/read-once", platform.api_token).json()
    assert committed, "the worker's commit did not happen during the lookup"
    # Read before the worker's commit, both: the status it had and no tag yet.
    assert seen["status"] != UploadStatus.TAGGED and seen["tags"] == []
    after = api_get(client, "/api/v1/uploads/read-once", platform.api_token).json()
    assert after["status"] == UploadStatus.TAGGED and [tag["name"] for tag in after["tags"]] == ["ai-generated"]
