from django.apps import AppConfig


class FetchingConfig(AppConfig):
    name = "fetching"
    verbose_name = "Fetching"
    default_auto_field = "django.db.models.BigAutoField"
