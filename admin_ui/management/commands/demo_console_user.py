from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from moderation.services import COMMAND_LINE
from reviews.services import console_user_set


class Command(BaseCommand):
    help = (
        "make run's console lead: created with a printed password the first time; later runs leave the password as it "
        "is and say so. --rotate (make run ROTATE_PASSWORD=1) issues a new one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?", default="demo-lead")
        parser.add_argument("--rotate", action="store_true", help="issue a new password even if the user exists")

    def handle(self, *args: Any, username: str, rotate: bool, **options: Any) -> None:
        if get_user_model().objects.filter(username=username).exists() and not rotate:
            self.stdout.write(f"console user: {username} (lead)")
            self.stdout.write(
                "password:     unchanged (printed on the first run; `make run ROTATE_PASSWORD=1` issues a new one)"
            )
            return
        user, password = console_user_set(username=username, role="lead", platforms=[], acting_user=COMMAND_LINE)
        self.stdout.write(f"console user: {user.get_username()} (lead)")
        self.stdout.write(f"password:     {password}")
