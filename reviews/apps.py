from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .services import console_roles_ensure

        # After the core app's migrations, whose models carry the roles' permissions. (Django sends post_migrate only
        # for apps with models, so not for this one.)
        post_migrate.connect(console_roles_ensure, sender=self.apps.get_app_config("moderation"))
