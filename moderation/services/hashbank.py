"""The bank of confirmed fakes (PDQ hashes), matching new uploads against it, and looking back over earlier ones.

A moderator's `ai-generated` decision banks the upload's hashes for its platform (and the shared bank where the
platform opted in); later uploads within 31 bits get `known_fake_match` evidence naming the original decision, and a
retro scan sends earlier matching uploads back to review.
"""

from __future__ import annotations

import csv
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import app_setting
from ..errors import ApplicationError
from ..models import (
    HashBankEntry,
    Platform,
    RetroScan,
    RetroScanKind,
    RetroScanStatus,
    ReviewDecision,
    Tag,
    TagSource,
    Upload,
    UploadStatus,
)
from .audit import AuditAction, audit_record
from .transitions import upload_transition

logger = logging.getLogger(__name__)

KNOWN_FAKE_TAG = "known-fake-match"
KNOWN_FAKE_EVIDENCE = "known_fake_match"
# A retro-scan match jumps the review queue (but stays below what a platform flagged itself, 1000+).
KNOWN_FAKE_PRIORITY_BOOST = 500


def known_fake_priority(priority: int) -> int:
    """Once, however many matches: repeated boosts must not overtake platform flags or overflow the column."""
    return priority if priority >= KNOWN_FAKE_PRIORITY_BOOST else priority + KNOWN_FAKE_PRIORITY_BOOST


_RETRO_CHUNK = 20_000


# --- the in-process index -----------------------------------------------------------------------------------------


class _BankIndexes:
    """One HashIndex per bank (a platform's, and the shared one), kept in each worker process and topped up with the
    rows added since it last looked, so a lookup costs an indexed `id > n` query plus the faiss search. Deletions
    (an overturned fake) are noticed by a row count at most once a minute, and the index is then rebuilt."""

    RECOUNT_SECONDS = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # platform id → (index, last id seen, rows, when the rows were last counted)
        self._banks: dict[int | None, tuple[Any, int, int, float]] = {}

    def search(self, platform_id: int | None, pdq_hash: str) -> list[tuple[int, int]]:
        from detector.hashing import HashIndex

        rows = HashBankEntry.objects.filter(platform_id=platform_id)
        with self._lock:  # faiss indexes are added to in place: never search one while it grows
            index, last_id, count, counted_at = self._banks.get(platform_id, (None, 0, 0, 0.0))
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


# --- adding to the bank --------------------------------------------------------------------------------------------


def hash_bank_add_confirmed_fake(*, upload: Upload, decision: ReviewDecision, acting_user: Any) -> list[HashBankEntry]:
    """Bank an upload a moderator confirmed as AI (its whole picture and centred crops), then look back for earlier
    copies. Call inside the decision's transaction; the retro scan runs after commit."""
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
    retro_scan_start(platform=upload.platform, entries=entries, acting_user=acting_user)
    return entries


def hash_bank_remove_overturned(*, upload: Upload, acting_user: Any) -> int:
    """A moderator overturned an earlier "AI" decision: its hashes leave every bank, so copies stop matching."""
    removed, _ = HashBankEntry.objects.filter(upload=upload).delete()
    if removed:
        audit_record(
            actor=acting_user,
            platform=upload.platform,
            action=AuditAction.HASH_BANK_REMOVED,
            obj=upload,
            data={"hashes": removed},
        )
    return removed


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
    *, rows: Iterable[dict[str, str]], platform: Platform | None, acting_user: Any = None
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


# --- retro scans ---------------------------------------------------------------------------------------------------


