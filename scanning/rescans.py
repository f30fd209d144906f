"""Re-scans of uploads already tagged: new bank hashes matched against earlier uploads (hash-match retro scans),
and every recent upload re-scored after a promotion. A change sends the upload back to review; each run records its
progress on its `RetroScan` row and is safe to run twice."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hashbank.models import HashBankEntry, RetroScan, RetroScanKind, RetroScanStatus
from hashbank.services import (
    KNOWN_FAKE_EVIDENCE,
    KNOWN_FAKE_TAG,
    _match_finding,
    evidence_in_force,
    known_fake_priority,
)
from moderation.conf import app_setting
from moderation.models import Upload, UploadStatus, VerdictLabel
from moderation.services import SCANNING, AuditAction, audit_record, upload_transition
from scanning.models import Tag, TagSource

from .policy import evidence_provenance
from .services import tag_decision

logger = logging.getLogger(__name__)

_RETRO_CHUNK = 20_000


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


def _send_back_to_review(upload: Upload, *changed_fields: str, reason: str, reopen_reviewed: bool = False) -> None:
    """Raise the upload in the queue (once) and, if it was auto-tagged (or, with `reopen_reviewed`, decided by a
    moderator), make it need review again; saves it."""
    upload.review_priority = known_fake_priority(upload.review_priority)
    fields = [*changed_fields, "review_priority", "updated_at"]
    if upload.status == UploadStatus.TAGGED or (reopen_reviewed and upload.status == UploadStatus.REVIEWED):
        upload_transition(upload=upload, to=UploadStatus.NEEDS_REVIEW, reason=reason, acting_user=SCANNING)
    upload.save(update_fields=fields)


@transaction.atomic
def _flag_known_fake(*, upload_id: Any, entry: HashBankEntry, distance: int) -> dict[str, Any] | None:
    upload = Upload.objects.select_for_update(of=("self",)).select_related("platform").get(pk=upload_id)
    if any(f.get("detail", {}).get("entry_id") == entry.pk for f in upload.evidence):
        return None  # already flagged by this hash: a retro scan is safe to run twice
    upload.evidence = [*upload.evidence, _match_finding(entry, distance, platform_id=upload.platform_id)]
    # A moderator called it real before this fake was confirmed. The match puts that in question: back to the queue,
    # where deciding real again means overruling the match; and no `known-fake-match` beside their `real` meanwhile.
    decided_real = upload.tags.filter(source=TagSource.REVIEWER, name="real").exists()  # reviews.services' tag
    _send_back_to_review(
        upload, "evidence", reason="matches a confirmed fake in the hash bank", reopen_reviewed=decided_real
    )
    if not decided_real:
        Tag.objects.get_or_create(upload=upload, name=KNOWN_FAKE_TAG, defaults={"source": TagSource.PROVENANCE})
    audit_record(
        actor=SCANNING,  # who started the look-back is on the RetroScan
        platform=upload.platform,
        action=AuditAction.UPLOAD_KNOWN_FAKE_MATCH,
        obj=upload,
        data={"entry_id": entry.pk, "distance": distance, "original_upload_id": str(entry.upload_id)},
    )
    return {"upload_id": str(upload.pk), "external_id": upload.external_id, "distance": distance, "entry_id": entry.pk}


def _rescore_run(scan: RetroScan) -> RetroScan:
    """Score each upload in the window with the active model; those whose verdict would change go to review, listed
    on the scan with both verdicts. Tags stay as they are until a moderator decides."""
    from registry.detection import get_detector  # torch: only processes that score import it

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
        actor=SCANNING,  # who started the look-back is on the RetroScan
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


def known_fake_matches_withdraw(*, entry_ids: list[int]) -> list[str]:
    """A moderator overturned the confirmed fake behind these (removed) bank entries. Each upload one of them flagged
    keeps the match on record, withdrawn; loses the `known-fake-match` tag unless another match still stands; and, if
    the match was all that tagged it AI (an automatic provenance tag, nothing else declaring AI), goes back to review.
    Returns the ids of the uploads changed; safe to run twice."""
    wanted = set(entry_ids)
    flagged = Upload.objects.filter(tags__name=KNOWN_FAKE_TAG).values_list("pk", flat=True).distinct().order_by()
    return [str(pk) for pk in flagged.iterator(chunk_size=2000) if _known_fake_match_withdraw(pk, wanted)]


@transaction.atomic
def _known_fake_match_withdraw(upload_id: Any, entry_ids: set[int]) -> bool:
    upload = Upload.objects.select_for_update(of=("self",)).get(pk=upload_id)
    findings = [
        finding
        for finding in upload.evidence
        if finding.get("kind") == KNOWN_FAKE_EVIDENCE
        and finding["detail"].get("entry_id") in entry_ids
        and not finding["detail"].get("withdrawn")
    ]
    if not findings:
        return False
    for finding in findings:
        finding["detail"]["withdrawn"] = "the confirmed fake it matched was overturned"
    if not any(finding.get("kind") == KNOWN_FAKE_EVIDENCE for finding in evidence_in_force(upload.evidence)):
        Tag.objects.filter(upload=upload, name=KNOWN_FAKE_TAG).delete()
    tagged_by_match = (
        upload.status == UploadStatus.TAGGED
        and Tag.objects.filter(upload=upload, name=VerdictLabel.AI_GENERATED, source=TagSource.PROVENANCE).exists()
        and evidence_provenance(upload.evidence) != "ai-declared"
    )
    if tagged_by_match:
        upload_transition(
            upload=upload,
            to=UploadStatus.NEEDS_REVIEW,
            reason="the confirmed fake it matched was overturned",
            acting_user=SCANNING,
        )
    upload.save(update_fields=["evidence", "updated_at"])
    audit_record(
        actor=SCANNING,
        platform=upload.platform,
        action=AuditAction.UPLOAD_KNOWN_FAKE_MATCH_WITHDRAWN,
        obj=upload,
        data={"entry_ids": sorted(finding["detail"]["entry_id"] for finding in findings), "to_review": tagged_by_match},
    )
    return True
