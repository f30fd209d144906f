from django.urls import path

from .views import UploadWebhookApi

urlpatterns = [path("<slug:platform>/uploads", UploadWebhookApi.as_view(), name="webhook-uploads")]
