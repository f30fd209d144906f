"""The apps installed into someone else's Django project, with its own settings and URL prefixes."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, SHIPPED_CNN_VERSION


def test_apps_work_as_a_plugin_in_a_host_project(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "HOST_DB": str(tmp_path / "host.sqlite3"),
        "HOST_MEDIA": str(tmp_path / "media"),
    }
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
    assert outcome["lookup"]["verdict"]["model_version"] == SHIPPED_CNN_VERSION
