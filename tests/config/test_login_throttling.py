"""Login throttling (django-axes) on the console login and the Django admin: after LOGIN_FAILURE_LIMIT wrong passwords
for one username from one address, even the right password is refused until the cool-off passes or an admin resets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from reviews.services import console_user_set
from tests.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

ADDRESS = "203.0.113.7"


@pytest.fixture
def lead():
    user, password = console_user_set(username="leo", role="lead", platforms=[], acting_user=TEST_ACTOR)
    return user, password


def _login(client, path: str, username: str, password: str, address: str = ADDRESS):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def _wrong_passwords(client, path: str, username: str, times: int) -> list[int]:
    return [_login(client, path, username, f"wrong-{attempt}").status_code for attempt in range(times)]


def test_console_login_locks_out_after_the_failure_limit_even_with_the_right_password(client, lead):
    _, password = lead
    limit = django_settings.AXES_FAILURE_LIMIT
    assert limit == 5  # the documented default (LOGIN_FAILURE_LIMIT)
    assert _wrong_passwords(client, "/console/login/", "leo", limit - 1) == [200] * (limit - 1)
    assert _login(client, "/console/login/", "leo", password).status_code == 302, "under the limit: still allowed"
    client.logout()

    codes = _wrong_passwords(client, "/console/login/", "leo", limit)
    assert codes[-1] == 429
    refused = _login(client, "/console/login/", "leo", password)
    assert refused.status_code == 429 and b"too many login attempts" in refused.content
    assert "_auth_user_id" not in client.session
    # Username and address together: the same moderator on another address is not locked out.
    assert _login(client, "/console/login/", "leo", password, address="198.51.100.9").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, lead):
    _, password = lead
    _wrong_passwords(client, "/console/login/", "leo", django_settings.AXES_FAILURE_LIMIT)
    assert _login(client, "/console/login/", "leo", password).status_code == 429
    cool_off = django_settings.AXES_COOLOFF_TIME
    assert cool_off == timedelta(minutes=15)  # the documented default (LOGIN_COOLOFF_MINUTES)
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - timedelta(seconds=1))
    assert _login(client, "/console/login/", "leo", password).status_code == 302


def test_an_admin_reset_lifts_the_lockout(client, lead):
    _, password = lead
    _wrong_passwords(client, "/console/login/", "leo", django_settings.AXES_FAILURE_LIMIT)
    assert _login(client, "/console/login/", "leo", password).status_code == 429
    call_command("axes_reset_username", "leo")
    assert _login(client, "/console/login/", "leo", password).status_code == 302


def test_django_admin_login_is_throttled_too(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "correct horse battery")
    codes = _wrong_passwords(client, "/admin/login/", "root", django_settings.AXES_FAILURE_LIMIT)
    assert codes[:-1] == [200] * (django_settings.AXES_FAILURE_LIMIT - 1) and codes[-1] == 429
    assert _login(client, "/admin/login/", "root", "correct horse battery").status_code == 429
    call_command("axes_reset")
    assert _login(client, "/admin/login/", "root", "correct horse battery").status_code == 302


def test_behind_trusted_proxies_the_client_address_comes_from_x_forwarded_for(rf, settings):
    from config.security import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"  # no proxy trusted: the header is the client's to forge
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"  # what our one proxy saw, not what the client claimed
    settings.TRUSTED_PROXY_COUNT = 3
    assert client_ip(request) == "10.0.0.2"  # fewer hops than proxies: fall back to the connection
