"""Day arguments of the compliance commands."""

from __future__ import annotations

from datetime import datetime, time

from django.core.management.base import CommandError
from django.utils import timezone


def day_start(value: str) -> datetime:
    """The start of day `value` (YYYY-MM-DD) in the current time zone, for argparse's `type=`."""
    try:
        return timezone.make_aware(datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time.min))
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None
