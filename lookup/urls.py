from django.urls import path

from .views import UploadDetailApi, UploadHeatmapApi, UploadListApi

# `path`, not `str`: a platform's external_id may hold "/" (a URL, a storage key). The heatmap route comes first; an
# upload whose own id ends in "/heatmap" still wins its lookup (UploadHeatmapApi checks for it).
urlpatterns = [
    path("uploads", UploadListApi.as_view(), name="upload-list"),
    path("uploads/<path:external_id>/heatmap", UploadHeatmapApi.as_view(), name="upload-heatmap"),
    path("uploads/<path:external_id>", UploadDetailApi.as_view(), name="upload-detail"),
]
