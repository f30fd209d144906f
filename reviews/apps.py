from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .services import console_roles_ensure

        # The roles' permissions live on this app's models and on the core's, callbacks' and registry's, all installed
        # before this one, so theirs exist by the time this app's post_migrate runs.
        post_migrate.connect(console_roles_ensure, sender=self)
