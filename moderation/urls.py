from urllib.parse import quote

from django.urls import path, reverse

from .api.views import UploadDetailApi, UploadHeatmapApi, UploadListApi

# `path`, not `str`: a platform's external_id may hold "/" (a URL, a storage key). The heatmap route comes first; an
# upload whose own id ends in "/heatmap" still wins its lookup (UploadHeatmapApi checks for it).
urlpatterns = [
    path("uploads", UploadListApi.as_view(), name="upload-list"),
    path("uploads/<path:external_id>/heatmap", UploadHeatmapApi.as_view(), name="upload-heatmap"),
    path("uploads/<path:external_id>", UploadDetailApi.as_view(), name="upload-detail"),
]


def upload_lookup_url(external_id: str, *, heatmap: bool = False) -> str:
    """The lookup path of an upload, its id percent-encoded as one segment.

    `reverse()` would leave "/" literal, and clients normalise dot segments, so an id such as "a/../b" would reach
    another upload; "%2F" travels intact and Django decodes it back before routing.
    """
    path_ = f"{reverse('upload-list')}/{quote(external_id, safe='')}"
    return f"{path_}/heatmap" if heatmap else path_
