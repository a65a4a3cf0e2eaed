"""python manage.py run_pipeline [--as-of YYYY-MM-DD]: the nightly pipeline, now, in this
process (what Celery beat runs at 02:15 UTC), with a line per step.

The day must be complete (before today, UTC). A day older than the latest day processed
gets its history rebuilt only (usage rollups and windows, health and KPI snapshots): the
steps that act on the present (the queue's standings, the raw events' upkeep, playbooks and
CTAs, KPI alerts) are skipped, and the output says so and why (``metrics.pipeline``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts import utc
from metrics import pipeline
from metrics.management.arguments import day_option


class Command(BaseCommand):
    help = (
        "Run the nightly pipeline synchronously for one complete day (default: yesterday, "
        "UTC; without --as-of, missed nights are caught up first). A day older than the "
        "latest day processed only has its history rebuilt (usage, health and KPI "
        "snapshots): the standings, playbooks and alerts, which act on the present, are "
        "skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--as-of",
            "--date",
            dest="as_of",
            default=None,
            metavar="YYYY-MM-DD",
            help="last complete day to process, before today in UTC (default: yesterday)",
        )

    def handle(self, *args, as_of: str | None, **options) -> None:
        as_of = day_option(as_of, "--as-of")
        if as_of is not None and (why := utc.incomplete_day_words(as_of)):
            raise CommandError(f"--as-of/--date {why}")
        try:
            if as_of is None:  # like the scheduled run: missed nights first
                for missed in pipeline.run_missed(pipeline.default_as_of()):
                    self.stdout.write(
                        f"Caught up the missed night {missed['as_of']} "
                        f"(run #{missed['run_id']}): {missed['status']}"
                    )
            summary = pipeline.run_nightly(as_of)
        except pipeline.PipelineError as exc:
            raise CommandError(f"pipeline run #{exc.run_id} failed: {exc}") from exc
        if summary["past"]:
            skipped = [s["name"] for s in summary["steps"] if "skipped" in s]
            rebuilt = [s["name"] for s in summary["steps"] if "skipped" not in s]
            self.stdout.write(
                f"{summary['past']}: rebuilt that day's history only "
                f"({', '.join(rebuilt)}) and skipped the steps that act on the present "
                f"({', '.join(skipped)})."
            )
        self.stdout.write(
            f"Nightly pipeline as of {summary['as_of']} (run #{summary['run_id']}): "
            f"{summary['status']} in {summary['seconds']:.2f}s"
        )
        for step in summary["steps"]:
            if "skipped" in step:
                self.stdout.write(f"  {step['name']}: skipped: {step['skipped']}")
                continue
            details = ", ".join(
                f"{key}={value}" for key, value in step.items() if key not in ("name", "seconds")
            )
            self.stdout.write(f"  {step['name']}: {details} ({step['seconds']:.2f}s)")
