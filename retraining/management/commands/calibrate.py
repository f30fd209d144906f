from django.core.management.base import BaseCommand, CommandError

from moderation.models import Platform
from moderation.services import COMMAND_LINE
from retraining.services import platform_calibrate


class Command(BaseCommand):
    help = "Set each platform's AI threshold from its own reviewer labels to meet a target false-positive rate."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("platforms", nargs="*", help="platform slugs; default: all")
        parser.add_argument("--target-fpr", type=float, default=None, help="default: CALIBRATION_TARGET_FPR")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        platforms = Platform.objects.all()
        if options["platforms"]:
            platforms = platforms.filter(slug__in=options["platforms"])
            missing = set(options["platforms"]) - set(platforms.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"unknown platform(s): {', '.join(sorted(missing))}")
        for platform in platforms:
            threshold = platform_calibrate(
                platform=platform, target_fpr=options["target_fpr"], acting_user=COMMAND_LINE
            )
            if threshold is None:
                self.stdout.write(f"{platform.slug}: too few reviewer-labelled real uploads; threshold unchanged")
            else:
                self.stdout.write(f"{platform.slug}: AI threshold {threshold:.4f}")
