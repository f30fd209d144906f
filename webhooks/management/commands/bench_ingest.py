"""`manage.py bench_ingest`: the webhook ingest path under load, as production serves it, printed as one JSON object.

Starts the app under gunicorn on loopback (in a fresh temp data dir: SQLite + the filesystem broker, or the
PostgreSQL/Redis given), sends N signed upload webhooks from several load-generator processes over keep-alive
connections, then starts a Celery worker and waits until every upload has left the pipeline. The machine running
the load also runs the server, so on a small box the generator's own CPU is part of what is measured.
"""

from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image

from moderation.conf import app_setting
from scanning.tasks import DETECTOR_READY_LOG
from transport.signatures import sign

REPO_ROOT = Path(__file__).resolve().parents[3]
SLUG = "bench-ingest"

# Run in the service's environment (not this process's settings): a platform whose rate limit will not cap the bench
# (the limiter still counts every request, as in production), and with --callbacks a callback URL.
SETUP = """
import json, secrets, sys, django
django.setup()
from moderation.models import Platform
from moderation.services import COMMAND_LINE, platform_create
credentials = platform_create(
    slug=sys.argv[1] + "-" + secrets.token_hex(4), name="bench_ingest", acting_user=COMMAND_LINE
)
Platform.objects.filter(pk=credentials.platform.pk).update(
    webhook_rate_limit_per_minute=10**9, callback_url=sys.argv[2]
)
# A PostgreSQL server on this machine: its postmaster, whose process tree's CPU the bench reads per stage.
from django.db import connection
postmaster = None
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        try:
            stat = open(f"/proc/{cursor.fetchone()[0]}/stat").read()
            postmaster = int(stat.rsplit(")", 1)[1].split()[1])
        except OSError:
            pass  # not on this machine (or not visible from here)
print(json.dumps({"slug": credentials.platform.slug, "secret": credentials.webhook_secret, "postmaster": postmaster}))
"""

