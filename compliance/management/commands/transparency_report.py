"""`manage.py transparency_report <platform> --from YYYY-MM-DD --to YYYY-MM-DD [--format json|csv]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.reports import report_write_csv, transparency_report
from moderation.models import Platform

from ..dates import day_start


class Command(BaseCommand):
    help = "A platform's transparency report (DSA Art. 15/24) for [--from, --to): decisions, automation, appeals."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("platform", help="platform slug")
        parser.add_argument("--from", dest="start", type=day_start, required=True, help="first day (YYYY-MM-DD)")
        parser.add_argument("--to", dest="end", type=day_start, required=True, help="day after the last (YYYY-MM-DD)")
        parser.add_argument("--format", choices=["json", "csv"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        platform = Platform.objects.filter(slug=options["platform"]).first()
        if platform is None:
            raise CommandError(f"no platform {options['platform']!r}")
        if options["end"] <= options["start"]:
            raise CommandError("--to must come after --from")
        report = transparency_report(platform=platform, start=options["start"], end=options["end"])
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2))
            return
        report_write_csv(report, self.stdout)
