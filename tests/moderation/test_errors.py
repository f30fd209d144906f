"""One error shape for every API and webhook response, whatever raised the error."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from moderation.errors import ApplicationError, exception_handler


def test_a_services_django_validation_error_answers_400_naming_the_field():
    response = exception_handler(ValidationError({"callback_url": ["Enter a valid URL."]}), {})
    assert response.status_code == 400
    assert response.data == {
        "error": "invalid_payload",
        "detail": "callback_url: Enter a valid URL.",
        "fields": {"callback_url": ["Enter a valid URL."]},
    }
    plain = exception_handler(ValidationError("No image."), {})
    assert plain.status_code == 400 and plain.data["fields"] == {"non_field_errors": ["No image."]}


def test_an_application_error_keeps_its_code_and_status():
    response = exception_handler(ApplicationError("too large", code="image_too_large", status=413), {})
    assert response.status_code == 413 and response.data == {"error": "image_too_large", "detail": "too large"}
