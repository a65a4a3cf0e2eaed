"""python manage.py recompute --from YYYY-MM-DD --to YYYY-MM-DD [--chunk-size N]: rebuild the
daily health snapshots as of each day of the range, using only data up to that day, with the
health models active now (e.g. after a model change). Prints a line per day."""

from __future__ import annotations

import argparse

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import utc
from metrics import services
from metrics.management.arguments import day_option

MAX_DAYS = 3660  # ten years of days in one call


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {raw!r}")
    return value


class Command(BaseCommand):
    help = "Rebuild health snapshots for every day from --from to --to (both included)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
        parser.add_argument(
            "--chunk-size",
            type=_positive,
            default=services.CHUNK_SIZE,
            help=f"accounts per set of queries (default {services.CHUNK_SIZE})",
        )

    def handle(self, *args, start: str, end: str, chunk_size: int, **options) -> None:
        start, end = day_option(start, "--from"), day_option(end, "--to")
        today = utc.today()
        if end < start:
            raise CommandError(f"--to {end} is before --from {start}")
        if end > today:
            raise CommandError(f"--to {end} is in the future (today is {today}, UTC)")
        if (end - start).days + 1 > MAX_DAYS:
            raise CommandError(f"at most {MAX_DAYS} days per run, got {(end - start).days + 1}")

        def report(day: dict) -> None:
            self.stdout.write(
                f"{day['day']}: {day['accounts']} accounts: {day['green']} green, "
                f"{day['yellow']} yellow, {day['red']} red, {day['no_data']} without data"
                + (f", {day['no_model']} without a model" if day["no_model"] else "")
            )

        try:
            days = services.health_recompute(
                start=start, end=end, chunk_size=chunk_size, progress=report
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        total = sum(d["accounts"] for d in days)
        self.stdout.write(
            f"Recomputed health for {len(days)} day(s), {start} to {end}: {total} snapshots."
        )
