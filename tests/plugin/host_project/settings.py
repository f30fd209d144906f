"""A minimal Django site of a platform that installs our apps as a plugin. It shares no settings with ours."""

import os

SECRET_KEY = "host-project-test-key"
DEBUG = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
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
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.plugin.host_project.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["HOST_DB"]}}
MEDIA_ROOT = os.environ["HOST_MEDIA"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
AI_MODERATION = {"DETECTOR_DEVICE": "cpu"}
