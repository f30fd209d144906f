from django.urls import path

from .api.views import UploadDetailApi, UploadListApi

urlpatterns = [
    path("uploads", UploadListApi.as_view(), name="upload-list"),
    path("uploads/<str:external_id>", UploadDetailApi.as_view(), name="upload-detail"),
]
