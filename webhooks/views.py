"""`POST /webhooks/<platform>/uploads`: verify the signature on the raw body, then validate, record and answer 202."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import RequestDataTooBig
from django.core.validators import ProhibitNullCharactersValidator
from django.db import InterfaceError, OperationalError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.validators import ProhibitSurrogateCharactersValidator
from rest_framework.views import APIView

from compliance.services import appeal_receive
from moderation.conf import app_setting
from moderation.errors import exception_handler
from moderation.links import upload_lookup_url
from moderation.metrics import observe_webhook
from moderation.models import Platform
from moderation.services import INTAKE
from transport import signatures
from webhooks.selectors import platform_for_webhook
from webhooks.services import upload_create

from .ratelimit import retry_after_if_limited

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5

METADATA_MAX_DEPTH = 32

# The longest webhook-id the uploads' and appeals' tables hold (`webhook_id` columns).
WEBHOOK_ID_MAX_LENGTH = 255


def _refuse_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity, which Python's json accepts and JSON (RFC 8259) does not."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON, but no float holds it and jsonb refuses infinity
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    """Why PostgreSQL (or our own JSON encoding) could not store this metadata, if it could not; walked iteratively so
    no nesting depth can exhaust the stack."""
    pending: list[tuple[Any, int]] = [(metadata, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > METADATA_MAX_DEPTH:
            return f"Nested deeper than {METADATA_MAX_DEPTH} levels."
        if isinstance(value, str):
            if "\x00" in value:
                return "Must not contain NUL (U+0000) characters."  # jsonb cannot hold U+0000
            if not value.isascii() and _has_lone_surrogate(value):
                return "Must not contain lone surrogates (unpaired \\ud800-\\udfff escapes)."  # nor these
        if isinstance(value, dict):
            pending += [(key, depth) for key in value] + [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list):
            pending += [(item, depth + 1) for item in value]
    return None


def _has_lone_surrogate(text: str) -> bool:
    """Whether the text holds a surrogate code point, which only an unpaired JSON escape produces (json.loads joins a
    pair into one character) and which UTF-8, hence PostgreSQL, cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Base64Field(serializers.CharField):
    """Base64 text without CharField's per-character NUL and surrogate checks: they loop in Python over every
    character (1.2 of 9 ms per webhook with a 27 KB image here, and growing with the image), and the strict base64
    decode in `upload_create` refuses anything outside the base64 alphabet anyway."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(validator, (ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator))
        ]


def _external_id_problem(value: str) -> str | None:
    """Why this text cannot be an external id, if it cannot.

    Any printable text is a valid id, kept exactly as sent: trimming would merge " a" into "a". "." and ".." are
    refused because every URL client rewrites them as dot segments, so their lookup could never be reached.
    `isprintable` also refuses NUL and lone surrogates, as CharField's own validators do.
    """
    if not value.isprintable():
        return "Must be printable text (no control or line-break characters)."
    if value in {".", ".."}:
        return '"." and ".." cannot be looked up by URL; choose another id.'
    return None


def _validate_external_id(value: str) -> None:
    problem = _external_id_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)


class UploadInput(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, trim_whitespace=False, validators=[_validate_external_id])
    url = serializers.URLField(max_length=2048, required=False)
    data_base64 = Base64Field(required=False, trim_whitespace=True)
    metadata = serializers.DictField(required=False, default=dict)

    def validate_url(self, value: str) -> str:
        try:
            urlsplit(value).port  # noqa: B018 (read for its check: Django's URLField lets any number of digits through)
        except ValueError:
            raise serializers.ValidationError("The port must be a number from 0 to 65535.") from None
        return value

    def validate_metadata(self, value: dict[str, Any]) -> dict[str, Any]:
        problem = _metadata_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("url")) == bool(attrs.get("data_base64")):
            raise serializers.ValidationError({"url": ["Give exactly one of url or data_base64."]})
        return attrs


class UploadCreatedInput(serializers.Serializer):
    type = serializers.CharField()
    upload = UploadInput()


class UploadAcceptedOutput(serializers.Serializer):
    upload_id = serializers.UUIDField()
    status = serializers.CharField()
    status_url = serializers.CharField()


def _plain_upload(upload: Any) -> dict[str, Any] | None:
    """An `upload` with held bytes that `UploadInput` would accept as it is, validated as it would be; else None.

    Building the serializers (DRF deep-copies every declared field per request) took a quarter of the webhook's own
    work. The usual webhook (an id, base64 bytes, maybe metadata) is checked here; anything else, a URL upload
    included, goes through the serializers, which remain the contract and word every error.
    """
    if not isinstance(upload, dict) or "url" in upload:
        return None
    external_id, data_base64, metadata = upload.get("external_id"), upload.get("data_base64"), upload.get("metadata")
    if not isinstance(external_id, str) or not 0 < len(external_id) <= 255 or _external_id_problem(external_id):
        return None
    if not isinstance(data_base64, str) or not (data_base64 := data_base64.strip()):
        return None
    if metadata is None and "metadata" not in upload:
        metadata = {}
    elif not isinstance(metadata, dict) or _metadata_problem(metadata) is not None:
        return None
    return {"external_id": external_id, "data_base64": data_base64, "metadata": metadata}


def _upload_created(platform: Platform, webhook_id: str, payload: dict[str, Any]) -> Response:
    upload_data = _plain_upload(payload.get("upload"))
    if upload_data is None:
        data = UploadCreatedInput(data=payload)
        data.is_valid(raise_exception=True)
        upload_data = data.validated_data["upload"]
    upload, _ = upload_create(
        platform=platform,
        webhook_id=webhook_id,
        external_id=upload_data["external_id"],
        url=upload_data.get("url", ""),
        data_base64=upload_data.get("data_base64", ""),
        metadata=upload_data.get("metadata"),
    )
    # `queued` as written; `received` only where tasks run eagerly (in the request) and the broker refused the publish.
    return Response(
        {"upload_id": str(upload.id), "status": upload.status, "status_url": upload_lookup_url(upload.external_id)},
        status=status.HTTP_202_ACCEPTED,
    )


class AppealInput(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, trim_whitespace=False)
    complaint = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class UploadAppealedInput(serializers.Serializer):
    type = serializers.CharField()
    appeal = AppealInput()


def _upload_appealed(platform: Platform, webhook_id: str, payload: dict[str, Any]) -> Response:
    data = UploadAppealedInput(data=payload)
    data.is_valid(raise_exception=True)
    appeal_data = data.validated_data["appeal"]
    appeal, _ = appeal_receive(
        platform=platform,
        webhook_id=webhook_id,
        external_id=appeal_data["external_id"],
        complaint=appeal_data["complaint"],
        acting_user=INTAKE,
    )
    return Response(
        {
            "appeal_id": appeal.pk,
            "status": appeal.status,
            "due_at": appeal.due_at.isoformat(),
            "status_url": upload_lookup_url(appeal.upload.external_id),
        },
        status=status.HTTP_202_ACCEPTED,
    )


# Event type → handler. Unknown types are acknowledged and ignored, so platforms can send events we do not use yet.
EVENT_HANDLERS: dict[str, Callable[[Platform, str, dict[str, Any]], Response]] = {
    "upload.created": _upload_created,
    "upload.appealed": _upload_appealed,
}


def _error(code: str, detail: str, http_status: int, **extra: Any) -> Response:
    return Response({"error": code, "detail": detail, **extra}, status=http_status)


class JsonOnly(BaseContentNegotiation):
    """A webhook answers JSON whatever its sender accepts: no negotiation to pay for, and never a 406."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class UploadWebhookApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnly

    def get_exception_handler(self):  # type: ignore[no-untyped-def]
        return exception_handler

    @extend_schema(
        summary="Announce an upload, or forward a user's appeal (Standard Webhooks signed)",
        request=PolymorphicProxySerializer(
            component_name="WebhookEvent",
            serializers={"upload.created": UploadCreatedInput, "upload.appealed": UploadAppealedInput},
            resource_type_field_name="type",
        ),
        parameters=[
            OpenApiParameter(name, str, OpenApiParameter.HEADER, required=True) for name in signatures.HEADER_NAMES
        ],
        responses={
            202: OpenApiResponse(
                description="upload.created: the upload accepted (`UploadAccepted`); upload.appealed: the appeal "
                "recorded, with its SLA (`appeal_id`, `status`, `due_at`, `status_url`)",
                response=UploadAcceptedOutput,
            ),
            200: OpenApiResponse(description="event type not handled; acknowledged"),
            400: OpenApiResponse(description="malformed JSON or invalid field; `fields` names each"),
            413: OpenApiResponse(description="body over MAX_WEBHOOK_BODY_BYTES"),
            429: OpenApiResponse(description="over the platform's per-minute limit; see Retry-After"),
            401: OpenApiResponse(description="missing, invalid or stale signature"),
            404: OpenApiResponse(description="unknown platform, or (upload.appealed) unknown upload"),
            409: OpenApiResponse(description="upload.appealed: no restriction in force, or an appeal already open"),
            503: OpenApiResponse(description="database unavailable; retry after Retry-After seconds"),
        },
    )
    def post(self, request: Request, platform: str) -> Response:
        with observe_webhook() as observed:
            try:
                response = self._handle(request, platform)
            except (OperationalError, InterfaceError) as exc:
                # The database is restarting or unreachable: ask the platform to retry. A retry under the same
                # webhook-id is idempotent, so one whose upload did get committed returns that upload.
                logger.warning("webhook answered 503, database unavailable: %s", exc)
                response = _error("unavailable", "database unavailable; retry later", 503)
                response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
            observed.status = response.status_code
            return response

    def _handle(self, request: Request, platform: str) -> Response:
        tenant = platform_for_webhook(slug=platform)
        if tenant is None:
            return _error("not_found", f"no platform {platform!r}", status.HTTP_404_NOT_FOUND)
        declared = request.META.get("CONTENT_LENGTH") or "0"
        limit = app_setting("MAX_WEBHOOK_BODY_BYTES")
        if not (declared.isascii() and declared.isdigit()) or int(declared) > limit:
            return _error(
                "body_too_large", f"body over the limit of {limit} bytes", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        try:
            body = request.body
        except RequestDataTooBig:
            # The host project's DATA_UPLOAD_MAX_MEMORY_SIZE is lower than ours.
            return _error(
                "body_too_large", "body over the server's upload limit", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        try:
            signatures.verify(body, request.headers, tenant.webhook_secrets)
        except signatures.InvalidSignature:
            # The kept row may predate a secret rotation: check once more against the stored secrets.
            tenant = platform_for_webhook(slug=platform, fresh=True)
            if tenant is None:
                return _error("not_found", f"no platform {platform!r}", status.HTTP_404_NOT_FOUND)
            try:
                signatures.verify(body, request.headers, tenant.webhook_secrets)
            except signatures.InvalidSignature as exc:
                return _error("invalid_signature", str(exc), status.HTTP_401_UNAUTHORIZED)
        webhook_id = request.headers["webhook-id"]
        if len(webhook_id) > WEBHOOK_ID_MAX_LENGTH:
            # Signed, so not a forgery, but it could never be stored: a 4xx, which senders do not retry.
            return _error(
                "invalid_header",
                f"webhook-id must be at most {WEBHOOK_ID_MAX_LENGTH} characters",
                status.HTTP_400_BAD_REQUEST,
                fields={"webhook-id": [f"Ensure this header has no more than {WEBHOOK_ID_MAX_LENGTH} characters."]},
            )
        retry_after = retry_after_if_limited(platform_id=tenant.pk, limit=tenant.webhook_rate_limit_per_minute)
        if retry_after is not None:
            response = _error("rate_limited", "too many webhook requests for this platform", 429)
            response["Retry-After"] = str(retry_after)
            return response
        try:
            payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
        # ValueError: also a number PostgreSQL's jsonb cannot store, or an integer past Python's digit limit.
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            return _error(
                "malformed_json",
                f"body is not valid JSON: {exc}",
                status.HTTP_400_BAD_REQUEST,
                fields={"body": [str(exc)]},
            )
        if not isinstance(payload, dict):
            return _error(
                "invalid_payload",
                "body must be a JSON object",
                status.HTTP_400_BAD_REQUEST,
                fields={"body": ["Expected an object."]},
            )
        event_type = payload.get("type")
        if not isinstance(event_type, str):
            return _error(
                "invalid_payload",
                "type: This field is required.",
                status.HTTP_400_BAD_REQUEST,
                fields={"type": ["This field is required."]},
            )
        handler = EVENT_HANDLERS.get(event_type)
        if handler is None:
            return Response(
                {"status": "ignored", "detail": f"event type {event_type!r} is not handled"}, status=status.HTTP_200_OK
            )
        return handler(tenant, webhook_id, payload)
