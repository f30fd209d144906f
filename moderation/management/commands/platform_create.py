import json

from django.core.management.base import BaseCommand, CommandError

from moderation.models import Platform
from moderation.services import COMMAND_LINE, platform_create, platform_token_rotate


class Command(BaseCommand):
    help = (
        "Create a platform (tenant) and print its webhook secret and API token. With --if-exists=rotate an existing "
        "platform gets a fresh API token instead (tokens are stored hashed, so the old one cannot be shown again)."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--callback-url", default="")
        parser.add_argument("--if-exists", choices=["fail", "rotate"], default="fail")
        parser.add_argument("--json", action="store_true", help="print the credentials as one JSON object")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        platform = Platform.objects.filter(slug=options["slug"]).first()
        if platform is None:
            credentials = platform_create(
                slug=options["slug"],
                name=options["name"],
                callback_url=options["callback_url"],
                acting_user=COMMAND_LINE,
            )
            platform, secret, token = credentials.platform, credentials.webhook_secret, credentials.api_token
        elif options["if_exists"] == "rotate":
            secret, token = (
                platform.webhook_secrets[0],
                platform_token_rotate(platform=platform, acting_user=COMMAND_LINE),
            )
        else:
            raise CommandError(f"platform {options['slug']!r} exists; use --if-exists=rotate to issue a new API token")
        if options["json"]:
            self.stdout.write(json.dumps({"platform": platform.slug, "webhook_secret": secret, "api_token": token}))
            return
        self.stdout.write(f"platform:       {platform.slug}")
        self.stdout.write(f"webhook secret: {secret}")
        self.stdout.write(f"API token:      {token}")
