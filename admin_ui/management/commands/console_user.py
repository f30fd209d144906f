from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ApplicationError
from moderation.models import Platform
from moderation.services import COMMAND_LINE
from reviews.services import CONSOLE_ROLES, console_user_set


class Command(BaseCommand):
    help = (
        "Create a moderator console user with a role (moderator: reviews its --platform list; lead: every platform, "
        "bulk decisions, stats, thresholds, audit; admin: a lead who also manages models and callbacks) and print a "
        "generated password. An existing user gets a new password, role and platforms."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=list(CONSOLE_ROLES), default="moderator")
        parser.add_argument("--platform", action="append", default=[], help="platform slug; repeat for several")

    def handle(self, *args: Any, username: str, role: str, platform: list[str], **options: Any) -> None:
        platforms = list(Platform.objects.filter(slug__in=platform))
        missing = set(platform) - {p.slug for p in platforms}
        if missing:
            raise CommandError(f"no such platform: {', '.join(sorted(missing))}")
        try:
            user, password = console_user_set(
                username=username, role=role, platforms=platforms, acting_user=COMMAND_LINE
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"console user: {user.get_username()} ({role})")
        self.stdout.write(f"password:     {password}")
