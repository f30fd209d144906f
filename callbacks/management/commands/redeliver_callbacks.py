from django.core.management.base import BaseCommand, CommandError

from callbacks.models import CallbackDelivery, DeliveryStatus
from callbacks.tasks import callback_redeliver
from moderation.services import COMMAND_LINE


class Command(BaseCommand):
    help = "Send callback deliveries again under their original event ids: given ids, or every dead one."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("ids", nargs="*", type=int)
        parser.add_argument("--dead", action="store_true", help="every delivery that ran out of retries")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if not options["ids"] and not options["dead"]:
            raise CommandError("give delivery ids or --dead")
        deliveries = (
            CallbackDelivery.objects.filter(pk__in=options["ids"])
            if options["ids"]
            else CallbackDelivery.objects.none()
        )
        if options["dead"]:
            deliveries = deliveries | CallbackDelivery.objects.filter(status=DeliveryStatus.DEAD)
        count = 0
        for delivery in deliveries.distinct():
            callback_redeliver(delivery=delivery, acting_user=COMMAND_LINE)
            count += 1
        self.stdout.write(f"{count} deliveries queued again")
