"""Fuzzing the HTTP surface: hypothesis on the signed upload webhook, schemathesis on the platform REST API.

Whatever a correctly signed body holds, the webhook answers 2xx or a 4xx in our error shape, never a 500; whatever
is wrong with a signature (or its timestamp), it answers 401 and records nothing. The REST API never answers 5xx and
every response conforms to the OpenAPI schema that /api/schema/ serves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from moderation.models import Upload
from tests.conftest import api_get, post_webhook, signed_headers, upload_body
from tests.images import jpeg_bytes

FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    # One database transaction (the `db` fixture) holds every example: each uses fresh webhook ids.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SMALL_JPEG_B64 = base64.b64encode(jpeg_bytes(32, 24)).decode()

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
# Values a platform might plausibly get wrong in each field, beside arbitrary JSON.
field_values = st.one_of(
    json_values,
    st.just(SMALL_JPEG_B64),
    st.just(""),
    st.just("https://images.example.com/a.jpg"),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=64),
    st.text(min_size=250, max_size=300),
)


@st.composite
def mutated_payloads(draw: st.DrawFn) -> Any:
    """A valid `upload.created` event with fields dropped, replaced or added at random."""
    upload: dict[str, Any] = {"external_id": f"fz-{uuid.uuid4().hex}", "data_base64": SMALL_JPEG_B64, "metadata": {}}
    for key in draw(st.lists(st.sampled_from(["external_id", "data_base64", "metadata"]), unique=True)):
        if draw(st.booleans()):
            del upload[key]
        else:
            upload[key] = draw(field_values)
    upload.update(draw(st.dictionaries(st.sampled_from(["url", "extra", "data_base64"]), field_values, max_size=2)))
    event_type = draw(st.sampled_from(["upload.created", "upload.created", "other"]) | json_values)
    payload: dict[str, Any] = {"type": event_type}
    payload["upload"] = draw(st.just(upload) | json_values)
    if draw(st.booleans()):
        del payload[draw(st.sampled_from(["type", "upload"]))]
    return payload


def _event(**upload: Any) -> dict[str, Any]:
    return {"type": "upload.created", "upload": {"data_base64": SMALL_JPEG_B64, **upload}}


def _nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return {"k": value}


def _sign_raw(body: bytes, secret: str, msg_id: str, timestamp: int) -> str:
    """Standard Webhooks over raw bytes (the library's own signer takes only text)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _assert_answer_shape(response: Any) -> None:
    assert response.status_code < 500, response.content
    assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500, response.status_code
    if response.status_code >= 400:
        data = response.json()
        assert isinstance(data["error"], str) and isinstance(data["detail"], str), data
        if "fields" in data:
            assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in data["fields"].values())


@pytest.fixture(autouse=True)
def _fresh_rate_limit() -> None:
    cache.clear()  # hundreds of examples must not run into the per-platform limit


@pytest.mark.django_db
@FUZZ_SETTINGS
@given(payload=mutated_payloads() | json_values)
@example(payload=_event(external_id="nul-in-metadata", metadata={"k": "a\x00b"}))
@example(payload=_event(external_id="surrogate-in-metadata", metadata={"k": "a\ud800b", "\udc00": 1}))
@example(payload=_event(external_id="nul\x00in-id"))
@example(payload=_event(external_id="deep-metadata", metadata=_nested(40)))
@example(payload=_event(external_id="deep-but-fine", metadata=_nested(20)))
@example(payload=_event(external_id="https://images.example.com/a.jpg"))  # "/" gave 500 after saving the upload
@example(payload=_event(external_id=".."))
@example(payload=_event(external_id=" padded "))
def test_signed_json_bodies_get_2xx_or_a_4xx_error_never_500(client: Any, platform: Any, payload: Any) -> None:
    body = json.dumps(payload).encode()
    response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    _assert_answer_shape(response)
    if response.status_code == 202:
        upload = Upload.objects.get(id=response.json()["upload_id"])
        lookup = api_get(client, response.json()["status_url"], platform.api_token)
        assert lookup.status_code == 200 and lookup.json()["upload_id"] == str(upload.id), lookup.content


@settings(max_examples=400, deadline=None)
@given(payload=mutated_payloads())
@example(payload=_event(external_id="lone-surrogate-\ud800"))
@example(payload=_event(external_id="nul\x00in-id"))
@example(payload=_event(external_id="x" * 255))
@example(payload=_event(external_id="x" * 256))
@example(payload=_event(external_id="   "))
@example(payload=_event(external_id="."))
@example(payload=_event(external_id=7))
@example(payload=_event(external_id="padded", data_base64=f"  {SMALL_JPEG_B64}\n"))
@example(payload=_event(external_id="blank-bytes", data_base64=" \n"))
@example(payload=_event(external_id="null-metadata", metadata=None))
@example(payload=_event(external_id="list-metadata", metadata=[1]))
@example(payload=_event(external_id="deep-metadata", metadata=_nested(40)))
@example(payload=_event(external_id="nul-key", metadata={"a\x00": 1}))
@example(payload=_event(external_id="surrogate-key", metadata={"\ud800": 1}))
@example(payload=_event(external_id="paired-surrogates", metadata={"k": "\U0001f600"}))
@example(payload=_event(external_id="with-url", url="https://images.example.com/a.jpg"))
def test_the_quick_check_accepts_only_what_the_serializers_accept_and_validates_alike(payload: Any) -> None:
    from webhooks.views import UploadCreatedInput, _plain_upload

    payload = {**payload, "type": "upload.created"}  # what reaches the check: the handler of this type
    quick = _plain_upload(payload.get("upload"))
    serializer = UploadCreatedInput(data=payload)
    if quick is None:
        return  # left to the serializers, which answer it as they always did
    assert serializer.is_valid(), serializer.errors
    validated = dict(serializer.validated_data["upload"])
    assert quick == validated and type(quick["metadata"]) is dict


