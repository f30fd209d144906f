from django.urls import include, path

urlpatterns = [
    path("marketplace/hooks/", include("webhooks.urls")),
    path("marketplace/ai-tags/", include("lookup.urls")),
    path("marketplace/", include("lookup.health")),  # /marketplace/healthz, /marketplace/readyz
]
