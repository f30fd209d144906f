"""Fault tests on real services: a burst of signed webhooks over HTTP while Redis, the detection worker or PostgreSQL
goes down, and not one upload lost.

Every test runs its own PostgreSQL cluster and Redis server on free ports (never the machine's own, which other
suites use), gunicorn, a fetch worker, a detection worker on a tiny model and the sweeper, all as child processes,
and stops or kills only those. The sender behaves like a platform: it retries any answer other than 202 (a 5xx or a
refused connection while PostgreSQL restarts) with the same `webhook-id`, as Standard Webhooks senders do. "Lost"
means an upload the service answered 202 for that does not end scored (`tagged`/`needs_review`/`reviewed` with a
scan) or `failed` with its reason.

The sweeper here calls the same service as the beat-scheduled `uploads_requeue_stalled` task, every second and with
thresholds of seconds instead of minutes, so that recovery fits in a test.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests

from tests.conftest import REPO_ROOT, free_port, wait_for
from tests.detector.conftest import write_tiny
from tests.images import jpeg_bytes
from transport.signatures import sign

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

N_UPLOADS = 200
SEND_SECONDS = 8.0  # the burst is paced over this long, so a fault lands in its middle
SWEEP_RECEIVED_AFTER_SECONDS = 2
SWEEP_STALLED_AFTER_SECONDS = 8
DRAIN_TIMEOUT_SECONDS = 90
SCORED_STATUSES = ("tagged", "needs_review", "reviewed")

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
REDIS_SERVER = shutil.which("redis-server")

SWEEPER = f"""
import logging, time
import django
django.setup()
from django.db import connection
from fetching.tasks import uploads_requeue
while True:
    try:
        uploads_requeue(
            received_after_seconds={SWEEP_RECEIVED_AFTER_SECONDS}, stalled_after_seconds={SWEEP_STALLED_AFTER_SECONDS}
        )
    except Exception as exc:  # broker or database down: the next sweep tries again, as beat's next run would
        logging.warning("sweep failed: %r", exc)
    connection.close()
    time.sleep(1)
"""


# Loaded at interpreter start (as `sitecustomize`) by one test's detection worker only: its pool process dies, as on
# a fault in native decoding code or the OOM killer, whenever a batch it scores holds the poison image.
CRASH_ON_POISON = """
import os
from celery.signals import worker_process_init


@worker_process_init.connect(weak=False)
def crash_on_poison(**_):
    from detector.detector import Detector

    with open(os.environ["POISON_IMAGE_FILE"], "rb") as handle:
        poison = handle.read()
    predict = Detector.predict

    def predict_or_die(self, images, *args, **kwargs):
        if poison in images:
            os._exit(70)
        return predict(self, images, *args, **kwargs)

    Detector.predict = predict_or_die
