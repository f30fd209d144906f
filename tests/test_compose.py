"""docker/compose.yml is checked as data (no Docker engine runs on CI machines): every app container reads media from
the object store and models from the shared volume, the bucket exists before any of them starts, and the broker
persists its queue."""

from __future__ import annotations

import yaml

from tests.conftest import REPO_ROOT


def test_every_app_container_shares_media_through_object_storage():
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yml").read_text())
    services = compose["services"]
    apps = {name: spec for name, spec in services.items() if spec.get("build")}
    assert {"web", "migrate", "beat"} <= set(apps)
    for name, spec in apps.items():
        env = spec["environment"]
        assert env["MEDIA_S3_BUCKET"] == "moderation-media" and env["MEDIA_S3_ENDPOINT_URL"] == "http://minio:9000", (
            name
        )
        assert "MEDIA_ROOT" not in env, name
        assert spec["depends_on"].get("minio-bucket", {}).get("condition") == "service_completed_successfully" or (
            "migrate" in spec["depends_on"]
        ), name
    assert "moderation-media" in " ".join(services["minio-bucket"]["command"])
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "miniodata", "models"}
    assert "--appendonly" in services["redis"]["command"], "the broker's queue survives a restart"
