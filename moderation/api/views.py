"""Tag lookup for platforms: `GET /api/v1/uploads/<external_id>` and a filtered listing."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Upload, UploadStatus
from ..selectors import latest_scored_scan, scan_verdict_basis, upload_get, upload_list
from ..services import scan_heatmap_request
from .authentication import IsPlatform, PlatformTokenAuthentication
from .errors import exception_handler


class TagOutput(serializers.Serializer):
    name = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    source = serializers.CharField()


class VerdictOutput(serializers.Serializer):
    label = serializers.CharField()
    score = serializers.FloatField()
    cnn_score = serializers.FloatField()
    vit_score = serializers.FloatField(allow_null=True)
    path = serializers.CharField()
    model_version = serializers.CharField()
    vit_model_version = serializers.CharField(allow_null=True)
    threshold = serializers.FloatField()
    latency_ms = serializers.FloatField()
    decided_by = serializers.ChoiceField(
        choices=["pixels", "provenance"], help_text="provenance: declared AI provenance or a known-fake match decided"
    )
    review_reason = serializers.CharField(
        allow_null=True, help_text="why the detector itself asked for a person (e.g. its models disagree)"
    )


class EvidenceOutput(serializers.Serializer):
    kind = serializers.CharField(help_text="c2pa, digital_source_type, generator_metadata, sd_watermark, …")
    value = serializers.CharField()
    strength = serializers.ChoiceField(choices=["decisive", "strong", "weak"])
    source = serializers.CharField()
    ai = serializers.BooleanField(allow_null=True, help_text="true: points to AI; false: to a camera; null: neutral")
    detail = serializers.DictField()


class StatusChangeOutput(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    reason = serializers.CharField(default="", help_text="why the upload entered this state (empty before 2026-12)")


class ReviewOutput(serializers.Serializer):
    label = serializers.CharField()
    decided_at = serializers.DateTimeField(source="created_at")


class UploadOutput(serializers.Serializer):
    upload_id = serializers.UUIDField(source="id")
    external_id = serializers.CharField()
    status = serializers.CharField()
    status_history = StatusChangeOutput(many=True, help_text="every state the upload entered, oldest first")
    failure_reason = serializers.CharField(allow_blank=True)
    sha256 = serializers.CharField(allow_blank=True)
    tags = TagOutput(many=True)
    verdict = serializers.SerializerMethodField()
    evidence = EvidenceOutput(many=True)
    review = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(VerdictOutput(allow_null=True))
    def get_verdict(self, upload: Upload) -> dict | None:
        scan = latest_scored_scan(upload)
        if scan is None:
            return None
        return VerdictOutput(
            {
                "label": scan.verdict,
                "score": scan.score,
                "cnn_score": scan.cnn_score,
                "vit_score": scan.vit_score,
                "path": scan.path,
                "model_version": f"{scan.model_name}@{scan.model_version}",
                "vit_model_version": scan.vit_model_version or None,
                "threshold": scan.threshold,
                "latency_ms": scan.latency_ms,
                "review_reason": scan.review_reason or None,
                "decided_by": scan_verdict_basis(upload=upload, scan=scan).decided_by,
            }
        ).data

    @extend_schema_field(ReviewOutput(allow_null=True))
    def get_review(self, upload: Upload) -> dict | None:
        """A moderator's latest decision (ai-generated or real); it overrides the machine verdict's tags."""
        decision = next(iter(getattr(upload, "decisions_newest_first", [])), None)
        return ReviewOutput(decision).data if decision is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_heatmap_url(self, upload: Upload) -> str | None:
        if latest_scored_scan(upload) is None:
            return None
        from ..urls import upload_lookup_url  # the URLconf imports these views

        return upload_lookup_url(upload.external_id, heatmap=True)


class ErrorOutput(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class UploadPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = UploadOutput(many=True)


NOT_AUTHENTICATED = OpenApiResponse(ErrorOutput, description="missing or invalid API token")
NOT_FOUND = OpenApiResponse(ErrorOutput, description="no such upload for this platform")


class PlatformApi(APIView):
    authentication_classes = [PlatformTokenAuthentication]
    permission_classes = [IsPlatform]

    def get_exception_handler(self):  # type: ignore[no-untyped-def]
        # Our error shape regardless of the host project's REST_FRAMEWORK settings.
        return exception_handler


def _upload_detail(request: Request, external_id: str) -> Response:
    upload = upload_get(platform=request.auth, external_id=external_id)
    if upload is None:
        raise Http404
    return Response(UploadOutput(upload).data)


class UploadDetailApi(PlatformApi):
    @extend_schema(
        operation_id="upload_retrieve",
        responses={200: UploadOutput, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
        summary="Tags and verdict for one upload",
        description="`external_id` percent-encoded as one path segment (`/` as `%2F`), as `status_url` gives it.",
    )
    def get(self, request: Request, external_id: str) -> Response:
        return _upload_detail(request, external_id)


class UploadHeatmapApi(PlatformApi):
    @extend_schema(
        operation_id="upload_heatmap_retrieve",
        summary="Grad-CAM heatmap PNG of the latest verdict",
        responses={
            (200, "image/png"): OpenApiResponse(description="the overlay"),
            202: OpenApiResponse(description="being made; retry after the Retry-After seconds"),
            401: NOT_AUTHENTICATED,
            404: OpenApiResponse(ErrorOutput, description="no such upload, or no verdict yet"),
        },
    )
    def get(self, request: Request, external_id: str) -> HttpResponse:
        if upload_get(platform=request.auth, external_id=f"{external_id}/heatmap") is not None:
            # The path is also the lookup of an upload whose id ends in "/heatmap": the exact id wins.
            return _upload_detail(request, f"{external_id}/heatmap")
        upload = upload_get(platform=request.auth, external_id=external_id)
        scan = latest_scored_scan(upload) if upload is not None else None
        if scan is None:
            raise Http404
        if not scan.heatmap:
            scan_heatmap_request(scan=scan)
            return Response({"status": "pending"}, status=202, headers={"Retry-After": "2"})
        return FileResponse(scan.heatmap.open("rb"), content_type="image/png")


class UploadCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50


class UploadListApi(PlatformApi):
    class FilterInput(serializers.Serializer):
        tag = serializers.CharField(required=False)
        status = serializers.ChoiceField(choices=UploadStatus.choices, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="only uploads carrying this tag, e.g. ai-generated"),
            OpenApiParameter("status", str, enum=UploadStatus.values),
        ],
        responses={
            200: UploadPageOutput,
            400: OpenApiResponse(ErrorOutput, description="invalid filter"),
            401: NOT_AUTHENTICATED,
        },
        operation_id="upload_list",
        summary="This platform's uploads, newest first, optionally filtered by tag or status",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = UploadCursorPagination()
        page = paginator.paginate_queryset(
            upload_list(platform=request.auth, **filters.validated_data), request, view=self
        )
        return paginator.get_paginated_response(UploadOutput(page, many=True).data)
