"""Production security switches come from the environment: on with DJANGO_DEBUG=false, off on the embedded defaults,
and the README's production environment passes `manage.py check --deploy` without a warning."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

from tests.conftest import REPO_ROOT

SWITCHES = [
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
]


def _env(tmp_path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "CACHE_"))}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MODERATION_DATA_DIR": str(tmp_path),
        **extra,
    }


def production_env(tmp_path) -> dict[str, str]:
    """The minimal production environment the README documents (servers left at their defaults for this check)."""
    return _env(
        tmp_path,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="moderation.example.com",
    )


def _switches(env: dict[str, str]) -> dict:
    code = "import json, sys; from config import settings as s; "
    code += "print(json.dumps({n: getattr(s, n) for n in sys.argv[1:]}))"
    result = subprocess.run(
        [sys.executable, "-c", code, *SWITCHES], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_prints_no_warnings_with_the_production_environment(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output and "WARNINGS" not in output, output


def test_production_defaults_are_secure_and_embedded_defaults_are_not(tmp_path):
    assert _switches(production_env(tmp_path)) == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": None,  # opt-in only: trusting it without a proxy lets clients claim HTTPS
    }
    embedded = _switches(_env(tmp_path, DJANGO_DEBUG="true", DJANGO_SECRET_KEY="debug"))
    assert not any(embedded.values()), embedded


def test_each_switch_has_its_own_variable(tmp_path):
    env = production_env(tmp_path) | {
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_HSTS_SECONDS": "3600",
        "DJANGO_SECURE_HSTS_PRELOAD": "false",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    }
    switches = _switches(env)
    assert switches["SECURE_SSL_REDIRECT"] is False and switches["SECURE_HSTS_SECONDS"] == 3600
    assert switches["SECURE_HSTS_PRELOAD"] is False and switches["SESSION_COOKIE_SECURE"] is True
    assert switches["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_importing_the_settings_creates_nothing(tmp_path):
    data_dir = tmp_path / "data"
    env = _env(data_dir, DJANGO_DEBUG="true", DJANGO_SECRET_KEY="debug")
    assert _switches(env)["SECURE_SSL_REDIRECT"] is False
    assert not data_dir.exists()


def test_a_debug_install_gets_its_key_from_an_entry_point_and_keeps_it(tmp_path):
    env = _env(tmp_path / "data", DJANGO_DEBUG="true")
    refused = subprocess.run(
        [sys.executable, "-c", "import config.settings"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY" in refused.stderr

    def key() -> str:
        result = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from django.conf import settings; print(settings.SECRET_KEY)",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    first = key()
    assert len(first) >= 50 and key() == first
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "broker" / "processed").is_dir()


def test_the_benchmark_sink_exists_only_while_benchmarking(client):
    assert client.post("/bench-sink", data=b"{}", content_type="application/json").status_code == 404