def retro_scan_start(
    *, platform: Platform | None, entries: list[HashBankEntry], acting_user: Any, queue: bool = True
) -> RetroScan:
    """Record a retro scan of these bank entries; with `queue`, a worker runs it after commit."""
    from .. import tasks

    scan = RetroScan.objects.create(
        kind=RetroScanKind.HASH_MATCH,
        platform=platform,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    scan.entries.set(entries)
    if queue:
        transaction.on_commit(lambda: tasks.retro_scan_run.delay(scan.pk))
    return scan


def _retro_scope(scan: RetroScan) -> Any:
    """Uploads the new hashes may be compared with: the platform's own, or, for shared hashes, every opted-in
    platform's too."""
    shared = scan.entries.filter(platform__isnull=True).exists()
    scope = Q(platform=scan.platform) if scan.platform_id else Q(pk__in=[])
    if shared or scan.platform_id is None:
        scope |= Q(platform__share_hashes=True)
    return Upload.objects.filter(scope).exclude(pdq_hash="").filter(pdq_quality__gte=50)


def retro_scan_run(*, retro_scan_id: int) -> RetroScan:
    scan = RetroScan.objects.get(pk=retro_scan_id)
    if scan.kind == RetroScanKind.MODEL_RESCORE:
        return _rescore_run(scan)
    return _hash_match_run(scan)


def _chunks(uploads: Any, size: int) -> Iterator[list[Upload]]:
    """Keyset pages by primary key: no OFFSET, and rows changed meanwhile are neither skipped nor repeated."""
    last_pk = None
    while chunk := list((uploads if last_pk is None else uploads.filter(pk__gt=last_pk)).order_by("pk")[:size]):
        yield chunk
        last_pk = chunk[-1].pk


def _run_tracked(
    scan: RetroScan,
    uploads: Any,
    chunks: Iterable[list[Upload]],
    handle: Callable[[list[Upload]], None],
    *,
    keep_flagged: bool,
) -> RetroScan:
    """What both kinds of retro scan share: `running` with the total, progress saved after every chunk (`handle`
    appends to `scan.flagged`), then `done`, or `failed` with the reason."""
    scan.status, scan.total, scan.processed = RetroScanStatus.RUNNING, uploads.count(), 0
    if not keep_flagged:
        scan.flagged = []
    scan.save(update_fields=["status", "total", "processed", "flagged"])
    try:
        for chunk in chunks:
            handle(chunk)
            scan.processed += len(chunk)
            scan.save(update_fields=["processed", "flagged"])
        scan.status = RetroScanStatus.DONE
    except Exception as exc:
        scan.status, scan.error = RetroScanStatus.FAILED, str(exc)[:2000]
        logger.exception("%s %s failed", scan.kind, scan.pk)
    scan.finished_at = timezone.now()
    scan.save(update_fields=["status", "error", "finished_at"])
    return scan


def _hash_match_run(scan: RetroScan) -> RetroScan:
    """Look up every earlier upload in scope among the scan's new hashes (an index of them, searched a chunk of
    uploads at a time, so memory stays flat however large either side is), recording progress, and send each match
    back to review with `known_fake_match` evidence. A platform's private hashes only ever match its own uploads."""
    from detector.hashing import HashIndex

    if scan.status == RetroScanStatus.DONE:
        return scan
    entries = {entry.pk: entry for entry in scan.entries.select_related("upload")}
    index = HashIndex()
    index.add(list(entries), [entry.pdq_hash for entry in entries.values()])
    uploads = (
        _retro_scope(scan)
        .exclude(pk__in=[e.upload_id for e in entries.values() if e.upload_id])
        .only("pk", "pdq_hash", "platform_id")
    )

    def handle(chunk: list[Upload]) -> None:
        for upload, matches in zip(chunk, index.search([u.pdq_hash for u in chunk]), strict=True):
            allowed = [(e, d) for e, d in matches if entries[e].platform_id in (None, upload.platform_id)]
            if allowed:
                entry_id, distance = allowed[0]
                flagged = _flag_known_fake(upload_id=upload.pk, entry=entries[entry_id], distance=distance)
                if flagged is not None:
                    scan.flagged = [*scan.flagged, flagged]

    # A redelivered task goes on from where it was; what it flagged before stays listed.
    chunks = _chunks(uploads, _RETRO_CHUNK) if entries else ()
    return _run_tracked(scan, uploads, chunks, handle, keep_flagged=True)


def _send_back_to_review(upload: Upload, *changed_fields: str, reason: str) -> None:
    """Raise the upload in the queue (once) and, if it was auto-tagged, make it need review again; saves it."""
    upload.review_priority = known_fake_priority(upload.review_priority)
    fields = [*changed_fields, "review_priority", "updated_at"]
    if upload.status == UploadStatus.TAGGED:
        upload_transition(upload=upload, to=UploadStatus.NEEDS_REVIEW, reason=reason)
        fields += ["status", "status_history"]
    upload.save(update_fields=fields)


@transaction.atomic
def _flag_known_fake(*, upload_id: Any, entry: HashBankEntry, distance: int) -> dict[str, Any] | None:
    upload = Upload.objects.select_for_update().select_related("platform").get(pk=upload_id)
    if any(f.get("detail", {}).get("entry_id") == entry.pk for f in upload.evidence):
        return None  # already flagged by this hash: a retro scan is safe to run twice
    upload.evidence = [*upload.evidence, _match_finding(entry, distance, platform_id=upload.platform_id)]
    _send_back_to_review(upload, "evidence", reason="matches a confirmed fake in the hash bank")
    Tag.objects.get_or_create(upload=upload, name=KNOWN_FAKE_TAG, defaults={"source": TagSource.PROVENANCE})
    audit_record(
        actor=None,
        platform=upload.platform,
        action=AuditAction.UPLOAD_KNOWN_FAKE_MATCH,
        obj=upload,
        data={"entry_id": entry.pk, "distance": distance, "original_upload_id": str(entry.upload_id)},
    )
    return {"upload_id": str(upload.pk), "external_id": upload.external_id, "distance": distance, "entry_id": entry.pk}


# --- re-scoring recent uploads after a promotion -------------------------------------------------------------------


def retro_rescore_start(*, window_days: float, acting_user: Any = None, queue: bool = True) -> RetroScan:
    """Re-score the last `window_days` of scanned, unreviewed uploads with the model that is active now."""
    from .. import tasks

    scan = RetroScan.objects.create(
        kind=RetroScanKind.MODEL_RESCORE,
        window_since=timezone.now() - timedelta(days=window_days),
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    if queue:
        transaction.on_commit(lambda: tasks.retro_scan_run.delay(scan.pk))
    return scan


def _rescore_run(scan: RetroScan) -> RetroScan:
    """Score each upload in the window with the active model; those whose verdict would change go to review, listed
    on the scan with both verdicts. Tags stay as they are until a moderator decides."""
    from ..detection import get_detector
    from .uploads import tag_decision

    if scan.status == RetroScanStatus.DONE:
        return scan
    uploads = (
        Upload.objects.filter(
            created_at__gte=scan.window_since, status__in=[UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW]
        )
        .exclude(image="")
        .select_related("platform")
    )
    detector = functools.cache(get_detector)  # loaded inside the run, so a broken model marks the scan failed

    def handle(batch: list[Upload]) -> None:
        readable, images = [], []
        for upload in batch:
            try:
                with upload.image.open("rb") as handle:
                    images.append(handle.read())
                readable.append(upload)
            except OSError:  # a lost file must not stop the look-back over the rest
                logger.warning("re-score: image of upload %s unreadable", upload.pk)
        for upload, outcome in zip(readable, detector().predict(images) if images else [], strict=True):
            if outcome.verdict is None:
                continue
            now = tag_decision(upload=upload, verdict=outcome.verdict).decision.verdict
            if now != upload.scan_verdict:
                scan.flagged = [*scan.flagged, _flag_changed_verdict(upload, now, outcome.verdict.score)]

    batches = _chunks(uploads, app_setting("DETECTOR_MAX_BATCH_SIZE"))
    return _run_tracked(scan, uploads, batches, handle, keep_flagged=False)


@transaction.atomic
def _flag_changed_verdict(upload: Upload, new_verdict: str, new_score: float) -> dict[str, Any]:
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    _send_back_to_review(upload, reason=f"re-score with the active model says {new_verdict}")
    audit_record(
        actor=None,
        platform=upload.platform,
        action=AuditAction.UPLOAD_RESCORE_CHANGED,
        obj=upload,
        data={"from": upload.scan_verdict, "to": new_verdict, "score": new_score},
    )
    return {
        "upload_id": str(upload.pk),
        "external_id": upload.external_id,
        "from": upload.scan_verdict,
        "to": new_verdict,
        "score": round(new_score, 4),
    }
