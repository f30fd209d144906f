"""From a fresh clone's state to the first verdict: `make run`'s steps in an empty data dir (new SQLite database, empty
ONNX cache), then one `send_test_webhook`, then the lookup API polled until the upload is scored. Prints one JSON
object with the seconds each stage took; the service is stopped and the data dir deleted afterwards.
"""

from __future__ import annotations

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
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

# What `config.run` prints once it serves (config.run.SERVING; the apps never import the standalone project).
SERVING = "Serving on"


REPO_ROOT = Path(settings.BASE_DIR)
DEFAULT_IMAGE = REPO_ROOT / "tests" / "detector" / "fixtures" / "camera.jpg"
DONE = ("tagged", "needs_review", "failed")
# Everything that would point the run away from the embedded defaults of a fresh clone.
NOT_INHERITED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "DETECTOR_CHECKPOINT",
    "DETECTOR_ONNX_CACHE_DIR",
    "DETECTOR_CPU_RUNTIME",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
)


def _manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """One `manage.py` command in the fresh data dir, as a user would type it (fixed argument lists)."""
    command = [sys.executable, str(REPO_ROOT / "manage.py"), *args]
    return subprocess.run(command, env=env, cwd=REPO_ROOT, check=check, capture_output=True, text=True)  # noqa: S603


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = (
        "Time a first run: make run's steps in a fresh data dir with an empty ONNX cache, one send_test_webhook at "
        "'Serving', the lookup API polled until the verdict. Prints JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
        parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for 'Serving' and the verdict")
        parser.add_argument("--keep", action="store_true", help="keep the data dir (and its ONNX cache)")

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="bench-first-verdict-"))
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env["MODERATION_DATA_DIR"], env["PORT"] = str(data_dir), str(port)
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        run: subprocess.Popen[str] | None = None
        try:
            started = time.monotonic()
            # make run's steps before the service (install is done: this runs from the venv).
            _manage("migrate", "--noinput", env=env)
            _manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
            created = _manage("platform_create", "demo", "--json", env=env)
            token = json.loads(created.stdout.strip().splitlines()[-1])["api_token"]
            _manage("demo_console_user", env=env)
            setup_s = time.monotonic() - started

            run_started = time.monotonic()
            run = subprocess.Popen(
                [sys.executable, "-m", "config.run"],
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            marks: dict[str, float] = {}
            log: list[str] = []
            serving = threading.Event()

            def read() -> None:
                assert run is not None and run.stdout is not None
                for line in run.stdout:
                    log.append(line)
                    if line.startswith("Model ready"):
                        marks.setdefault("model_prepared", time.monotonic())
                    if line.startswith(SERVING):
                        marks.setdefault("serving", time.monotonic())
                        serving.set()

            threading.Thread(target=read, daemon=True).start()
            if not serving.wait(options["timeout"]):
                raise CommandError("no 'Serving' line in time:\n" + "".join(log[-40:]))
            serving_at = marks["serving"]

            external_id = "first-verdict"
            sent = _manage(
                "send_test_webhook", str(options["image"]), "--external-id", external_id, env=env, check=False
            )
            accepted_at = time.monotonic()
            if not sent.stdout.startswith("HTTP 202"):
                raise CommandError(f"webhook not accepted: {sent.stdout}{sent.stderr}")

            lookup = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/uploads/{external_id}", headers={"Authorization": f"Token {token}"}
            )
            body: dict[str, Any] = {}
            while time.monotonic() - serving_at < options["timeout"]:
                with urllib.request.urlopen(lookup, timeout=5) as response:  # noqa: S310 (our own loopback URL)
                    body = json.loads(response.read())
                if body.get("status") in DONE:
                    break
                time.sleep(0.1)
            verdict_at = time.monotonic()
            if body.get("status") not in DONE:
                raise CommandError(f"no verdict within {options['timeout']} s of serving: {body}")
        finally:
            if run is not None and run.poll() is None:
                os.killpg(run.pid, signal.SIGINT)
                try:
                    run.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, signal.SIGKILL)
            if not options["keep"]:
                shutil.rmtree(data_dir, ignore_errors=True)

        verdict = body.get("verdict") or {}
        result = {
            "setup_s": round(setup_s, 1),  # migrate, collectstatic, demo platform and console user
            "model_prepare_s": round(marks["model_prepared"] - run_started, 1) if "model_prepared" in marks else None,
            "start_to_serving_s": round(serving_at - run_started, 1),
            "serving_to_webhook_accepted_s": round(accepted_at - serving_at, 1),  # send_test_webhook, a new process
            "webhook_accepted_to_verdict_s": round(verdict_at - accepted_at, 2),
            "serving_to_verdict_s": round(verdict_at - serving_at, 1),
            "status": body.get("status"),
            "verdict": {key: verdict.get(key) for key in ("label", "path", "model_version", "latency_ms")},
            "cpu_count": os.cpu_count(),
            "data_dir": str(data_dir) if options["keep"] else None,
        }
        self.stdout.write(json.dumps(result))
