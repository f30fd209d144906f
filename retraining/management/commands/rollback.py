from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ApplicationError
from moderation.services import COMMAND_LINE
from retraining.services import model_version_rollback


class Command(BaseCommand):
    help = "Retire the active model version and reactivate the one active before it."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        try:
            restored = model_version_rollback(acting_user=COMMAND_LINE)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{restored} is active again")
