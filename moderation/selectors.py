"""Reads of the core records for a platform: by its API token or its slug."""

from __future__ import annotations

from .models import Platform


def platform_for_token(*, token_hash: str) -> Platform | None:
    return Platform.objects.filter(api_token_hash=token_hash).first()


def platform_by_slug(*, slug: str) -> Platform | None:
    return Platform.objects.filter(slug=slug).first()
