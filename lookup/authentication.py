"""Platforms authenticate with `Authorization: Token <api token>`; `request.auth` is then their Platform."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from moderation.models import Platform
from moderation.selectors import platform_for_token
from moderation.services import hash_token


class PlatformTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <api token>'.")
        platform = platform_for_token(token_hash=hash_token(header[1].decode(errors="replace")))
        if platform is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        return AnonymousUser(), platform

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return self.keyword


class IsPlatform(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        return isinstance(request.auth, Platform)


class PlatformTokenScheme(OpenApiAuthenticationExtension):
    target_class = PlatformTokenAuthentication
    name = "PlatformToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <api token>`"}
