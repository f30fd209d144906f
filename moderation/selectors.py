"""Reads of the core records, always scoped to the asking platform or user (deny by default)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import AuditEvent, Platform, Upload


def platform_for_token(*, token_hash: str) -> Platform | None:
    return Platform.objects.filter(api_token_hash=token_hash).first()


def platform_by_slug(*, slug: str) -> Platform | None:
    return Platform.objects.filter(slug=slug).first()


def platforms_visible_to(user: Any) -> QuerySet[Platform]:
    """Leads and admins see every platform; a moderator only those assigned to them; anyone else none."""
    if user.has_perm("moderation.view_all_platforms"):
        return Platform.objects.all()
    if user.has_perm("moderation.review_upload"):
        return Platform.objects.filter(moderators=user)
    return Platform.objects.none()


def uploads_visible_to(user: Any) -> QuerySet[Upload]:
    if user.has_perm("moderation.view_all_platforms"):
        return Upload.objects.all()
    return Upload.objects.filter(platform_id__in=list(platforms_visible_to(user).values_list("id", flat=True)))


def audit_events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    queryset = AuditEvent.objects.select_related("actor", "platform").order_by("-id")
    if user.has_perm("moderation.view_all_platforms"):
        return queryset
    return queryset.filter(platform__in=platforms_visible_to(user))
