import csv
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from hashbank.models import HashBankEntry
from hashbank.services import hash_bank_export_csv, hash_bank_import_csv, uploads_pdq_backfill
from moderation.errors import ApplicationError
from moderation.models import Platform
from moderation.services import COMMAND_LINE
from scanning.rescans import retro_scan_run
from scanning.tasks import retro_scan_start


class Command(BaseCommand):
    help = (
        "The bank of confirmed fakes (PDQ hashes). `import FILE` reads a CSV with a pdq_hash column (optional sha256, "
        "note) and queues a retro scan of earlier uploads; `export` writes the bank as CSV; `rescan` compares the "
        "whole bank with earlier uploads now, printing what it sent to review (--platform SLUG or --shared picks the "
        "bank); `backfill` hashes uploads stored before PDQ hashing existed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["import", "export", "rescan", "backfill"])
        parser.add_argument("file", nargs="?", type=Path, help="CSV to import, or to export into (default: stdout)")
        bank = parser.add_mutually_exclusive_group()
        bank.add_argument("--platform", help="platform slug")
        bank.add_argument("--shared", action="store_true", help="the bank shared by opted-in platforms")

    def handle(self, *args: Any, action: str, file: Path | None, platform: str | None, shared: bool, **_: Any) -> None:
        if action == "backfill":
            self.stdout.write(f"hashed {uploads_pdq_backfill()} uploads stored before PDQ hashing")
            return
        if not (platform or shared):
            raise CommandError("pick the bank: --platform SLUG or --shared")
        bank = None
        if platform:
            bank = Platform.objects.filter(slug=platform).first()
            if bank is None:
                raise CommandError(f"no such platform: {platform}")
        if action == "export":
            if file:
                with file.open("w", newline="") as out:
                    count = hash_bank_export_csv(platform=bank, out=out)
            else:
                count = hash_bank_export_csv(platform=bank, out=sys.stdout)
            self.stderr.write(f"exported {count} hashes")
            return
        if action == "import":
            if file is None:
                raise CommandError("import needs a CSV file")
            with file.open(newline="") as source:
                try:
                    with transaction.atomic():
                        entries = hash_bank_import_csv(
                            rows=csv.DictReader(source), platform=bank, acting_user=COMMAND_LINE
                        )
                        scan = retro_scan_start(platform=bank, entries=entries, acting_user=COMMAND_LINE)
                except ApplicationError as exc:
                    raise CommandError(exc.message) from exc
            self.stdout.write(f"imported {len(entries)} hashes; retro scan {scan.pk} queued")
            return
        with transaction.atomic():
            scan = retro_scan_start(
                platform=bank,
                entries=list(HashBankEntry.objects.filter(platform=bank)),
                acting_user=COMMAND_LINE,
                queue=False,
            )
        scan = retro_scan_run(retro_scan_id=scan.pk)
        self.stdout.write(f"retro scan {scan.pk}: {scan.status}, {scan.processed} uploads compared")
        for hit in scan.flagged:
            self.stdout.write(
                f"  sent to review: {hit['external_id']} ({hit['distance']} bits, bank entry {hit['entry_id']})"
            )
