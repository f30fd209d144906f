from django.core.management.base import BaseCommand, CommandError

from moderation.models import Platform
from moderation.services import (
    COMMAND_LINE,
    platform_webhook_secret_retire_old,
    platform_webhook_secret_rotate,
)


class Command(BaseCommand):
    help = (
        "Rotate a platform's webhook signing secret. The previous secret keeps working until you run this again "
        "with --retire-old, once the platform signs with the new one."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("slug")
        parser.add_argument("--retire-old", action="store_true", help="drop every secret but the newest")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        platform = Platform.objects.filter(slug=options["slug"]).first()
        if platform is None:
            raise CommandError(f"no platform {options['slug']!r}")
        if options["retire_old"]:
            platform_webhook_secret_retire_old(platform=platform, acting_user=COMMAND_LINE)
            self.stdout.write(f"{platform.slug}: only the newest secret is valid now")
            return
        secret = platform_webhook_secret_rotate(platform=platform, acting_user=COMMAND_LINE)
        self.stdout.write(
            f"{platform.slug}: new webhook secret {secret} (the previous one stays valid until --retire-old)"
        )
