"""The bank of confirmed fakes (PDQ hashes), matching new uploads against it, and looking back over earlier ones.

A moderator's `ai-generated` decision banks the upload's hashes for its platform (and the shared bank where the
platform opted in); later uploads within 31 bits get `known_fake_match` evidence naming the original decision, and a
retro scan (run by the scanning stage, which owns re-scans) sends earlier matching uploads back to review.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction

from hashbank.models import HashBankEntry
from moderation.conf import app_setting
from moderation.errors import ApplicationError
from moderation.models import Platform, Upload
from moderation.services import Actor, AuditAction, audit_record

logger = logging.getLogger(__name__)

KNOWN_FAKE_TAG = "known-fake-match"


KNOWN_FAKE_EVIDENCE = "known_fake_match"


def evidence_in_force(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings that still stand: all but known-fake matches a reviewer overruled (deciding the upload real) or
    whose confirmed fake was itself overturned since (`withdrawn`). Both stay in the evidence, on record."""
    return [
        finding
        for finding in evidence
        if finding.get("kind") != KNOWN_FAKE_EVIDENCE
        or not (finding["detail"].get("overruled_by_decision") or finding["detail"].get("withdrawn"))
    ]


# A retro-scan match jumps the review queue (but stays below what a platform flagged itself, 1000+).
KNOWN_FAKE_PRIORITY_BOOST = 500


def known_fake_priority(priority: int) -> int:
    """Once, however many matches: repeated boosts must not overtake platform flags or overflow the column."""
    return priority if priority >= KNOWN_FAKE_PRIORITY_BOOST else priority + KNOWN_FAKE_PRIORITY_BOOST


# --- the in-process index -----------------------------------------------------------------------------------------


# Banks brought up to date in the current `hash_banks_read_once` block (None outside one).
_read_once: ContextVar[set[int | None] | None] = ContextVar("hash_banks_read_once", default=None)


@contextmanager
def hash_banks_read_once() -> Iterator[None]:
    """Within this block each bank is brought up to date at its first lookup only, as if every lookup ran at the
    block's start (a fetch batch: one query per bank instead of one per upload; fakes banked meanwhile are caught by
    their retro scan, as for uploads that came before them)."""
    token = _read_once.set(set())
    try:
        yield
    finally:
        _read_once.reset(token)


class _BankIndexes:
    """One HashIndex per bank (a platform's, and the shared one), kept in each worker process and topped up with the
    rows added since it last looked, so a lookup costs an indexed `id > n` query plus the faiss search (none for a
    bank already read in a `hash_banks_read_once` block). Deletions (an overturned fake) are noticed by a row count at
    most once a minute, and the index is then rebuilt."""

    RECOUNT_SECONDS = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # platform id → (index, last id seen, rows, when the rows were last counted)
        self._banks: dict[int | None, tuple[Any, int, int, float]] = {}

    def search(self, platform_id: int | None, pdq_hash: str) -> list[tuple[int, int]]:
        from detector.hashing import HashIndex

        rows = HashBankEntry.objects.filter(platform_id=platform_id)
        read_once = _read_once.get()
        with self._lock:  # faiss indexes are added to in place: never search one while it grows
            index, last_id, count, counted_at = self._banks.get(platform_id, (None, 0, 0, 0.0))
            if index is not None and read_once is not None and platform_id in read_once:
                return index.search([pdq_hash])[0]
            now = time.monotonic()
            if index is None or (
                now - counted_at > self.RECOUNT_SECONDS and rows.filter(id__lte=last_id).count() != count
            ):
                index, last_id, count = HashIndex(), 0, 0
            if now - counted_at > self.RECOUNT_SECONDS:
                counted_at = now
            new = list(rows.filter(id__gt=last_id).order_by("id").values_list("id", "pdq_hash"))
            if new:
                index.add([row_id for row_id, _ in new], [pdq for _, pdq in new])
                last_id, count = new[-1][0], count + len(new)
            self._banks[platform_id] = (index, last_id, count, counted_at)
            if read_once is not None:
                read_once.add(platform_id)
            return index.search([pdq_hash])[0]


_indexes = _BankIndexes()


def _banks_for(platform: Platform) -> list[int | None]:
    return [platform.pk, None] if platform.share_hashes else [platform.pk]


def hash_bank_matches(*, platform: Platform, pdq_hash: str) -> list[dict[str, Any]]:
    """`known_fake_match` evidence for every banked fake within the match distance of this hash, nearest first."""
    found: list[tuple[int, int]] = []
    for bank in _banks_for(platform):
        found += _indexes.search(bank, pdq_hash)
    if not found:
        return []
    entries = HashBankEntry.objects.select_related("upload").in_bulk([entry_id for entry_id, _ in found])
    evidence, seen_uploads = [], set()
    for entry_id, distance in sorted(found, key=lambda pair: pair[1]):
        entry = entries.get(entry_id)
        if entry is None or (entry.upload_id and entry.upload_id in seen_uploads):
            continue  # deleted since the index saw it, or another crop hash of the same fake
        seen_uploads.add(entry.upload_id)
        evidence.append(_match_finding(entry, distance, platform_id=platform.pk))
    return evidence


