"""Media on S3-compatible object storage (django-storages' S3 backend), against a real S3 API server process started
by the test session (moto's server; MinIO has no PyPI package, compose runs MinIO). Image bytes travel between the
web process and the workers only through the bucket: no stage reads another's local disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3_CREDENTIALS as CREDENTIALS
from tests.conftest import TEST_ACTOR, photo_bytes, post_webhook, scanned_upload, signed_headers, upload_body, wait_for

pytestmark = pytest.mark.scale


def _keys(client: Any) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=client.bucket).get("Contents", [])}


def test_the_settings_choose_s3_from_the_environment(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = "import json; from config import settings as s; print(json.dumps(s.STORAGES['default']))"
    env = {"MODERATION_DATA_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "x", "MEDIA_S3_BUCKET": "uploads"}
    env |= {"MEDIA_S3_ENDPOINT_URL": "http://minio:9000", "MEDIA_S3_PREFIX": "prod", **CREDENTIALS}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    storage = json.loads(result.stdout)
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["bucket_name"] == "uploads" and storage["OPTIONS"]["endpoint_url"] == "http://minio:9000"
    assert storage["OPTIONS"]["location"] == "prod" and storage["OPTIONS"]["default_acl"] is None


def test_uploads_and_heatmaps_live_in_the_bucket_and_retraining_reads_them_from_there(
    coin_model, platform, s3_bucket, settings, client
):
    from retraining.services import reviewed_images
    from reviews.services import console_user_set, review_decide

    image = photo_bytes(7)
    upload = scanned_upload(platform, "s3-photo", image=image, flagged=True)
    assert upload.status in ("tagged", "needs_review"), upload.failure_reason
    assert upload.image.name in _keys(s3_bucket)
    assert not (Path(settings.MEDIA_ROOT) / upload.image.name).exists(), "nothing on local disk"
    with upload.image.open("rb") as handle:
        assert handle.read() == image
    scan = upload.scans.get()
    assert scan.heatmap and scan.heatmap.name in _keys(s3_bucket), "flagged: its heatmap is stored with the scan"
    heatmap = client.get(
        f"/api/v1/uploads/{upload.external_id}/heatmap", HTTP_AUTHORIZATION=f"Token {platform.api_token}"
    )
    assert heatmap.status_code == 200 and b"".join(heatmap.streaming_content).startswith(b"\x89PNG")

    reviewer, _ = console_user_set(username="sam", role="lead", platforms=[], acting_user=TEST_ACTOR)
    review_decide(upload=upload, reviewer=reviewer, label="real")
    (item,) = reviewed_images()
    assert item.path.read_bytes() == image and item.label == 0, "a local copy, downloaded for training"


@pytest.mark.services
def test_a_worker_with_no_shared_disk_fetches_and_scans_from_the_bucket(
    coin_model, client, platform, s3_bucket, s3_endpoint, start_worker, tmp_path
):
    from moderation.models import Upload

    worker_media = tmp_path / "worker-media"
    start_worker(
        extra_env={
            "MEDIA_S3_BUCKET": s3_bucket.bucket,
            "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
            "MEDIA_S3_REGION": "us-east-1",
            "MEDIA_ROOT": str(worker_media),
            "DETECTOR_CHECKPOINT": str(coin_model),
            "DETECTOR_DEVICE": "cpu",
            **CREDENTIALS,
        }
    )
    ids = []
    for index in range(3):
        body = upload_body(f"s3-worker-{index}", image=photo_bytes(100 + index))
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
        assert response.status_code == 202
        ids.append(response.json()["upload_id"])
    wait_for(lambda: Upload.objects.filter(id__in=ids, status__in=["tagged", "needs_review"]).count() == 3, timeout=90)
    stored = _keys(s3_bucket)
    assert all(Upload.objects.get(id=i).image.name in stored for i in ids)
    assert not any(worker_media.rglob("*.bin")), "the worker read the images from the bucket, not its own disk"
