"""Run the standalone service in one terminal: gunicorn (web) plus one Celery worker on every queue.

This is the laptop/demo shape of the deployment in docker/ (where web, io-worker, gpu-worker and beat are separate).
Stops both processes when either exits or on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

QUEUES = "fetch,detect,callbacks,training,celery"


def main() -> int:
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    env = {
        "DJANGO_SETTINGS_MODULE": "moderation.project.settings",
        # Load the models when the worker starts, so the first upload is not kept waiting.
        "DETECTOR_WARM_UP": "true",
        **os.environ,
    }
    data_dir = Path(env.get("MODERATION_DATA_DIR", Path.cwd() / "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    worker_command = [sys.executable, "-m", "celery", "-A", "moderation.project", "worker", "-Q", QUEUES]
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
    worker = subprocess.Popen(worker_command, env=env)
    web_command = [sys.executable, "-m", "gunicorn", "moderation.project.wsgi", "--bind", f"{host}:{port}"]
    web = subprocess.Popen([*web_command, "--workers", "2", "--access-logfile", "-"], env=env)
    print(f"Service on http://{host}:{port}/  (API docs: /api/docs/, admin: /admin/). Ctrl-C stops it.", flush=True)
    processes = [worker, web]

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
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