def _match_finding(entry: HashBankEntry, distance: int, *, platform_id: int) -> dict[str, Any]:
    """The evidence for one match. Where the confirmed fake belongs to another platform (the shared bank), nothing
    about it is passed on: not its upload, decision or note."""
    own = (entry.upload is not None and entry.upload.platform_id == platform_id) or (
        entry.upload is None and entry.platform_id == platform_id
    )
    return {
        "kind": KNOWN_FAKE_EVIDENCE,
        "value": f"{distance} bits from a confirmed fake" + ("" if own else " of another platform"),
        "strength": "strong",
        "source": "hash_bank:pdq" + (":shared" if entry.platform_id is None else ""),
        "ai": True,
        "detail": {
            "entry_id": entry.pk,
            "distance": distance,
            "original_upload_id": str(entry.upload_id) if own and entry.upload_id else None,
            "review_decision_id": entry.review_decision_id if own else None,
            "note": entry.note if own else "",
        },
    }


def hash_bank_add_confirmed_fake(*, upload: Upload, decision: Any, acting_user: Actor) -> list[HashBankEntry]:
    """Bank an upload a moderator confirmed as AI (its whole picture and centred crops), linked to their decision (a
    `reviews.ReviewDecision`). The caller looks back for earlier copies with the returned entries
    (`scanning.tasks.retro_scan_start`)."""
    from detector.hashing import pdq_bank_hashes_bytes

    if not upload.image or HashBankEntry.objects.filter(upload=upload).exists():
        return []
    try:
        with upload.image.open("rb") as handle:
            hashes = pdq_bank_hashes_bytes(handle.read(), max_pixels=app_setting("MAX_IMAGE_PIXELS"))
    except Exception as exc:  # an unhashable image still gets its decision; it just cannot be matched
        logger.warning("upload %s not banked: %s", upload.pk, exc)
        return []
    if not hashes[0].usable:
        return []
    banks = [upload.platform] + ([None] if upload.platform.share_hashes else [])
    entries = HashBankEntry.objects.bulk_create(
        HashBankEntry(
            platform=bank,
            pdq_hash=pdq.hex,
            quality=pdq.quality,
            sha256=upload.sha256,
            upload=upload,
            review_decision=decision,
            added_by=acting_user if getattr(acting_user, "pk", None) else None,
            note=f"confirmed by {acting_user}" if acting_user else "",
        )
        for bank in banks
        for pdq in hashes
    )
    audit_record(
        actor=acting_user,
        platform=upload.platform,
        action=AuditAction.HASH_BANK_ADDED,
        obj=upload,
        data={"hashes": len(entries), "shared": upload.platform.share_hashes},
    )
    return entries


def hash_bank_remove_overturned(*, upload: Upload, acting_user: Actor) -> list[int]:
    """A moderator overturned an earlier "AI" decision: its hashes leave every bank, so copies stop matching. Returns
    the removed entries' ids, which the matches they made name (`scanning.rescans.known_fake_matches_withdraw`)."""
    entry_ids = list(HashBankEntry.objects.filter(upload=upload).values_list("pk", flat=True))
    removed, _ = HashBankEntry.objects.filter(pk__in=entry_ids).delete()
    if removed:
        audit_record(
            actor=acting_user,
            platform=upload.platform,
            action=AuditAction.HASH_BANK_REMOVED,
            obj=upload,
            data={"hashes": removed},
        )
    return entry_ids


def uploads_pdq_backfill(*, limit: int | None = None) -> int:
    """Hash uploads stored before PDQ hashing existed, so retro scans can compare them. Returns how many."""
    from detector.hashing import pdq_hash_bytes

    done = 0
    for upload in Upload.objects.filter(pdq_hash="").exclude(image="").order_by("pk")[:limit]:
        try:
            with upload.image.open("rb") as handle:
                pdq = pdq_hash_bytes(handle.read(), max_pixels=app_setting("MAX_IMAGE_PIXELS"))
        except Exception as exc:  # unreadable or not an image: nothing to compare
            logger.info("upload %s not hashed: %s", upload.pk, exc)
            continue
        Upload.objects.filter(pk=upload.pk).update(pdq_hash=pdq.hex, pdq_quality=pdq.quality)
        done += 1
    return done


def hash_bank_import_csv(
    *, rows: Iterable[dict[str, str]], platform: Platform | None, acting_user: Actor
) -> list[HashBankEntry]:
    """Import a hash list (columns `pdq_hash`, optional `sha256`, `note`) into a platform's bank or the shared one.
    Every row is checked first; one bad row rejects the file, naming its line."""
    entries = []
    for line, row in enumerate(rows, start=2):
        pdq = (row.get("pdq_hash") or "").strip().lower()
        if len(pdq) != 64 or any(c not in "0123456789abcdef" for c in pdq):
            raise ApplicationError(f"line {line}: pdq_hash must be 64 hex digits", code="invalid_hash_list")
        entries.append(
            HashBankEntry(
                platform=platform,
                pdq_hash=pdq,
                sha256=(row.get("sha256") or "").strip().lower()[:64],
                note=(row.get("note") or "imported")[:500],
                added_by=acting_user if getattr(acting_user, "pk", None) else None,
            )
        )
    with transaction.atomic():
        created = HashBankEntry.objects.bulk_create(entries, batch_size=5000)
        audit_record(
            actor=acting_user,
            platform=platform,
            action=AuditAction.HASH_BANK_IMPORTED,
            obj=platform or HashBankEntry(pk=0),
            data={"rows": len(created), "bank": platform.slug if platform else "shared"},
        )
    return created


def hash_bank_export_csv(*, platform: Platform | None, out: Any) -> int:
    writer = csv.writer(out)
    writer.writerow(["pdq_hash", "sha256", "note", "created_at"])
    count = 0
    for pdq, sha, note, created in (
        HashBankEntry.objects.filter(platform=platform)
        .order_by("id")
        .values_list("pdq_hash", "sha256", "note", "created_at")
        .iterator()
    ):
        writer.writerow([pdq, sha, note, created.isoformat()])
        count += 1
    return count
