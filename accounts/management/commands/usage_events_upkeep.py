"""python manage.py usage_events_upkeep: the nightly pipeline's ``usage_events`` step on its
own: apply ``USAGE_EVENTS_RETENTION_MONTHS`` (drop older monthly partitions of the raw usage
events; the rollups stay), keep this month's and the next two months' partitions ready and
move rows out of the DEFAULT partition (``accounts.intake.partitions``). Prints what it did."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts import utc
from accounts.intake import partitions


class Command(BaseCommand):
    help = "Apply the raw usage-event retention and keep the monthly partitions ready."

    def handle(self, *args, **options) -> None:
        today = utc.today()
        done = partitions.partitions_maintain(today=today)
        months = settings.USAGE_EVENTS_RETENTION_MONTHS
        if done["cutoff"] is None:
            self.stdout.write(
                "Retention: every raw event is kept (USAGE_EVENTS_RETENTION_MONTHS=0)"
            )
        else:
            dropped = ", ".join(done["dropped_partitions"]) or "none"
            self.stdout.write(
                f"Retention: raw events before {done['cutoff']} dropped ({months} months); "
                f"partitions dropped: {dropped}; rows deleted: {done['deleted_events']}."
            )
        created = ", ".join(done["created"]) or "none"
        self.stdout.write(
            f"Partitions created: {created}; rows moved out of the DEFAULT partition: "
            f"{done['moved']}."
        )
