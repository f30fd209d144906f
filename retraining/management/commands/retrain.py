from django.core.management.base import BaseCommand

from moderation.services import COMMAND_LINE
from retraining.services import model_retrain


class Command(BaseCommand):
    help = (
        "Fit a candidate model from moderators' labels (plus AI_MODERATION['RETRAIN_BASE_DIR']), judge it against the "
        "active model on the frozen evaluation set, and put it in shadow mode if it wins."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--min-new-labels", type=int, default=None, help="default: RETRAIN_MIN_NEW_LABELS")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        candidate = model_retrain(min_new_labels=options["min_new_labels"], acting_user=COMMAND_LINE)
        if candidate is None:
            self.stdout.write("Not enough new reviewer labels since the active model was trained; nothing to do.")
            return
        self.stdout.write(f"{candidate}: {candidate.gate.get('reason', '')}")
