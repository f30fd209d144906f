"""`manage.py statements_export <platform> [--since DATE] [--until DATE] [--format json|csv] [--output FILE]`."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.selectors import statements_export_rows, statements_write_csv
from moderation.models import Platform

from ..dates import day_start


class Command(BaseCommand):
    help = "Export a platform's statements of reasons (every version) as JSON or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("platform", help="platform slug")
        parser.add_argument("--since", type=day_start, help="decided on or after this day (YYYY-MM-DD)")
        parser.add_argument("--until", type=day_start, help="decided before this day (YYYY-MM-DD)")
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        platform = Platform.objects.filter(slug=options["platform"]).first()
        if platform is None:
            raise CommandError(f"no platform {options['platform']!r}")
        rows = statements_export_rows(platform=platform, since=options["since"], until=options["until"])
        out = open(options["output"], "w", newline="") if options["output"] else self.stdout
        try:
            if options["format"] == "json":
                out.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
            else:
                statements_write_csv(rows, out)
        finally:
            if out is not self.stdout:
                out.close()
        if options["output"]:
            print(f"{len(rows)} statements → {options['output']}", file=sys.stderr)
