from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from lookup.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("console/", include("admin_ui.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("api/v1/", include("lookup.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("lookup.health")),  # /healthz and /readyz
]
