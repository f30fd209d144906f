"""What every entry point reads from the environment before Django starts: where local data lives, and debug mode.

Pure reads: importing this (or the settings built on it) creates no file or folder.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DATA_DIR = Path(env.str("MODERATION_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A debug install without DJANGO_SECRET_KEY keeps a random key here (made by `config.bootstrap`), shared by its web
# server and workers and kept across restarts.
DEBUG_SECRET_KEY_FILE = DATA_DIR / "secret_key"
FILESYSTEM_BROKER_DIR = DATA_DIR / "broker"
