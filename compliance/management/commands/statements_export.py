"""`manage.py statements_export <platform> [--since DATE] [--until DATE] [--format json|csv] [--output FILE]`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.selectors import statements_csv_chunks, statements_export_rows, statements_json_chunks
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
        counted = 0

        def counting() -> Iterator[dict[str, Any]]:
            nonlocal counted
            for row in rows:
                counted += 1
                yield row

        chunks = statements_json_chunks if options["format"] == "json" else statements_csv_chunks
        out = open(options["output"], "w", newline="") if options["output"] else self.stdout
        try:
            for chunk in chunks(counting()):
                out.write(chunk, ending="") if out is self.stdout else out.write(chunk)
        finally:
            if out is not self.stdout:
                out.close()
        if options["output"]:
            print(f"{counted} statements → {options['output']}", file=sys.stderr)
