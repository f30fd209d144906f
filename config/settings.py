"""Settings of the standalone service, read from the environment in this one place.

Unset variables fall back to embedded defaults that run on a laptop with no servers: SQLite, kombu's filesystem
broker and media on local disk, all under MODERATION_DATA_DIR (default: ./var). Production sets DATABASE_URL
(PostgreSQL), CELERY_BROKER_URL (Redis or RabbitMQ), DJANGO_SECRET_KEY, DJANGO_DEBUG=false and DJANGO_ALLOWED_HOSTS;
DJANGO_DEBUG=false also turns on HTTPS-only cookies, the HTTPS redirect and HSTS (each can be switched off by its own
variable), so `manage.py check --deploy` passes with that environment.

Importing this module reads the environment and files only; `config.bootstrap` makes the data folder beforehand.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

# BASE_DIR, DATA_DIR and DEBUG are settings too (the apps read DATA_DIR).
from .environment import BASE_DIR, DATA_DIR, DEBUG, DEBUG_SECRET_KEY_FILE, FILESYSTEM_BROKER_DIR, env  # noqa: F401


def _secret_key() -> str:
    """Production must set DJANGO_SECRET_KEY; a debug install gets a random key kept in its data dir."""
    key = env.str("DJANGO_SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise environ.ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")
    if not DEBUG_SECRET_KEY_FILE.exists():
        raise environ.ImproperlyConfigured(
            f"no DJANGO_SECRET_KEY and no debug key at {DEBUG_SECRET_KEY_FILE}: start through manage.py, `make run` or "
            "`python -m config.bootstrap`, which make one, or set DJANGO_SECRET_KEY"
        )
    return DEBUG_SECRET_KEY_FILE.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Kubernetes' probes (and a Prometheus scraping pods) ask for the pod's own address as the host: the manifests pass it
# in from the downward API, or every probe would be refused as a disallowed host.
if POD_IP := env.str("POD_IP", default=""):
    ALLOWED_HOSTS.append(f"[{POD_IP}]" if ":" in POD_IP else POD_IP)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS: secure by default in production (DJANGO_DEBUG=false), off in the embedded defaults, which serve plain HTTP on
# loopback. Each switch has its own variable for a deployment that needs it otherwise.
_production = not DEBUG
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=_production)
# Orchestrator probes and Prometheus usually reach a pod directly over plain HTTP, not through the TLS proxy: a redirect
# to https:// would fail them. (/metrics is still closed without its bearer token.)
SECURE_REDIRECT_EXEMPT = env.list("DJANGO_SECURE_REDIRECT_EXEMPT", default=[r"^healthz$", r"^readyz$", r"^metrics$"])
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=_production)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=_production)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if _production else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_production)
# The header alone enrols nobody: a domain joins browsers' preload lists only when its owner submits it.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=_production)
# Opt-in, and only behind a proxy that always sets (and never forwards a client's) header, e.g.
# DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https. Trusting it without such a proxy lets any client claim
# HTTPS.
_proxy_ssl_header = env.list("DJANGO_SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise environ.ImproperlyConfigured("DJANGO_SECURE_PROXY_SSL_HEADER is HEADER,value: HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "moderation",
    "webhooks",
    "fetching",
    "scanning",
    "hashbank",
    "registry",
    "callbacks",
    "compliance",
    "reviews",
    "retraining",
    "lookup",
    "admin_ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a lockout into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write the same file: wait for locks instead of failing, and keep tests on disk
    # so a worker process can see the test database.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
# Persistent connections (checked before each request) on PostgreSQL: a new connection per request cost the webhook
# 25-60 % of its throughput in `make bench-ingest`. SQLite opens a file; nothing to keep.
_sqlite = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0 if _sqlite else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if not _sqlite:
    # Prepared statements for what binds on the server: only the webhook's insert does (Django's own cursors bind on
    # the client and are never prepared). Parsing and planning it afresh cost PostgreSQL 0.13-0.15 ms of its 0.6-0.8 ms
    # per webhook. Off behind a pooler in transaction mode that does not track them (PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", 5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`. Without a token the endpoint answers 403
# unless METRICS_PUBLIC=true opens it to anyone who can reach it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
# `manage.py bench_ingest` measures the framework's ceiling on a do-nothing view that exists only when this is set.
BENCH_SINK = env.bool("BENCH_SINK", default=False)

# Login throttling (django-axes) for the console and the Django admin: after LOGIN_FAILURE_LIMIT wrong passwords for
# one username from one address, that pair is refused (429, even with the right password) for LOGIN_COOLOFF_MINUTES.
# Attempts are rows in the database, so every web process sees them and the admin lists them ("Access attempts");
# `manage.py axes_reset` lifts every lockout, `axes_reset_username <name>` one user's.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15.0))
# Username and address together: nobody can lock a moderator out from other addresses by failing on purpose; an
# address still gets LOGIN_FAILURE_LIMIT tries per username.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner from every manage.py command; lockouts are still logged
# Behind N reverse proxies, the client is the Nth address from the right of X-Forwarded-For (TRUSTED_PROXY_COUNT=N);
# with 0 (the default) it is the connection's own address, which a client cannot forge.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
# Media (upload images, heatmaps) on local disk under MEDIA_ROOT by default; on S3-compatible object storage (AWS S3,
# MinIO, Cloudflare R2, GCS's S3 API) when MEDIA_S3_BUCKET is set, so web, fetch and detect workers on different
# machines share it. Without MEDIA_S3_ACCESS_KEY_ID boto3 finds credentials itself (AWS_* variables, an IAM role).
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="") or None,
            "access_key": env.str("MEDIA_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("MEDIA_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("MEDIA_S3_PREFIX", default=""),
            # Uploads are private: nothing is public-read, and names never overwrite one another.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
# Webhook bodies carry base64 images; the webhook view answers 413 above AI_MODERATION["MAX_WEBHOOK_BODY_BYTES"].
DATA_UPLOAD_MAX_MEMORY_SIZE = 36 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AI-image moderation API",
    "DESCRIPTION": "Signed upload webhooks in, auto-tags out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: the filesystem transport needs no server; production points CELERY_BROKER_URL at Redis or RabbitMQ.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(FILESYSTEM_BROKER_DIR),
        "data_folder_out": str(FILESYSTEM_BROKER_DIR),
        "processed_folder": str(FILESYSTEM_BROKER_DIR / "processed"),
        "control_folder": str(FILESYSTEM_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ: every queue is a quorum queue (replicated and durable, so a broker restart or a lost node keeps the
    # messages), each publish waits for the broker's confirm, and with acks_late (below) a message is acknowledged only
    # after its task ran, so a worker killed mid-task has it redelivered. Retries' countdowns use RabbitMQ's native
    # delayed delivery (quorum queues have no per-message ETA hold).
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# The detection worker batches what it has prefetched, so it must be allowed to hold a full batch.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=64)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after every task unless this is set, so each task
# paid a new PostgreSQL connection: a forked backend, 6 of the fetch stage's 13 ms of CPU per upload (`bench_ingest`).
# Workers keep them instead under Django's own rules (config/celery.py); this recycle is only a backstop.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# A webhook must answer quickly even when the broker is down: the upload is committed first and the sweeper below
# publishes it later, so publishing gives up fast instead of holding the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2


def _cache() -> dict:
    """The webhook rate limit counts here, so every web process must see the same cache.

    CACHE_URL wins. Else a Redis broker doubles as the cache (keys prefixed, 1-s timeouts; the rate limit lets requests
    through while Redis is down). Else, on the embedded defaults, a file-based cache under MODERATION_DATA_DIR: shared
    by every process on the machine with no server, and unlike a database cache it adds no writes to SQLite's single
    writer lock, which the webhooks already queue on. Its increments are read-modify-write, so concurrent requests may
    under-count by a few: fine for an abuse limit.
    """
    if env.str("CACHE_URL", default=""):
        cache = env.cache_url("CACHE_URL")
        if "redis" in cache["BACKEND"].lower():
            # As for the broker's Redis below: without timeouts an unresponsive server hangs every webhook instead of
            # letting it through, and every web thread with it.
            cache["OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1, **cache.get("OPTIONS", {})}
        return cache
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        # Keys carry a digest of the secret key: one deployment's processes share them, while two deployments (or two
        # test runs) on one Redis database never read each other's counters or heatmap markers.
        deployment = hashlib.sha256(b"ai-moderation-cache:" + SECRET_KEY.encode()).hexdigest()[:12]
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CELERY_BROKER_URL,
            "KEY_PREFIX": f"ai-moderation:{deployment}",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    return {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache" / "django"),
    }


CACHES = {"default": _cache()}

CELERY_BEAT_SCHEDULE = {
    "requeue-stalled-uploads": {
        "task": "moderation.tasks.uploads_requeue_stalled",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=60.0),
    },
    "requeue-stalled-callbacks": {
        "task": "callbacks.tasks.callbacks_requeue_stalled",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=60.0),
    },
    "retrain-weekly": {"task": "moderation.tasks.model_retrain", "schedule": crontab(minute=0, hour=3, day_of_week=0)},
    "calibrate-daily": {"task": "moderation.tasks.platforms_calibrate", "schedule": crontab(minute=30, hour=4)},
    # Platforms that turned submission on: their due statements of reasons to the DSA Transparency Database.
    "submit-statements": {"task": "compliance.tasks.statements_submit_due", "schedule": 60.0},
}

AI_MODERATION = {
    "DETECTOR_CHECKPOINT": env.str("DETECTOR_CHECKPOINT", default="") or None,
    "DETECTOR_DEVICE": env.str("DETECTOR_DEVICE", default="auto"),
    "DETECTOR_CPU_RUNTIME": env.str("DETECTOR_CPU_RUNTIME", default="auto"),
    "DETECTOR_ONNX_CACHE_DIR": env.str("DETECTOR_ONNX_CACHE_DIR", default=str(DATA_DIR / "cache" / "onnx")),
    "FETCH_ALLOW_LOOPBACK": env.bool("FETCH_ALLOW_LOOPBACK", default=False),
    "DETECTOR_MAX_BATCH_SIZE": env.int("DETECTOR_MAX_BATCH_SIZE", default=32),
    "DETECTOR_WARM_UP": env.bool("DETECTOR_WARM_UP", default=False),
    "MODEL_STORE": env.str("MODEL_STORE", default="") or None,
    "RETRAIN_BASE_DIR": env.str("RETRAIN_BASE_DIR", default="") or None,
    "EVAL_SET_DIR": env.str("EVAL_SET_DIR", default="") or None,
    "GATE_MIN_AUROC_GAIN": env.float("GATE_MIN_AUROC_GAIN", default=0.01),
    "C2PA_TRUST_ANCHORS_FILE": env.str("C2PA_TRUST_ANCHORS_FILE", default="") or None,
    "SWEEP_RECEIVED_AFTER_SECONDS": env.float("SWEEP_RECEIVED_AFTER_SECONDS", default=30.0),
    "SWEEP_STALLED_AFTER_SECONDS": env.float("SWEEP_STALLED_AFTER_SECONDS", default=900.0),
    "WEBHOOK_PUBLISH_LINGER_SECONDS": env.float("WEBHOOK_PUBLISH_LINGER_SECONDS", default=0.02),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
