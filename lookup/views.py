"""Tag lookup for platforms: `GET /api/v1/uploads/<external_id>` and a filtered listing."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from moderation.errors import exception_handler
from moderation.models import UploadStatus
from moderation.selectors import read_snapshot
from scanning.payloads import UploadOutput
from scanning.selectors import latest_scored_scan, upload_get, upload_list
from scanning.tasks import scan_heatmap_request

from .authentication import IsPlatform, PlatformTokenAuthentication


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
    with read_snapshot():
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
        with read_snapshot():
            page = paginator.paginate_queryset(
                upload_list(platform=request.auth, **filters.validated_data), request, view=self
            )
            return paginator.get_paginated_response(UploadOutput(page, many=True).data)
