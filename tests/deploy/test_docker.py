"""The image builds from what the project is: every package pyproject.toml installs is copied into it."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT


def test_the_image_copies_every_package_it_installs():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = {name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    assert copied == packages, f"missing: {sorted(packages - copied)}, extra: {sorted(copied - packages)}"


def test_every_web_role_runs_the_one_gunicorn_config():
    from config import gunicorn_conf

    assert gunicorn_conf.worker_class == "gthread" and gunicorn_conf.threads >= 2
    command = '["gunicorn", "-c", "python:config.gunicorn_conf", "config.wsgi"]'
    assert command in (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert command in (REPO_ROOT / "deploy" / "k8s" / "base" / "web.yaml").read_text()
