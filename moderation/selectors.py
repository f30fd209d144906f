"""Reads of the core records, always scoped to the asking platform (deny by default)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import Platform, Scan, Upload


def _with_results(queryset: QuerySet[Upload]) -> QuerySet[Upload]:
    return queryset.prefetch_related(
        "tags",
        Prefetch("scans", queryset=Scan.objects.order_by("-created_at"), to_attr="scans_newest_first"),
    )


def upload_get(*, platform: Platform, external_id: str) -> Upload | None:
    return _with_results(Upload.objects.filter(platform=platform, external_id=external_id)).first()


def upload_list(*, platform: Platform, tag: str | None = None, status: str | None = None) -> QuerySet[Upload]:
    queryset = Upload.objects.filter(platform=platform)
    if tag:
        queryset = queryset.filter(tags__name=tag)
    if status:
        queryset = queryset.filter(status=status)
    return _with_results(queryset)


def platform_for_token(*, token_hash: str) -> Platform | None:
    return Platform.objects.filter(api_token_hash=token_hash).first()


def platform_by_slug(*, slug: str) -> Platform | None:
    return Platform.objects.filter(slug=slug).first()
