"""Console pages. Thin: reads through each stage's `selectors`, writes through its `services` (or the
publishers in its `tasks`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views import View

from compliance.reports import report_write_csv, transparency_report
from compliance.selectors import (
    statements_csv_chunks,
    statements_export_rows,
    statements_for_upload,
    statements_json_chunks,
)
from compliance.services import appeal_four_eyes_bars, appeal_open_for, policy_for
from moderation.errors import ApplicationError
from moderation.models import Upload, UploadStatus
from moderation.selectors import read_snapshot
from reviews.models import ReviewLabel
from reviews.selectors import (
    audit_events_visible_to,
    failed_after,
    failed_uploads,
    known_fake_matches,
    platforms_visible_to,
    queue_after,
    queue_before,
    queue_next_for,
    retro_scans_visible_to,
    review_queue,
    review_stats,
    upload_for_review,
    upload_visible,
    uploads_visible_to,
)
from reviews.services import (
    ClaimConflict,
    platform_thresholds_update,
    review_claim,
    review_decide,
    review_release,
    reviews_decide_bulk,
)
from scanning.selectors import latest_scored_scan, scan_verdict_basis
from scanning.tasks import scan_heatmap_request

from .charts import bar_chart
from .forms import BulkDecisionForm, DecisionForm, QueueFilterForm, ThresholdsForm
from .labels import label_choices, label_name
from .thumbnails import thumbnail_jpeg

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
FAILED_PAGE_SIZE = 50
# What this moderator marked unsure in this session, newest last: left out of their queue and next/previous, so a
# skip moves on instead of bringing the same upload straight back. Logging out forgets it.
SKIPPED_SESSION_KEY = "console_skipped"
MAX_SKIPPED = 200
# Browsers render these inline; anything else (HEIC, TIFF…) gets a download link instead of an <img>.
_BROWSER_IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif"}


class ConsoleView(LoginRequiredMixin, PermissionRequiredMixin, View):
    login_url = reverse_lazy("admin_ui:login")
    permission_required = "reviews.review_upload"


def _queue_form(request: HttpRequest) -> QueueFilterForm:
    slugs = list(platforms_visible_to(request.user).order_by("slug").values_list("slug", flat=True))
    return QueueFilterForm(request.GET, platform_slugs=slugs)


def _filter_query(request: HttpRequest) -> str:
    """The queue's filters (and list or grid view) as a query string, carried from the queue to items and back."""
    return urlencode([(key, value) for key, value in request.GET.items() if key not in ("after", "before")])


def _queue_url_with(request: HttpRequest, **params: str | None) -> str:
    """The queue under this page's filters with `params` set (None removes one)."""
    query = [(key, value) for key, value in request.GET.items() if key not in ("after", "before", *params)]
    return _queue_url(urlencode([*query, *((key, value) for key, value in params.items() if value is not None)]))


def _skipped(request: HttpRequest) -> list[str]:
    return request.session.get(SKIPPED_SESSION_KEY, [])


def _remember_skips(request: HttpRequest, upload_ids: list[str]) -> None:
    kept = [upload_id for upload_id in _skipped(request) if upload_id not in upload_ids]
    request.session[SKIPPED_SESSION_KEY] = [*kept, *upload_ids][-MAX_SKIPPED:]


def _review_queue(request: HttpRequest, form: QueueFilterForm) -> QuerySet[Upload]:
    """The user's queue under the page's filters, without their skips unless they asked to see them."""
    skipped = () if request.GET.get("skipped") == "show" else _skipped(request)
    return review_queue(user=request.user, filters=form.filters(), skipped=skipped)


def _item_url(upload: Upload, query: str) -> str:
    url = reverse("admin_ui:item", args=[upload.pk])
    return f"{url}?{query}" if query else url


def _queue_url(query: str) -> str:
    url = reverse("admin_ui:queue")
    return f"{url}?{query}" if query else url


