from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from moderation.conf import app_setting
from moderation.services import COMMAND_LINE
from scanning.rescans import retro_scan_run
from scanning.tasks import retro_rescore_start


class Command(BaseCommand):
    help = (
        "Re-score the last N days of scanned, unreviewed uploads with the active model and send those whose verdict "
        "would change to review (a promotion queues this automatically for RESCORE_WINDOW_DAYS). Progress shows in "
        "the console under Retro scans."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=float, default=None, help="default: RESCORE_WINDOW_DAYS (7)")

    def handle(self, *args: Any, days: float | None, **options: Any) -> None:
        with transaction.atomic():
            scan = retro_rescore_start(
                window_days=days or app_setting("RESCORE_WINDOW_DAYS"), acting_user=COMMAND_LINE, queue=False
            )
        scan = retro_scan_run(retro_scan_id=scan.pk)
        self.stdout.write(f"re-score {scan.pk}: {scan.status}, {scan.processed} uploads scored")
        for hit in scan.flagged:
            self.stdout.write(f"  to review: {hit['external_id']} {hit['from']} → {hit['to']} (score {hit['score']})")
