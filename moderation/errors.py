"""Errors the apps raise, and one error shape for every API and webhook response:
{"error": code, "detail": text, "fields"?: {path: [msg]}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A failure the caller can act on; `code` is stable for API clients, `message` is for people."""

    def __init__(self, message: str, *, code: str = "error", status: int = 400, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra or {}


def flatten_field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"upload": {"external_id": ["required"]}} → {"upload.external_id": ["required"]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" and prefix else f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_field_errors(value, name))
        return flat
    if isinstance(detail, list) and detail and all(not isinstance(item, (dict, list)) for item in detail):
        return {prefix or "body": [str(item) for item in detail]}
    if isinstance(detail, list):
        flat = {}
        for index, value in enumerate(detail):
            flat.update(flatten_field_errors(value, f"{prefix}[{index}]"))
        return flat
    return {prefix or "body": [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # DRF turns Django's own exceptions into responses too, but after the point where we reshape them.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # A model's or service's own validation (full_clean, validators) answers 400 like a serializer's.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, ApplicationError):
        return Response({"error": exc.code, "detail": exc.message, **exc.extra}, status=exc.status)
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_field_errors(exc.detail)
        detail = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
        return Response(
            {"error": "invalid_payload", "detail": detail, "fields": fields}, status=status.HTTP_400_BAD_REQUEST
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {"error": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    return response
