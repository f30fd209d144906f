from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "scanning"
    verbose_name = "Scanning"
    default_auto_field = "django.db.models.BigAutoField"
