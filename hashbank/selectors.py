"""Reads of the hash bank for the console, scoped to what the asking user may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from moderation.models import HashBankEntry, RetroScan, Upload
from moderation.selectors import platforms_visible_to, uploads_visible_to

from .services import KNOWN_FAKE_EVIDENCE


@dataclass(frozen=True)
class KnownFakeMatch:
    distance: int
    # The confirmed fake it matched, where this user may see it; a shared-bank match or an imported hash names none.
    original: Upload | None
    # Set once a reviewer decided the upload is real: the match stays on record, overruled.
    overruled_by_decision: int | None


def known_fake_matches(*, user: Any, upload: Upload) -> list[KnownFakeMatch]:
    """The upload's matches with banked fakes, each with the original upload for a side-by-side look."""
    details = [finding["detail"] for finding in upload.evidence if finding.get("kind") == KNOWN_FAKE_EVIDENCE]
    if not details:
        return []
    # Evidence names the original only where it is the same platform's; evidence naming just its bank entry is
    # resolved through the entry, within the platform too (the shared bank never reveals another platform's upload).
    via_entry = dict(
        HashBankEntry.objects.filter(
            pk__in=[d["entry_id"] for d in details if d.get("entry_id") and not d.get("original_upload_id")],
            upload__platform_id=upload.platform_id,
        ).values_list("pk", "upload_id")
    )
    original_ids = [str(d.get("original_upload_id") or via_entry.get(d.get("entry_id")) or "") for d in details]
    visible = uploads_visible_to(user).filter(platform_id=upload.platform_id)
    originals = {str(pk): original for pk, original in visible.in_bulk([i for i in original_ids if i]).items()}
    return [
        KnownFakeMatch(
            distance=detail.get("distance", 0),
            original=originals.get(original_id),
            overruled_by_decision=detail.get("overruled_by_decision"),
        )
        for detail, original_id in zip(details, original_ids, strict=True)
    ]


def retro_scans_visible_to(user: Any) -> QuerySet[RetroScan]:
    queryset = RetroScan.objects.select_related("platform", "created_by").order_by("-id")
    if user.has_perm("moderation.view_all_platforms"):
        return queryset
    return queryset.filter(platform__in=platforms_visible_to(user))
