from django.urls import path

from .api.views import UploadDetailApi, UploadHeatmapApi, UploadListApi

urlpatterns = [
    path("uploads", UploadListApi.as_view(), name="upload-list"),
    path("uploads/<str:external_id>", UploadDetailApi.as_view(), name="upload-detail"),
    path("uploads/<str:external_id>/heatmap", UploadHeatmapApi.as_view(), name="upload-heatmap"),
]
