"""Prepares the local data folder of the embedded defaults. Each entry point (manage.py, wsgi, asgi, `config.run`, the
test settings) calls it before Django loads the settings, which only read what is here; `python -m config.bootstrap`
does it alone (e.g. before starting a Celery worker by hand on a new data folder)."""

from __future__ import annotations

import secrets
from pathlib import Path

from .environment import DATA_DIR, DEBUG, DEBUG_SECRET_KEY_FILE, FILESYSTEM_BROKER_DIR, env


def prepare_data_dir() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if DEBUG and not env.str("DJANGO_SECRET_KEY", default="") and not DEBUG_SECRET_KEY_FILE.exists():
        DEBUG_SECRET_KEY_FILE.touch(mode=0o600)
        DEBUG_SECRET_KEY_FILE.write_text(secrets.token_urlsafe(50))
    if env.str("CELERY_BROKER_URL", default="filesystem://").startswith("filesystem://"):
        # kombu's filesystem transport lists these folders but never makes them.
        (FILESYSTEM_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static"))).mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    prepare_data_dir()