class QueueView(ConsoleView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = _queue_form(request)
        queryset = _review_queue(request, form)
        after_id = request.GET.get("after")
        after = (
            uploads_visible_to(request.user).filter(pk=after_id).first() if after_id and _is_uuid(after_id) else None
        )
        page = list((queue_after(queryset, after) if after else queryset)[: PAGE_SIZE + 1])
        has_next = len(page) > PAGE_SIZE
        page = page[:PAGE_SIZE]
        query = _filter_query(request)
        skipped = _skipped(request)
        showing_skipped = request.GET.get("skipped") == "show"
        return render(
            request,
            "admin_ui/queue.html",
            {
                "form": form,
                "uploads": page,
                "total": queryset.count(),
                "query": query,
                "next_page": _queue_url_with(request, after=str(page[-1].pk)) if has_next else None,
                "first_page": _queue_url(query) if after else None,
                "can_bulk": request.user.has_perm("reviews.review_bulk"),
                "labels": label_choices(ReviewLabel.values),
                "grid": request.GET.get("view") == "grid",
                "list_url": _queue_url_with(request, view=None),
                "grid_url": _queue_url_with(request, view="grid"),
                "skipped_ids": set(skipped) if showing_skipped else set(),
                "hidden_skips": 0
                if showing_skipped or not skipped
                else review_queue(user=request.user, filters=form.filters()).filter(pk__in=skipped).count(),
                "show_skipped_url": _queue_url_with(request, skipped="show"),
                "hide_skipped_url": _queue_url_with(request, skipped=None),
                "showing_skipped": showing_skipped,
            },
        )


def _is_uuid(value: str) -> bool:
    try:
        Upload._meta.pk.to_python(value)
    except Exception:
        return False
    return True


def _appeal_blocked(appeal: Any, reviewer: Any) -> bool:
    """Four eyes: whoever took the decision under appeal may not decide the appeal (nor hold it from others)."""
    return appeal is not None and appeal_four_eyes_bars(appeal=appeal, reviewer=reviewer)


class ItemView(ConsoleView):
    def get(self, request: HttpRequest, upload_id: Any) -> HttpResponse:
        upload = upload_visible(user=request.user, upload_id=upload_id)
        if upload is None:
            raise Http404
        conflict = None
        if not _appeal_blocked(appeal_open_for(upload), request.user):
            try:
                review_claim(upload=upload, reviewer=request.user)
            except ClaimConflict as exc:
                conflict = exc
        # The claim committed, everything the page shows is read as of one moment: a decision committed while the
        # page is read would otherwise appear in some parts (its statement, the queue) and not in others.
        with read_snapshot():
            return self._page(request, upload_id, conflict)

    def _page(self, request: HttpRequest, upload_id: Any, conflict: ClaimConflict | None) -> HttpResponse:
        upload = upload_for_review(user=request.user, upload_id=upload_id)
        if upload is None:
            raise Http404
        appeal = appeal_open_for(upload)
        appeal_blocked = _appeal_blocked(appeal, request.user)
        queue = _review_queue(request, _queue_form(request))
        query = _filter_query(request)
        following = queue_next_for(queue, user=request.user, after=upload)
        preceding = queue_before(queue, upload).first()
        scan = latest_scored_scan(upload)
        matches = known_fake_matches(user=request.user, upload=upload)
        return render(
            request,
            "admin_ui/item.html",
            {
                "upload": upload,
                "scan": scan,
                "basis": scan_verdict_basis(upload=upload, scan=scan) if scan else None,
                "scans": upload.scans_newest_first,
                "decisions": upload.decisions_newest_first,
                "statements": statements_for_upload(upload),
                "appeal": appeal,
                "now": timezone.now(),
                "appeal_blocked": appeal_blocked,
                "reason_codes": policy_for(upload.platform).reason_codes,
                "conflict": conflict,
                "matches": matches,
                "unresolved_match": next(
                    (match for match in matches if not (match.overruled_by_decision or match.withdrawn)), None
                ),
                # The nearest confirmed fake the user may see, shown beside the upload.
                "compare": min(
                    (match for match in matches if match.original), key=lambda match: match.distance, default=None
                ),
                "form": DecisionForm(),
                "query": query,
                "next_url": _item_url(following, query) if following else None,
                "prev_url": _item_url(preceding, query) if preceding else None,
                "queue_url": _queue_url(query),
            },
        )


class DecideView(ConsoleView):
    def post(self, request: HttpRequest, upload_id: Any) -> HttpResponse:
        upload = upload_for_review(user=request.user, upload_id=upload_id)
        if upload is None:
            raise Http404
        form = DecisionForm(request.POST)
        query = _filter_query(request)
        if not form.is_valid():
            messages.error(request, "Choose AI-generated, real or unsure.")
            return redirect(_item_url(upload, query))
        label = form.cleaned_data["label"]
        try:
            review_decide(
                upload=upload,
                reviewer=request.user,
                label=label,
                note=form.cleaned_data["note"],
                overrule_known_fake=form.cleaned_data["overrule_known_fake"],
                reason_code=form.cleaned_data["reason_code"],
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(_item_url(upload, query))
        if label == ReviewLabel.UNSURE:
            _remember_skips(request, [str(upload.pk)])
        messages.success(request, f"{upload.external_id}: {label_name(label)}")
        following = queue_next_for(_review_queue(request, _queue_form(request)), user=request.user, after=upload)
        return redirect(_item_url(following, query) if following else _queue_url(query))


class ReleaseView(ConsoleView):
    def post(self, request: HttpRequest, upload_id: Any) -> HttpResponse:
        upload = get_object_or_404(uploads_visible_to(request.user), pk=upload_id)
        review_release(upload=upload, reviewer=request.user)
        return redirect(_queue_url(_filter_query(request)))


class BulkDecideView(ConsoleView):
    permission_required = "reviews.review_bulk"

    def post(self, request: HttpRequest) -> HttpResponse:
        form = BulkDecisionForm(request.POST)
        query = _filter_query(request)
        if not form.is_valid():
            messages.error(request, "Select uploads and a label.")
            return redirect(_queue_url(query))
        uploads = list(uploads_visible_to(request.user).filter(pk__in=_valid_ids(form.cleaned_data["uploads"])))
        label = form.cleaned_data["label"]
        outcome = reviews_decide_bulk(
            uploads=uploads,
            reviewer=request.user,
            label=label,
            note=form.cleaned_data["note"],
            reason_code=form.cleaned_data["reason_code"],
        )
        if label == ReviewLabel.UNSURE:
            _remember_skips(request, [str(upload.pk) for upload in outcome.decided])
        messages.success(request, f"Decided {len(outcome.decided)} as {label_name(label)}.")
        for upload_id, reason in outcome.skipped.items():
            messages.warning(request, f"Skipped {upload_id}: {reason}")
        return redirect(_queue_url(query))


def _valid_ids(values: list[str]) -> list[str]:
    return [value for value in values if _is_uuid(value)]


class ImageView(ConsoleView):
    """The original bytes, only as an image type a browser renders safely (never as HTML or SVG)."""

    def get(self, request: HttpRequest, upload_id: Any) -> HttpResponse:
        upload = get_object_or_404(uploads_visible_to(request.user).exclude(image=""), pk=upload_id)
        handle = upload.image.open("rb")
        head = handle.read(16)
        handle.seek(0)
        content_type = next((kind for magic, kind in _BROWSER_IMAGE_TYPES.items() if head.startswith(magic)), None)
        if content_type is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            content_type = "image/webp"
        if content_type is None:
            handle.close()
            return HttpResponse("This format is not shown in the browser.", status=415, content_type="text/plain")
        response = FileResponse(handle, content_type=content_type)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response


class ThumbnailView(ConsoleView):
    """A small JPEG of the upload for the queue's grid; like the original, a 404 outside the user's platforms."""

    def get(self, request: HttpRequest, upload_id: Any) -> HttpResponse:
        upload = get_object_or_404(uploads_visible_to(request.user).exclude(image=""), pk=upload_id)
        data = thumbnail_jpeg(upload)
        if data is None:
            return HttpResponse("No preview of this file.", status=415, content_type="text/plain")
        response = HttpResponse(data, content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=86400"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class HeatmapView(ConsoleView):
    def get(self, request: HttpRequest, upload_id: Any) -> HttpResponse:
        upload = upload_for_review(user=request.user, upload_id=upload_id)
        scan = latest_scored_scan(upload) if upload else None
        if scan is None:
            raise Http404
        if not scan.heatmap:
            scan_heatmap_request(scan=scan)
            return JsonResponse({"status": "pending"}, status=202, headers={"Retry-After": "2"})
        return FileResponse(scan.heatmap.open("rb"), content_type="image/png")


class StatsView(ConsoleView):
    permission_required = "reviews.view_review_stats"

    def get(self, request: HttpRequest) -> HttpResponse:
        platform = request.GET.get("platform", "")
        stats = review_stats(user=request.user, days=30, platform=platform)
        platforms = list(platforms_visible_to(request.user).order_by("slug"))
        overturn_points = [(version, k / n) for version, (n, k) in stats.overturns_by_model.items() if n]
        return render(
            request,
            "admin_ui/stats.html",
            {
                "stats": stats,
                "platform": platform,
                "platforms": platforms,
                "uploads_chart": bar_chart(
                    [(day.isoformat(), n) for day, n, *_ in stats.per_day], title="Uploads per day"
                ),
                "auto_tag_chart": bar_chart(
                    [(day.isoformat(), auto / scanned) for day, _, scanned, auto, _ in stats.per_day if scanned],
                    title="Auto-tag rate per day",
                    value_format="{:.0%}",
                ),
                "escalation_chart": bar_chart(
                    [(day.isoformat(), esc / scanned) for day, _, scanned, _, esc in stats.per_day if scanned],
                    title="Escalation rate per day",
                    value_format="{:.0%}",
                ),
                "overturn_chart": bar_chart(
                    overturn_points, title="Moderator overturn rate per model version", value_format="{:.0%}"
                ),
                "can_change_thresholds": request.user.has_perm("moderation.change_platform_thresholds"),
            },
        )


class ThresholdsView(ConsoleView):
    permission_required = "moderation.change_platform_thresholds"

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        platform = get_object_or_404(platforms_visible_to(request.user), slug=slug)
        form = ThresholdsForm(request.POST)
        if form.is_valid():
            platform_thresholds_update(platform=platform, acting_user=request.user, **form.cleaned_data)
            messages.success(request, f"{slug}: thresholds saved; they apply to new scans.")
        else:
            messages.error(request, f"{slug}: {form.errors.as_text()}")
        return redirect("admin_ui:stats")


class AuditView(ConsoleView):
    permission_required = "reviews.view_audit_log"

    def get(self, request: HttpRequest) -> HttpResponse:
        events = audit_events_visible_to(request.user)
        if action := request.GET.get("action"):
            events = events.filter(action=action)
        if platform := request.GET.get("platform"):
            events = events.filter(platform__slug=platform)
        before = request.GET.get("before", "")
        # ASCII digits only ("²" is a digit to str.isdigit, not to int), and within a bigint.
        if before.isascii() and before.isdigit() and len(before) <= 18:
            events = events.filter(id__lt=int(before))
        page = list(events[: AUDIT_PAGE_SIZE + 1])
        query = urlencode([(key, value) for key, value in request.GET.items() if key != "before"])
        older = f"?{query}&before={page[AUDIT_PAGE_SIZE - 1].pk}" if len(page) > AUDIT_PAGE_SIZE else None
        return render(
            request,
            "admin_ui/audit.html",
            {"events": page[:AUDIT_PAGE_SIZE], "older": older, "action": action or "", "platform": platform or ""},
        )


class FailedUploadsView(ConsoleView):
    """Uploads that failed for good, with why, newest first; paged by key like the queue."""

    permission_required = "reviews.view_review_stats"

    def get(self, request: HttpRequest) -> HttpResponse:
        platform = request.GET.get("platform", "")
        queryset = failed_uploads(user=request.user, platform=platform)
        after_id = request.GET.get("after", "")
        after = queryset.filter(pk=after_id).first() if _is_uuid(after_id) else None
        page = list((failed_after(queryset, after) if after else queryset)[: FAILED_PAGE_SIZE + 1])
        query = urlencode({"platform": platform} if platform else {})
        older = (
            f"?{query}{'&' if query else ''}after={page[FAILED_PAGE_SIZE - 1].pk}"
            if len(page) > FAILED_PAGE_SIZE
            else None
        )
        return render(
            request,
            "admin_ui/failed.html",
            {
                "rows": [(upload, _failed_at(upload)) for upload in page[:FAILED_PAGE_SIZE]],
                "platform": platform,
                "platforms": platforms_visible_to(request.user).order_by("slug"),
                "older": older,
                "first_page": f"?{query}" if after else None,
            },
        )


def _failed_at(upload: Upload) -> datetime | None:
    """When the upload entered `failed`, from its state history."""
    at = next((step["at"] for step in reversed(upload.status_history) if step["status"] == UploadStatus.FAILED), None)
    return datetime.fromisoformat(at) if at else None


class RetroScansView(ConsoleView):
    """Look-backs over earlier uploads (new confirmed fakes against them), with progress while they run."""

    permission_required = "reviews.view_review_stats"

    def get(self, request: HttpRequest) -> HttpResponse:
        scans = list(retro_scans_visible_to(request.user)[:50])
        running = any(scan.status in ("queued", "running") for scan in scans)
        return render(request, "admin_ui/retro_scans.html", {"scans": scans, "running": running})


def _report_period(request: HttpRequest) -> tuple[datetime, datetime]:
    """[from, to) from the query (YYYY-MM-DD, to exclusive); by default the last 30 days including today."""
    today = timezone.localdate()
    try:
        start = date.fromisoformat(request.GET.get("from") or "") if request.GET.get("from") else today - timedelta(29)
        end = date.fromisoformat(request.GET.get("to") or "") if request.GET.get("to") else today + timedelta(1)
    except ValueError:
        raise Http404("dates are YYYY-MM-DD") from None
    aware = [timezone.make_aware(datetime.combine(day, datetime.min.time())) for day in (start, end)]
    return aware[0], aware[1]


def _download(data: Any, write_csv: Callable[[Any, Any], None], *, fmt: str, name: str) -> HttpResponse:
    """`data` as an attachment: JSON, or CSV through `write_csv(data, response)`."""
    if fmt == "csv":
        response = HttpResponse(content_type="text/csv")
        write_csv(data, response)
    else:
        response = JsonResponse(data, safe=False)
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def _report_platform(request: HttpRequest) -> Any:
    platforms = platforms_visible_to(request.user).order_by("slug")
    slug = request.GET.get("platform") or ""
    platform = platforms.filter(slug=slug).first() if slug else platforms.first()
    if platform is None:
        raise Http404("no platform")
    return platform


class TransparencyView(ConsoleView):
    """A platform's transparency report (DSA Art. 15/24) for a period, with charts and JSON/CSV downloads."""

    permission_required = "reviews.view_review_stats"

    def get(self, request: HttpRequest) -> HttpResponse:
        platform = _report_platform(request)
        start, end = _report_period(request)
        report = transparency_report(platform=platform, start=start, end=end)
        if request.GET.get("format") in ("json", "csv"):
            return _download(report, report_write_csv, fmt=request.GET["format"], name=f"transparency-{platform.slug}")
        restrictions, appeals = report["restrictions"], report["appeals"]
        query = urlencode({"platform": platform.slug, "from": start.date().isoformat(), "to": end.date().isoformat()})
        return render(
            request,
            "admin_ui/transparency.html",
            {
                "report": report,
                "start": start,
                "end": end,
                "query": query,
                "platforms": list(platforms_visible_to(request.user).order_by("slug")),
                "fully_automated": restrictions["by_automation"].get("fully automated", 0),
                "type_chart": bar_chart(
                    list(restrictions["by_type"].items()), title="Restrictions by type", label_every_bar=True
                ),
                "ground_chart": bar_chart(
                    list(restrictions["by_ground"].items()), title="Restrictions by reason", label_every_bar=True
                ),
                "automation_chart": bar_chart(
                    list(restrictions["by_automation"].items()),
                    title="Automated or human decisions",
                    label_every_bar=True,
                ),
                "appeals_chart": bar_chart(
                    [(key, appeals[key]) for key in ("received", "decided", "upheld", "reversed", "open_at_end")],
                    title="Appeals",
                    label_every_bar=True,
                ),
            },
        )


class StatementsExportView(ConsoleView):
    """Every statement of reasons a platform issued in a period, as JSON or CSV."""

    permission_required = "reviews.view_review_stats"

    def get(self, request: HttpRequest) -> HttpResponse:
        platform = _report_platform(request)
        start, end = _report_period(request)
        rows = statements_export_rows(platform=platform, since=start, until=end)
        fmt = "csv" if request.GET.get("format") == "csv" else "json"
        chunks = statements_csv_chunks(rows) if fmt == "csv" else statements_json_chunks(rows)
        # Streamed: a long period is more statements than a web process should hold.
        response = StreamingHttpResponse(chunks, content_type="text/csv" if fmt == "csv" else "application/json")
        response["Content-Disposition"] = (
            f'attachment; filename="statements-{platform.slug}-{start.date()}-{end.date()}.{fmt}"'
        )
        return response
