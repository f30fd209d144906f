from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ApplicationError
from moderation.services import COMMAND_LINE
from registry.models import ModelStatus, ModelVersion
from retraining.services import model_version_promote


class Command(BaseCommand):
    help = "Make the shadow model version active (the active one retires)."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        shadow = ModelVersion.objects.filter(status=ModelStatus.SHADOW).first()
        if shadow is None:
            raise CommandError("no model version is in shadow mode")
        agreement = shadow.shadow_scores.count(), shadow.shadow_scores.filter(agrees=True).count()
        try:
            promoted = model_version_promote(model_version=shadow, acting_user=COMMAND_LINE)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{promoted} is active (agreed with the previous model on {agreement[1]}/{agreement[0]} uploads)"
        )
