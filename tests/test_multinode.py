"""Two nodes that share no filesystem: each its own process group (gunicorn, a fetch worker, a detection worker) with
its own data directory, sharing only PostgreSQL, the Redis broker and the object store (an S3 API server process).
200 signed uploads over HTTP, spread over both nodes' web servers, all end scored with their images read from the
bucket by whichever node's workers took them; then node A's detection worker is killed mid-stream (SIGKILL) and
node B drains the rest."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.detector.conftest import write_tiny
from tests.test_faults import (
    N_UPLOADS,
    PG_BIN,
    REDIS_SERVER,
    SCORED_STATUSES,
    Burst,
    PrivatePostgres,
    PrivateRedis,
    Stack,
    _wait_until,
    service_env,
)

pytestmark = [pytest.mark.services, pytest.mark.scale, pytest.mark.timeout(420)]


@pytest.fixture
def two_nodes(tmp_path: Path, s3_endpoint: str, s3_bucket) -> Iterator[tuple[Stack, Stack]]:
    if PG_BIN is None or REDIS_SERVER is None:
        pytest.skip("needs PostgreSQL server binaries and redis-server to start private servers")
    import subprocess
    import sys

    postgres = PrivatePostgres()
    redis = PrivateRedis(tmp_path)
    postgres.start()
    redis.start()
    s3 = {
        "MEDIA_S3_BUCKET": s3_bucket.bucket,
        "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
        "MEDIA_S3_REGION": "us-east-1",
        "MEDIA_S3_ACCESS_KEY_ID": "test-key",
        "MEDIA_S3_SECRET_ACCESS_KEY": "test-secret",
    }
    nodes = []
    for name in ("node-a", "node-b"):
        root = tmp_path / name
        root.mkdir()
        # Each node loads the model from its own copy: nothing on disk is shared.
        model = write_tiny(root / "model", "test_efficientnet", seed=0, head_scale=1.0)
        env = service_env(root, database_url=postgres.url, broker_url=redis.url, model=model, **s3)
        nodes.append(Stack(root=root, postgres=postgres, redis=redis, env=env))
    # One secret key for both, as one deployment's nodes share it (sessions, the cache namespace).
    secret = uuid.uuid4().hex
    for node in nodes:
        node.env["DJANGO_SECRET_KEY"] = secret
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO_ROOT, env=nodes[0].env, check=True,
                   capture_output=True)  # fmt: skip
    try:
        nodes[0].start_all(sweeper=False)  # exactly one beat in a deployment: node B runs the sweeper
        nodes[1].start_all()
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop_all()
        redis.stop()
        postgres.stop()


def test_two_nodes_share_only_database_broker_and_bucket(two_nodes: tuple[Stack, Stack], s3_bucket) -> None:
    node_a, node_b = two_nodes
    burst = Burst(node_a, "two-nodes", targets=[node_a.base_url, node_b.base_url])
    futures = burst.paced()

    def scored() -> int:
        return sum(1 for status, _, _ in burst.outcomes().values() if status in SCORED_STATUSES)

    _wait_until(lambda: scored() >= N_UPLOADS // 4 and node_a.redis.unacked("detect") > 0, timeout=120)
    before_kill = scored()
    node_a.kill("detect-worker")  # SIGKILL to node A's detection worker and its pool child
    burst.phase = "node-a-detect-killed"
    time.sleep(1)
    burst.finish(futures)
    outcomes = burst.assert_none_lost()
    assert all(status in SCORED_STATUSES for status, _, _ in outcomes.values()), Counter(outcomes.values())
    assert len(outcomes) == N_UPLOADS and before_kill < N_UPLOADS, "the kill landed mid-stream"

    stored = {item["Key"] for page in s3_bucket.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket.bucket)
              for item in page.get("Contents", [])}  # fmt: skip
    assert sum(1 for key in stored if key.startswith("uploads/")) == N_UPLOADS, "every image is in the bucket"
    for node in (node_a, node_b):
        media = Path(node.env["MODERATION_DATA_DIR"]) / "media"
        assert not any(media.rglob("*.bin")), f"{node.root.name} kept an image on its own disk"
    for name in ("web", "fetch-worker"):
        assert node_a.processes[name].poll() is None and node_b.processes[name].poll() is None, f"{name} died"
    assert node_b.processes["detect-worker"].poll() is None
    print(f"two-nodes: {before_kill} scored before node A's detection worker was killed, the rest by node B")
