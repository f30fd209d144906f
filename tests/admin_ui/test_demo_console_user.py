"""make run's console lead keeps its password across runs unless asked to rotate it."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("demo_console_user", *args, stdout=out)
    return out.getvalue()


def _password(output: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("password:"))


def _can_log_in(password: str) -> bool:
    return authenticate(RequestFactory().post("/console/login/"), username="demo-lead", password=password) is not None


def test_first_run_prints_a_password_later_runs_keep_it_rotate_replaces_it():
    first = _password(_run())
    assert _can_log_in(first)
    again = _run()
    assert "unchanged" in again and first not in again
    assert _can_log_in(first), "a second make run must not change the password"
    rotated = _password(_run("--rotate"))
    assert rotated != first and _can_log_in(rotated) and not _can_log_in(first)
