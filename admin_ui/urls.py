from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "admin_ui"

urlpatterns = [
    path("", views.QueueView.as_view(), name="queue"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="admin_ui/login.html", next_page="admin_ui:queue"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="admin_ui:login"), name="logout"),
    path("uploads/bulk-decide", views.BulkDecideView.as_view(), name="bulk-decide"),
    path("uploads/<uuid:upload_id>/", views.ItemView.as_view(), name="item"),
    path("uploads/<uuid:upload_id>/decide", views.DecideView.as_view(), name="decide"),
    path("uploads/<uuid:upload_id>/release", views.ReleaseView.as_view(), name="release"),
    path("uploads/<uuid:upload_id>/image", views.ImageView.as_view(), name="image"),
    path("uploads/<uuid:upload_id>/thumbnail", views.ThumbnailView.as_view(), name="thumbnail"),
    path("uploads/<uuid:upload_id>/heatmap", views.HeatmapView.as_view(), name="heatmap"),
    path("failed/", views.FailedUploadsView.as_view(), name="failed"),
    path("stats/", views.StatsView.as_view(), name="stats"),
    path("transparency/", views.TransparencyView.as_view(), name="transparency"),
    path("statements/", views.StatementsExportView.as_view(), name="statements-export"),
    path("platforms/<slug:slug>/thresholds", views.ThresholdsView.as_view(), name="thresholds"),
    path("audit/", views.AuditView.as_view(), name="audit"),
    path("retro-scans/", views.RetroScansView.as_view(), name="retro-scans"),
]
