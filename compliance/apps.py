from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (DSA statements of reasons)"
    default_auto_field = "django.db.models.BigAutoField"