"""


def service_env(root: Path, *, database_url: str, broker_url: str, model: Path, **extra: str) -> dict[str, str]:
    """The environment of the service's processes (web, workers, sweeper) on the given database and broker, with
    their own data directory under `root` and a tiny model."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIA_ROOT", "STATIC_ROOT", "CACHE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        MODERATION_DATA_DIR=str(root / "data"),
        DETECTOR_CHECKPOINT=str(model),
        DJANGO_DEBUG="true",
        LOG_LEVEL="WARNING",
    )
    return {**env, **extra}


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throwaway cluster in a temp dir, on its own port and socket dir, with durability off (speed, not safety)."""

    def __init__(self) -> None:
        assert PG_BIN is not None
        # Not under pytest's tmp_path: that is private to root, and the server runs as `postgres` when we are root.
        root = Path(tempfile.mkdtemp(prefix="moderation-faults-pg-"))
        self.root = root
        self.port = free_port()
        self.data = root / "pgdata"
        self.sockets = root / "pgsock"
        self.log = root / "postgres.log"
        for path in (self.data, self.sockets):
            path.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            for path in (self.data, self.sockets):
                shutil.chown(path, "postgres")
        subprocess.run(
            _as_postgres_user([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]),
            check=True,
            capture_output=True,
        )
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args]
        subprocess.run(_as_postgres_user(command), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server that keeps nothing on disk: a restart empties every queue, the worst case for the broker."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(self.root / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: _accepts(self.port), timeout=10, interval=0.05)

    def unacked(self, routing_key: str) -> int:
        """Messages consumers have taken from `routing_key`'s queue and not yet acknowledged (kombu's unacked hash)."""
        with redis.Redis(port=self.port, socket_timeout=2) as client:
            return sum(1 for value in client.hvals("unacked") if json.loads(value)[2] == routing_key)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Stack:
    """The service's processes (web, fetch worker, detection worker, sweeper) on the private servers."""

    root: Path
    # The private servers it runs on; None where it runs on servers the test does not own.
    postgres: PrivatePostgres | None
    redis: PrivateRedis | None
    env: dict[str, str]
    web_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def spawn(self, name: str, command: list[str], ready: Callable[[], bool]) -> subprocess.Popen[bytes]:
        log_path = self.root / f"{name}.log"
        with open(log_path, "ab") as log:
            # A session of its own, so a kill -9 reaches the worker's pool children too (and nothing else).
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        wait_for(lambda: process.poll() is not None or ready(), timeout=90, interval=0.2)
        assert process.poll() is None, log_path.read_text()[-3000:]
        return process

    def start_worker(self, name: str, queues: str) -> subprocess.Popen[bytes]:
        log_path = self.root / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
                   "-n", f"{name}-{os.getpid()}@%h", "--concurrency", "1", "--loglevel", "INFO",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        return self.spawn(name, command, lambda: b" ready." in log_path.read_bytes()[offset:])

    def start_all(self, *, sweeper: bool = True) -> None:
        web = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.web_port}",
               "--workers", "2", "--timeout", "30"]  # fmt: skip
        self.spawn("web", web, lambda: _accepts(self.web_port))
        self.start_worker("fetch-worker", "fetch,callbacks")
        self.start_worker("detect-worker", "detect")
        if sweeper:
            self.spawn("sweeper", [sys.executable, "-c", SWEEPER], lambda: True)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.kill(name)
            self.processes.pop(name, None)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if PG_BIN is None or REDIS_SERVER is None:
        pytest.skip("needs PostgreSQL server binaries and redis-server to start private servers")
    postgres = PrivatePostgres()
    redis = PrivateRedis(tmp_path)
    postgres.start()
    redis.start()
    model = write_tiny(tmp_path / "tiny", "test_efficientnet", seed=0, head_scale=1.0)
    env = service_env(tmp_path, database_url=postgres.url, broker_url=redis.url, model=model)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    running = Stack(root=tmp_path, postgres=postgres, redis=redis, env=env)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()
        redis.stop()
        postgres.stop()


