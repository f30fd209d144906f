from django.apps import AppConfig


class HashbankConfig(AppConfig):
    name = "hashbank"
    verbose_name = "Hash bank"
    default_auto_field = "django.db.models.BigAutoField"
