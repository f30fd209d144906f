from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
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


@csrf_exempt
def bench_sink(request: HttpRequest) -> JsonResponse:
    """The framework's ceiling for `manage.py bench_ingest`: reads the body like the webhook, then does nothing."""
    return JsonResponse({"status": "accepted", "bytes": len(request.body)}, status=202)


if settings.BENCH_SINK:  # only while benchmarking (bench_ingest sets BENCH_SINK=true for its own server)
    urlpatterns.append(path("bench-sink", bench_sink))
