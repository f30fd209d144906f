import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_web_code_paths_do_not_load_torch(tmp_path):
    """Web processes stay light: only workers that score images import torch and the models."""
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup(); "
        "import config.urls, fetching.tasks, scanning.tasks, webhooks.views, lookup.views, reviews.services; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        check=True,
        env={"MODERATION_DATA_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "web-process-test"},
    )
