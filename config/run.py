"""Run the standalone service in one terminal: gunicorn (web) plus one Celery worker on every queue.

This is the laptop/demo shape of the deployment in docker/ (where web, io-worker, gpu-worker and beat are separate).
It first prepares the model (`manage.py prepare_model`: the ONNX export of every network in the cascade, about a
minute on 2 cores the first time, seconds afterwards), then starts both processes and prints "Serving on …" only once
the web server answers /healthz and the worker has logged that its model is loaded and warmed up, so the first upload
is scored at once. Stops both processes when either exits or on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from .bootstrap import prepare_data_dir
from .environment import DATA_DIR

QUEUES = "fetch,detect,callbacks,training,celery"
# scanning.tasks.DETECTOR_READY_LOG: what the worker logs once its model is warm (this script imports no Django).
DETECTOR_READY_LOG = "detector ready"
# What `make bench-first-verdict` (and a reader) waits for.
SERVING = "Serving on"
STARTUP_TIMEOUT_SECONDS = 600


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own loopback URL)
            return response.status == 200
    except OSError:
        return False


def _relay(process: subprocess.Popen[str], ready: threading.Event) -> None:
    """Copy the worker's log to our stdout, noticing the line that says its model is warm."""
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if DETECTOR_READY_LOG in line:
            ready.set()


def main() -> int:
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # Load the models when the worker starts, so the first upload is not kept waiting.
        "DETECTOR_WARM_UP": "true",
        **os.environ,
    }
    prepare_data_dir()
    data_dir = DATA_DIR

    worker_command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES]
    # --beat runs the periodic tasks (retrain, calibrate) inside this one worker: fine for one machine.
    worker_command += [
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--beat",
        "--schedule",
        str(data_dir / "beat-schedule"),
    ]
    processes: list[subprocess.Popen[str]] = []
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        # The web server needs no model: it starts while the model is prepared.
        web_command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{host}:{port}"]
        processes.append(
            subprocess.Popen([*web_command, "--workers", "2", "--access-logfile", "-"], env=env, text=True)
        )
        print("Preparing the model (first run: ONNX export of each network, about a minute; then seconds)…", flush=True)
        prepared = subprocess.run([sys.executable, "-m", "django", "prepare_model"], env=env)
        if stopping.is_set():
            return 130
        if prepared.returncode != 0:
            print("Could not prepare the model; not starting.", file=sys.stderr, flush=True)
            return prepared.returncode or 1

        worker = subprocess.Popen(
            worker_command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        processes.append(worker)
        worker_ready = threading.Event()
        threading.Thread(target=_relay, args=(worker, worker_ready), daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        web_up = False
        while all(process.poll() is None for process in processes):
            web_up = web_up or _answers(f"http://{host}:{port}/healthz")
            if web_up and worker_ready.is_set():
                print(
                    f"{SERVING} http://{host}:{port}/  (console: /console/, API docs: /api/docs/, admin: /admin/). "
                    "Ctrl-C stops it.",
                    flush=True,
                )
                break
            if time.monotonic() > deadline:
                print(f"Not ready after {STARTUP_TIMEOUT_SECONDS} s; stopping.", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return max(abs(process.returncode or 0) for process in processes)


if __name__ == "__main__":
    raise SystemExit(main())