@pytest.mark.django_db
@FUZZ_SETTINGS
@given(body=st.binary(max_size=300))
@example(body=b"[" * 100_000 + b"]" * 100_000)  # deeper than the JSON parser's recursion limit
@example(body=b"\xff\xfe{}")
@example(body=b'{"type": "upload.created", "upload": NaN}')
def test_signed_raw_bytes_get_a_4xx_error_never_500(client: Any, platform: Any, body: bytes) -> None:
    msg_id, now = f"msg_{uuid.uuid4().hex}", int(datetime.now(tz=UTC).timestamp())
    headers = {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(now),
        "HTTP_WEBHOOK_SIGNATURE": _sign_raw(body, platform.webhook_secret, msg_id, now),
    }
    response = post_webhook(client, "acme", body, headers)
    _assert_answer_shape(response)


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)


@st.composite
def bad_signature_headers(draw: st.DrawFn, body: bytes, secret: str) -> dict[str, str]:
    """Headers that must never verify: stale or future timestamps, wrong secrets, bodies or ids, and garbage."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    kind = draw(st.sampled_from(["stale", "future", "other-secret", "other-body", "other-id", "garbage", "missing"]))
    if kind in ("stale", "future"):
        skew = timedelta(seconds=draw(st.integers(min_value=5 * 60 + 30, max_value=10 * 365 * 86400)))
        headers = signed_headers(body, secret, msg_id=msg_id, timestamp=now - skew if kind == "stale" else now + skew)
    elif kind == "other-secret":
        other = "whsec_" + base64.b64encode(draw(st.binary(min_size=16, max_size=32))).decode()
        headers = signed_headers(body, other, msg_id=msg_id)
    elif kind == "other-body":
        other_body, timestamp = body + draw(st.binary(min_size=1, max_size=8)), int(now.timestamp())
        headers = {
            "HTTP_WEBHOOK_ID": msg_id,
            "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
            "HTTP_WEBHOOK_SIGNATURE": _sign_raw(other_body, secret, msg_id, timestamp),
        }
    elif kind == "other-id":
        headers = {**signed_headers(body, secret, msg_id=msg_id), "HTTP_WEBHOOK_ID": msg_id + draw(header_text) + "x"}
    else:
        headers = signed_headers(body, secret, msg_id=msg_id)
        name = draw(st.sampled_from(["HTTP_WEBHOOK_ID", "HTTP_WEBHOOK_TIMESTAMP", "HTTP_WEBHOOK_SIGNATURE"]))
        if kind == "missing":
            del headers[name]
        else:
            headers[name] = draw(header_text.filter(lambda value: value != headers[name]))
    return headers


@pytest.mark.django_db
@FUZZ_SETTINGS
@given(data=st.data())
def test_bad_or_stale_signatures_are_always_401(client: Any, platform: Any, data: st.DataObject) -> None:
    body = upload_body(f"sig-{uuid.uuid4().hex}", image=jpeg_bytes(32, 24))
    headers = data.draw(bad_signature_headers(body, platform.webhook_secret))
    response = post_webhook(client, "acme", body, headers)
    assert response.status_code == 401, (headers, response.content)
    assert response.json()["error"] == "invalid_signature"
    assert not Upload.objects.filter(external_id=json.loads(body)["upload"]["external_id"]).exists()


# --- schemathesis: the platform REST API against its own OpenAPI schema ------------------------------------------


# Loaded once at collection through the real WSGI app: what /api/schema/ serves is what the API is judged by.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).include(path_regex="^/api/v1/")


@pytest.fixture
def platform_with_uploads(platform: Any, client: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """A few real uploads (one scored, one failed) so listings and lookups have something to show."""
    for external_id, image in (("photo-1", jpeg_bytes(64, 48)), ("broken-1", b"not an image")):
        body = upload_body(external_id, image=image)
        with django_capture_on_commit_callbacks(execute=True):
            assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202
    return platform


@pytest.fixture
def api_token(platform_with_uploads: Any) -> Iterator[str]:
    """Schemathesis calls go through the real WSGI handler, whose request signals would close the connection that
    holds the test's transaction; Django's own test client unhooks them the same way (and hooks them back after each
    of its requests, hence after the uploads above)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield platform_with_uploads.api_token
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@schema.given(known=st.sampled_from([None, "photo-1", "broken-1"]))
def test_platform_api_conforms_to_its_schema(case: Any, api_token: str, known: str | None) -> None:
    if known is not None and "external_id" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "external_id": known}
    case.call_and_validate(
        headers={"Authorization": f"Token {api_token}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