# Also run in the service's environment: waits until this bench's uploads have all left the pipeline (or time runs
# out) and reports where they ended. Counts only the bench's own platform, so a shared database does not skew it.
DRAIN = """
import json, sys, time, django
django.setup()
from django.db.models import Count
from callbacks.models import CallbackDelivery
from scanning.models import Scan
from moderation.models import Upload
slug, expected, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
waiting_in = sys.argv[4].split(",")  # the states this stage takes uploads out of
started = time.monotonic()
while True:
    counts = dict(Upload.objects.filter(platform__slug=slug).values_list("status").annotate(n=Count("id")))
    callbacks = dict(
        CallbackDelivery.objects.filter(platform__slug=slug).values_list("status").annotate(n=Count("id"))
    )
    pending = sum(counts.get(status, 0) for status in waiting_in) + callbacks.get("pending", 0)
    if (pending == 0 and sum(counts.values()) >= expected) or time.monotonic() - started > timeout:
        break
    time.sleep(1)
elapsed = time.monotonic() - started
scanned = Scan.objects.filter(upload__platform__slug=slug, error="").values("upload").distinct().count()
print(json.dumps({"seconds": round(elapsed, 1), "uploads": sum(counts.values()), "with_scan": scanned,
                  "by_status": counts, "pending": pending, "scans_per_s": round(scanned / elapsed, 1),
                  "callbacks": callbacks}))
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (gunicorn's or a Celery pool's workers, PostgreSQL's
    backends), from /proc: the live ones' own, plus what exited children used (PostgreSQL forks one per connection)."""
    total, stack = 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(field) for field in fields[11:15]) / ticks  # utime, stime, cutime, cstime
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jpeg(width: int, height: int, seed: int) -> bytes:
    """A photo-sized payload: gradients plus mild noise compress like a real picture (pure noise would not)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    pixels = np.clip(base + rng.integers(0, 40, size=(height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _send(job: dict[str, Any]) -> tuple[list[float], dict[str, int], float, float]:
    """One load-generator process: `threads` keep-alive connections, each sending its share of the uploads. Returns
    the latencies, the statuses, and when its sending began and ended (perf_counter, one clock for every process),
    so the timed window leaves out forking the generator and preparing the payloads."""
    images = [base64.b64encode(_jpeg(job["width"], job["height"], seed)).decode() for seed in range(4)]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def run(indices: range) -> None:
        connection = HTTPConnection("127.0.0.1", job["port"], timeout=30)
        mine: list[float] = []
        seen: Counter[str] = Counter()
        for index in indices:
            external_id = f"{job['prefix']}-{index}"
            body = json.dumps(
                {"type": "upload.created", "upload": {"external_id": external_id, "data_base64": images[index % 4]}}
            ).encode()
            headers = {
                "content-type": "application/json",
                **sign(body, secret=job["secret"], msg_id=f"msg_{external_id}"),
            }
            started = time.perf_counter()
            try:
                connection.request("POST", job["path"], body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = str(response.status)
                if response.getheader("connection", "").lower() == "close":
                    connection.close()  # a sync gunicorn worker closes after each response; reconnect next time
            except (OSError, HTTPException) as exc:
                status = type(exc).__name__
                connection.close()
            mine.append((time.perf_counter() - started) * 1000)
            seen[status] += 1
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    start, stop, threads = job["start"], job["stop"], job["threads"]
    workers = [threading.Thread(target=run, args=(range(start + t, stop, threads),)) for t in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, dict(statuses), began, time.perf_counter()


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def _answers(port: int) -> bool:
    connection = HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class Command(BaseCommand):
    help = "Load-test the signed upload webhook under gunicorn on loopback and print one JSON object."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requests", type=int, default=2000, help="signed webhooks to send (timed)")
        parser.add_argument("--concurrency", type=int, default=8, help="connections open at once, in total")
        parser.add_argument("--processes", type=int, default=2, help="load-generator processes sharing those")
        # Default: what production runs (config/gunicorn_conf.py: cores + 1 processes x 2 threads).
        parser.add_argument("--web-workers", type=int, default=(os.cpu_count() or 2) + 1, help="gunicorn processes")
        parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (gthread)")
        parser.add_argument("--image-size", default="320x240", help="WIDTHxHEIGHT of the JPEG in each webhook")
        parser.add_argument("--warmup", type=int, default=100, help="untimed requests sent first")
        parser.add_argument("--rounds", type=int, default=3, help="turns of ours then the ceiling the load is split in")
        parser.add_argument("--database-url", default="", help="PostgreSQL URL; default: SQLite in a temp dir")
        parser.add_argument("--broker-url", default="", help="Redis URL; default: the filesystem broker")
        parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for scans; 0 skips")
        parser.add_argument(
            "--callbacks",
            action="store_true",
            help="give the platform a callback URL (the server's do-nothing view), so every verdict is called back",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        width, height = (int(part) for part in options["image_size"].split("x"))
        data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT")}
        env.update(DJANGO_SETTINGS_MODULE="config.settings", MODERATION_DATA_DIR=str(data_dir))
        # The installation's model exports (one per model version), so a detect worker does not export afresh.
        if onnx_cache := app_setting("DETECTOR_ONNX_CACHE_DIR"):
            env["DETECTOR_ONNX_CACHE_DIR"] = str(onnx_cache)
        env.update(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), LOG_LEVEL="WARNING")
        # Plain HTTP on loopback, and the trivial view the ceiling is measured on.
        env.update(DJANGO_SECURE_SSL_REDIRECT="false", BENCH_SINK="true", DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost")
        if options["database_url"]:
            env["DATABASE_URL"] = options["database_url"]
        if options["broker_url"]:
            env["CELERY_BROKER_URL"] = options["broker_url"]
        manage = [sys.executable, str(REPO_ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)  # noqa: S603
        port = _free_port()
        callback_url = f"http://127.0.0.1:{port}/bench-sink" if options["callbacks"] else ""
        if callback_url:
            env["FETCH_ALLOW_LOOPBACK"] = "true"  # the platform's endpoint is this server, on loopback
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "-c", SETUP, SLUG, callback_url],
            env=env, cwd=REPO_ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        platform = json.loads(setup.stdout.splitlines()[-1])
        web_command = [sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn_conf", "config.wsgi",
                       "--bind", f"127.0.0.1:{port}", "--workers", str(options["web_workers"]),
                       "--threads", str(options["threads"])]  # fmt: skip
        log = open(data_dir / "service.log", "wb")  # web and worker; kept only until the temp dir is removed
        web = subprocess.Popen(web_command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        worker: subprocess.Popen[bytes] | None = None
        try:
            self._wait_until_up(port, web, data_dir / "service.log")
            job = {"port": port, "path": f"/webhooks/{platform['slug']}/uploads", "secret": platform["secret"],
                   "width": width, "height": height}  # fmt: skip
            self._load(job, "warm", options["warmup"], min(options["concurrency"], 4), 1)
            sink = {**job, "path": "/bench-sink"}
            self._load(sink, "sink-warm", options["warmup"], min(options["concurrency"], 4), 1)
            # The framework's ceiling, in the same run: the same load (bodies, signatures, connections) to a view of
            # the same server that reads the body and answers 202 with no work (config.urls' bench sink). Ours and
            # the ceiling take turns in rounds, so a neighbour's burst on a shared machine skews both alike.
            endpoints = {"ours": job, "ceiling": sink}
            latencies: dict[str, list[float]] = {name: [] for name in endpoints}
            statuses: dict[str, Counter[str]] = {name: Counter() for name in endpoints}
            seconds = dict.fromkeys(endpoints, 0.0)
            web_cpu = dict.fromkeys(endpoints, 0.0)
            database_cpu = 0.0  # PostgreSQL's, while ours is timed (the ceiling's view touches no database)
            postmaster = platform["postmaster"]
            round_ratios: list[float] = []
            rounds = max(1, options["rounds"])
            for round_index in range(rounds):
                count = options["requests"] * (round_index + 1) // rounds - options["requests"] * round_index // rounds
                round_seconds = {}
                for name, target in endpoints.items():
                    database_cpu_before = _cpu_seconds(postmaster) if postmaster and name == "ours" else 0.0
                    web_cpu_before = _cpu_seconds(web.pid)
                    part_latencies, part_statuses, round_seconds[name] = self._load(
                        target, f"{name}{round_index}", count, options["concurrency"], options["processes"]
                    )
                    web_cpu[name] += _cpu_seconds(web.pid) - web_cpu_before
                    if postmaster and name == "ours":
                        database_cpu += _cpu_seconds(postmaster) - database_cpu_before
                    seconds[name] += round_seconds[name]
                    latencies[name] += part_latencies
                    statuses[name].update(part_statuses)
                round_ratios.append(round(round_seconds["ceiling"] / round_seconds["ours"], 3))
            for values in latencies.values():
                values.sort()
            ours, ceiling = options["requests"] / seconds["ours"], options["requests"] / seconds["ceiling"]
            result: dict[str, Any] = {
                "requests": options["requests"],
                "concurrency": options["concurrency"],
                "load_processes": options["processes"],
                "server": f"gunicorn gthread {options['web_workers']} workers x {options['threads']} threads",
                "database": "postgresql" if options["database_url"] else "sqlite",
                # The settings' default: persistent connections on PostgreSQL, none on SQLite.
                "database_conn_max_age": int(
                    env.get("DATABASE_CONN_MAX_AGE") or ("60" if options["database_url"] else "0")
                ),
                "broker": "redis" if options["broker_url"] else "filesystem",
                "callbacks": bool(callback_url),
                "image_bytes": len(_jpeg(width, height, 0)),
                "cpu_count": os.cpu_count(),
                "seconds": round(seconds["ours"], 3),
                "req_per_s": round(ours, 1),
                "latency_ms": {
                    name: round(_percentile(latencies["ours"], fraction), 2)
                    for name, fraction in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))
                },
                "statuses": dict(statuses["ours"]),
                "errors": {status: n for status, n in statuses["ours"].items() if status != "202"},
                # CPU per request of the web server's processes (HTTP, Django, ours) and of PostgreSQL's, where it runs
                # here; the load generator's own is in neither.
                "web_cpu_ms_per_request": round(1000 * web_cpu["ours"] / options["requests"], 2),
                "database_cpu_ms_per_request": (
                    round(1000 * database_cpu / options["requests"], 2) if postmaster else None
                ),
                "ceiling": {
                    "what": "the same load to a view of the same server that reads the body and does nothing",
                    "req_per_s": round(ceiling, 1),
                    "latency_ms": {
                        name: round(_percentile(latencies["ceiling"], fraction), 2)
                        for name, fraction in (("p50", 0.50), ("p99", 0.99))
                    },
                    "errors": {status: n for status, n in statuses["ceiling"].items() if status != "202"},
                    "web_cpu_ms_per_request": round(1000 * web_cpu["ceiling"] / options["requests"], 2),
                },
                "ratio_to_ceiling": round(ours / ceiling, 3),
                "ratio_by_round": round_ratios,
            }
            if options["drain_timeout"] > 0:
                # The stages drained one after the other, each by its own worker, so each one's CPU per upload is
                # measured apart (counted from the moment the worker is ready, so start-up is not included).
                expected, timeout = options["warmup"] + options["requests"], options["drain_timeout"]
                result["drain"] = {}
                cpu_ms: dict[str, float] = {"web": round(1000 * web_cpu["ours"] / options["requests"], 2)}
                database_ms: dict[str, float] = {"web": round(1000 * database_cpu / options["requests"], 2)}
                # Each worker as production runs it: only detect workers load the model, and a detect worker's
                # clock starts once its model is warm (the ONNX export of a fresh cache is start-up, not per-upload).
                for stage, queues, waiting_in, warm_up, ready_line in (
                    ("fetch", "fetch,callbacks", "received,queued", "false", b" ready."),
                    ("detect", "detect,callbacks", "received,queued,fetched", "true", DETECTOR_READY_LOG.encode()),
                ):
                    stage_log = data_dir / f"{stage}-worker.log"
                    with open(stage_log, "wb") as stage_out:
                        worker = subprocess.Popen(  # noqa: S603 (our own worker, fixed arguments)
                            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
                             "-n", f"{stage}@%h", "--concurrency", "1", "--loglevel", "INFO"],
                            env={**env, "DETECTOR_WARM_UP": warm_up}, cwd=REPO_ROOT, stdout=stage_out,
                            stderr=subprocess.STDOUT,
                        )  # fmt: skip
                    deadline = time.monotonic() + 300
                    while ready_line not in stage_log.read_bytes() and time.monotonic() < deadline:
                        if worker.poll() is not None:
                            raise CommandError(f"{stage} worker exited:\n{stage_log.read_text()[-3000:]}")
                        time.sleep(0.2)
                    if ready_line not in stage_log.read_bytes():
                        raise CommandError(f"{stage} worker not ready in 300 s:\n{stage_log.read_text()[-3000:]}")
                    cpu_before = _cpu_seconds(worker.pid)
                    database_before = _cpu_seconds(postmaster) if postmaster else 0.0
                    drain = subprocess.run(  # noqa: S603
                        [sys.executable, "-c", DRAIN, platform["slug"], str(expected), str(timeout), waiting_in],
                        env=env, cwd=REPO_ROOT, check=True, capture_output=True, text=True,
                    )  # fmt: skip
                    stage_cpu = _cpu_seconds(worker.pid) - cpu_before
                    if postmaster:
                        database_ms[stage] = round(1000 * (_cpu_seconds(postmaster) - database_before) / expected, 2)
                    result["drain"][stage] = json.loads(drain.stdout.splitlines()[-1])
                    cpu_ms[stage] = round(1000 * stage_cpu / expected, 2)
                    worker.terminate()
                    worker.wait(timeout=60)
                    worker = None
                result["cpu_ms_per_upload"] = cpu_ms
                # PostgreSQL's own CPU for each stage's queries (its process tree, read from /proc), where it runs here.
                result["database_cpu_ms_per_upload"] = database_ms if postmaster else None
                result["cpu_ms_note"] = (
                    "CPU time of each stage's processes (the web server's over the timed load; each worker's from "
                    "ready to drained) divided by the uploads; the load generator's own CPU is not in `web`"
                )
        finally:
            for process in (worker, web):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=60)
            log.close()
            shutil.rmtree(data_dir, ignore_errors=True)
        self.stdout.write(json.dumps(result))

    def _wait_until_up(self, port: int, web: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if web.poll() is not None:
                raise CommandError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
            if _answers(port):
                return
            time.sleep(0.2)
        raise CommandError("gunicorn did not answer within 60 s")

    def _load(
        self, job: dict[str, Any], prefix: str, requests: int, concurrency: int, processes: int
    ) -> tuple[list[float], dict[str, int], float]:
        """Latencies, statuses and the seconds from the first request sent to the last answer received: the same
        fixed cost of forking and preparing the generator, left in, would weigh more on the shorter ceiling run."""
        processes = max(1, min(processes, concurrency))
        bounds = [requests * p // processes for p in range(processes + 1)]
        jobs = [
            {**job, "prefix": prefix, "start": bounds[p], "stop": bounds[p + 1],
             "threads": max(1, concurrency // processes)}
            for p in range(processes)
        ]  # fmt: skip
        # fork: the generator needs no Django, and spawning would re-import it per process
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_send, jobs)
        latencies = [value for part, _, _, _ in parts for value in part]
        statuses: Counter[str] = Counter()
        for _, part, _, _ in parts:
            statuses.update(part)
        window = max(ended for _, _, _, ended in parts) - min(began for _, _, began, _ in parts)
        return latencies, dict(statuses), window
