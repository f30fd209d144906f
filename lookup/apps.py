from django.apps import AppConfig


class LookupConfig(AppConfig):
    name = "lookup"
    verbose_name = "Tag lookup API"
    default_auto_field = "django.db.models.BigAutoField"
