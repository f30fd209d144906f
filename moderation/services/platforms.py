"""Tenants: create a platform with its credentials, rotate its API token and webhook secret."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction

from ..models import Platform
from .actors import Actor
from .audit import AuditAction, audit_record


@dataclass(frozen=True)
class PlatformCredentials:
    platform: Platform
    webhook_secret: str
    api_token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _new_api_token() -> str:
    return "mod_" + secrets.token_urlsafe(32)


@transaction.atomic
def platform_create(*, slug: str, name: str = "", callback_url: str = "", acting_user: Actor) -> PlatformCredentials:
    """A new tenant with a fresh webhook secret and API token. The token is returned once and stored hashed."""
    secret, token = _new_webhook_secret(), _new_api_token()
    platform = Platform.objects.create(
        slug=slug,
        name=name or slug,
        webhook_secrets=[secret],
        api_token_hash=hash_token(token),
        callback_url=callback_url,
    )
    audit_record(
        actor=acting_user, platform=platform, action=AuditAction.PLATFORM_CREATED, obj=platform, data={"slug": slug}
    )
    return PlatformCredentials(platform, secret, token)


@transaction.atomic
def platform_token_rotate(*, platform: Platform, acting_user: Actor) -> str:
    """Issue a new API token; the old one stops working at once."""
    token = _new_api_token()
    platform.api_token_hash = hash_token(token)
    platform.save(update_fields=["api_token_hash"])
    audit_record(actor=acting_user, platform=platform, action=AuditAction.PLATFORM_TOKEN_ROTATED, obj=platform)
    return token


@transaction.atomic
def platform_webhook_secret_rotate(*, platform: Platform, acting_user: Actor) -> str:
    """Issue a new signing secret. The newest older one stays valid until `platform_webhook_secret_retire_old`, so a
    platform can switch over without a failed delivery."""
    secret = _new_webhook_secret()
    platform.webhook_secrets = [secret, *platform.webhook_secrets[:1]]
    platform.save(update_fields=["webhook_secrets"])
    audit_record(actor=acting_user, platform=platform, action=AuditAction.PLATFORM_WEBHOOK_SECRET_ROTATED, obj=platform)
    return secret


@transaction.atomic
def platform_webhook_secret_retire_old(*, platform: Platform, acting_user: Actor) -> None:
    platform.webhook_secrets = platform.webhook_secrets[:1]
    platform.save(update_fields=["webhook_secrets"])
    audit_record(actor=acting_user, platform=platform, action=AuditAction.PLATFORM_WEBHOOK_SECRET_RETIRED, obj=platform)
