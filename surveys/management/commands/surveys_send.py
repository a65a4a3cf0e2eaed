"""python manage.py surveys_send [--reminders-only | --no-reminders] [--json]: what Celery
beat does for surveys (``surveys.tasks``), once: the scheduled campaigns whose send time came,
the event campaigns (tickets solved, renewals coming) and the reminders due. For embedded
mode, where no beat runs, and for operators (cron). Thin: see surveys.services."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from surveys import services
from surveys.models import Campaign


class Command(BaseCommand):
    help = "Send the due survey campaigns and reminders now, as Celery beat does each run."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--reminders-only", action="store_true", help="only the reminders, no campaigns"
        )
        which.add_argument("--no-reminders", action="store_true", help="only the campaigns")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args, reminders_only: bool, no_reminders: bool, **options) -> None:
        scheduled: dict[int, dict[str, int]] = {}
        events: dict[int, int] = {}
        reminders = None
        if not reminders_only:
            scheduled = services.campaigns_send_due()
            events = services.event_campaigns_run()
        if not no_reminders:
            reminders = services.invitation_reminders_send()
        names = dict(
            Campaign.objects.filter(pk__in=[*scheduled, *events]).values_list("pk", "name")
        )
        if options["json"]:
            result: dict = {
                "scheduled": [
                    {"campaign": pk, "name": names.get(pk, ""), **counts}
                    for pk, counts in scheduled.items()
                ],
                "events": [
                    {"campaign": pk, "name": names.get(pk, ""), "issued": issued}
                    for pk, issued in events.items()
                ],
            }
            if reminders is not None:
                result["reminders"] = reminders
            self.stdout.write(json.dumps(result, indent=2))
            return
        out = self.stdout.write
        if not reminders_only:
            if scheduled:
                out(f"Scheduled campaigns: {len(scheduled)} sent")
                for pk, counts in scheduled.items():
                    out("  " + services.round_summary_text(counts, subject=f"#{pk} {names[pk]}"))
            else:
                out("Scheduled campaigns: none due")
            invited = {pk: n for pk, n in events.items() if n}
            if invited:
                out(f"Event campaigns: {sum(invited.values())} invited")
                for pk, n in invited.items():
                    out(f"  #{pk} {names[pk]}: {n} invited")
            else:
                out("Event campaigns: nobody to invite")
        if reminders is not None:
            out(f"Reminders: {reminders} sent")