@dataclass
class Burst:
    """A platform sending N signed uploads at a steady pace, retrying anything but 202 with the same webhook id."""

    stack: Stack
    prefix: str
    # Web servers to spread the uploads over (several nodes); the stack's own by default.
    targets: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    accepted_while: Counter[str] = field(default_factory=Counter)
    phase: str = "before"
    lock: threading.Lock = field(default_factory=threading.Lock)
    feeder: threading.Thread | None = None

    def __post_init__(self) -> None:
        created = subprocess.run(
            [sys.executable, "manage.py", "platform_create", self.prefix, "--json"],
            cwd=REPO_ROOT, env=self.stack.env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        self.secret = json.loads(created.stdout)["webhook_secret"]

    def _send_one(self, index: int) -> None:
        external_id = f"{self.prefix}-{index}"
        image = base64.b64encode(jpeg_bytes(96, 72, seed=index)).decode()
        body = json.dumps({"type": "upload.created", "upload": {"external_id": external_id, "data_base64": image}})
        session = requests.Session()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            headers = {
                "content-type": "application/json",
                **sign(body.encode(), secret=self.secret, msg_id=f"msg_{external_id}"),
            }
            try:
                base_url = self.targets[index % len(self.targets)] if self.targets else self.stack.base_url
                response = session.post(f"{base_url}/webhooks/{self.prefix}/uploads", data=body,
                                        headers=headers, timeout=10)  # fmt: skip
                answer = str(response.status_code)
            except requests.RequestException as exc:
                answer = type(exc).__name__
            with self.lock:
                self.answers[answer] += 1
                if answer == "202":
                    self.accepted.add(external_id)
                    self.accepted_while[self.phase] += 1
                    return
            time.sleep(0.3)
        raise AssertionError(f"{external_id} was never accepted; answers so far: {self.answers}")

    def paced(self) -> list[Any]:
        """Starts sending in the background, spread over SEND_SECONDS so that a fault lands mid-burst."""
        pool = ThreadPoolExecutor(max_workers=4)
        futures: list[Any] = []

        def feed() -> None:
            start = time.monotonic()
            for index in range(N_UPLOADS):
                time.sleep(max(0.0, start + index * SEND_SECONDS / N_UPLOADS - time.monotonic()))
                futures.append(pool.submit(self._send_one, index))

        self.feeder = threading.Thread(target=feed)
        self.feeder.start()
        return futures

    def finish(self, futures: list[Any]) -> None:
        assert self.feeder is not None
        self.feeder.join()
        for future in futures:
            future.result(timeout=120)
        assert len(self.accepted) == N_UPLOADS, self.answers

    def outcomes(self) -> dict[str, tuple[str, str, int]]:
        """external_id → (status, failure_reason, number of successful scans), read straight from the database."""
        with psycopg.connect(self.stack.postgres.url.replace("postgres://", "postgresql://"), connect_timeout=3) as db:
            rows = db.execute(
                """SELECT u.external_id, u.status, u.failure_reason, count(s.id) FILTER (WHERE s.error = '')
                   FROM moderation_upload u JOIN moderation_platform p ON p.id = u.platform_id
                   LEFT JOIN moderation_scan s ON s.upload_id = u.id
                   WHERE p.slug = %s GROUP BY u.id""",
                (self.prefix,),
            ).fetchall()
        return {external_id: (status, reason, scans) for external_id, status, reason, scans in rows}

    def lost(self) -> dict[str, tuple[str, str, int]]:
        """Accepted uploads that have not (yet) ended with a scan or a recorded failure."""
        outcomes = self.outcomes()
        return {
            external_id: outcomes.get(external_id, ("missing", "", 0))
            for external_id in self.accepted
            if not _ended(*outcomes.get(external_id, ("missing", "", 0)))
        }

    def assert_none_lost(self) -> dict[str, tuple[str, str, int]]:
        try:
            wait_for(lambda: not self.lost(), timeout=DRAIN_TIMEOUT_SECONDS, interval=1)
        except AssertionError:
            lost = self.lost()
            raise AssertionError(
                f"{len(lost)} of {N_UPLOADS} uploads lost, e.g. {dict(list(lost.items())[:5])}; "
                f"statuses {Counter(status for status, _, _ in lost.values())}; answers {self.answers}"
            ) from None
        outcomes = self.outcomes()
        print(  # shown with -s or -rA: what the platform saw, and where every upload ended
            f"{self.prefix}: answers {dict(self.answers)}, accepted {dict(self.accepted_while)}, "
            f"ended {dict(Counter(status for status, _, _ in outcomes.values()))}, "
            f"scans per upload {dict(Counter(scans for _, _, scans in outcomes.values()))}"
        )
        assert len(outcomes) == N_UPLOADS, "every accepted webhook recorded exactly one upload"
        return outcomes


def _ended(status: str, reason: str, scans: int) -> bool:
    return (status in SCORED_STATUSES and scans >= 1) or (status == "failed" and bool(reason))


def _wait_until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    wait_for(predicate, timeout=timeout, interval=0.05)


def test_redis_stopped_during_the_burst_and_restarted(stack: Stack) -> None:
    burst = Burst(stack, "redis-outage")
    futures = burst.paced()
    _wait_until(lambda: len(burst.accepted) >= N_UPLOADS // 4)
    stack.redis.stop()  # and with it every queued message: it keeps nothing on disk
    burst.phase = "broker-down"
    time.sleep(3)
    burst.phase = "after"
    stack.redis.start()
    burst.finish(futures)
    outcomes = burst.assert_none_lost()
    assert burst.accepted_while["broker-down"] > 0, "webhooks must still answer 202 while the broker is down"
    assert all(status in SCORED_STATUSES for status, _, _ in outcomes.values()), Counter(outcomes.values())
    for name in ("web", "fetch-worker", "detect-worker", "sweeper"):
        assert stack.processes[name].poll() is None, f"{name} died"


def test_detection_worker_killed_mid_batch_and_restarted(stack: Stack) -> None:
    burst = Burst(stack, "worker-kill")
    futures = burst.paced()

    def mid_batch() -> bool:
        """Some uploads scored already, and the worker holds detect messages it has taken but not acknowledged."""
        scored = sum(1 for status, _, _ in burst.outcomes().values() if status in SCORED_STATUSES)
        return scored > 0 and stack.redis.unacked("detect") > 0

    _wait_until(mid_batch)
    held = stack.redis.unacked("detect")
    stack.kill("detect-worker")  # SIGKILL to the worker and its pool child: nothing acked, nothing cleaned up
    time.sleep(1)
    stack.start_worker("detect-worker", "detect")
    burst.finish(futures)
    outcomes = burst.assert_none_lost()
    print(f"worker-kill: the killed worker held {held} unacknowledged detect messages")
    assert all(status in SCORED_STATUSES for status, _, _ in outcomes.values()), Counter(outcomes.values())


def test_postgres_restarted_mid_stream(stack: Stack) -> None:
    burst = Burst(stack, "pg-restart")
    futures = burst.paced()
    _wait_until(lambda: len(burst.accepted) >= N_UPLOADS // 3)
    stack.postgres.restart()
    burst.finish(futures)
    outcomes = burst.assert_none_lost()
    assert all(status in SCORED_STATUSES for status, _, _ in outcomes.values()), Counter(outcomes.values())
    # While it restarts, webhooks are refused in a way a sender retries (503 or a refused connection), never a 500.
    assert not [answer for answer in burst.answers if answer.startswith("5") and answer != "503"], burst.answers
    for name in ("web", "fetch-worker", "detect-worker", "sweeper"):
        assert stack.processes[name].poll() is None, f"{name} died"


def test_an_image_that_kills_the_detection_worker_ends_failed_and_the_rest_are_scored(
    stack: Stack, tmp_path: Path
) -> None:
    """With acks_late, a message whose task kills its worker is redelivered: without a limit, one such image would
    crash the detection worker for ever, and take every upload batched with it down each time."""
    from scanning.services import SCAN_MAX_ATTEMPTS

    poison_index = 17
    hooks = tmp_path / "crash-on-poison"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH_ON_POISON)
    (tmp_path / "poison.jpg").write_bytes(jpeg_bytes(96, 72, seed=poison_index))
    stack.kill("detect-worker")
    path = os.pathsep.join(filter(None, [str(hooks), stack.env.get("PYTHONPATH")]))
    stack.env = {**stack.env, "PYTHONPATH": path, "POISON_IMAGE_FILE": str(tmp_path / "poison.jpg")}
    stack.start_worker("detect-worker", "detect")
    burst = Burst(stack, "poison")
    burst.finish(burst.paced())
    outcomes = burst.assert_none_lost()
    failed = {external_id: reason for external_id, (status, reason, _) in outcomes.items() if status == "failed"}
    assert list(failed) == [f"poison-{poison_index}"], failed
    assert f"scoring was started {SCAN_MAX_ATTEMPTS} times and never finished" in failed[f"poison-{poison_index}"]
    assert sum(status in SCORED_STATUSES for status, _, _ in outcomes.values()) == N_UPLOADS - 1
    log = (stack.root / "detect-worker.log").read_text()
    crashes = log.count("Worker exited prematurely")
    print(f"poison: the detection worker's pool process died {crashes} times")
    assert 1 <= crashes <= SCAN_MAX_ATTEMPTS, "each of the image's starts crashed it at most once"
    assert stack.processes["detect-worker"].poll() is None, "the worker itself lives on"
