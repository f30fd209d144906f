"""The apps installed into someone else's Django project, with its own settings and URL prefixes."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, SHIPPED_MODEL_VERSIONS


def _host_env(tmp_path, **extra):
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")},
        "HOST_DB": str(tmp_path / "host.sqlite3"),
        "HOST_MEDIA": str(tmp_path / "media"),
        **extra,
    }


def test_apps_work_as_a_plugin_in_a_host_project(tmp_path):
    env = _host_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "tests.plugin.host_project.scenario"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["accepted"] == 202
    assert outcome["status_url"] == "/marketplace/ai-tags/uploads/p1"
    assert outcome["lookup"]["status"] in ("tagged", "needs_review")
    assert outcome["lookup"]["verdict"]["model_version"] in SHIPPED_MODEL_VERSIONS
    status, ready = outcome["readyz"]
    assert status == 200 and ready["status"] == "ready", ready


CHECK = (
    "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.plugin.host_project.settings'; django.setup(); "
    "from django.core.management import call_command; call_command('check')"
)


def test_a_host_without_a_celery_broker_fails_its_system_checks(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO_ROOT, env=_host_env(tmp_path), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "moderation.E001" in result.stderr and "CELERY_BROKER_URL" in result.stderr


def test_a_host_with_a_celery_broker_passes_them(tmp_path):
    env = _host_env(tmp_path, CELERY_BROKER_URL="redis://redis.internal:6379/0")
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
