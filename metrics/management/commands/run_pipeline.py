"""python manage.py run_pipeline [--as-of YYYY-MM-DD]: the nightly pipeline, now, in this
process (what Celery beat runs at 02:15 UTC), with a line per step."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts import utc
from metrics import pipeline
from metrics.management.arguments import day_option


class Command(BaseCommand):
    help = "Run the nightly pipeline synchronously for one day (default: yesterday, UTC)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--as-of",
            "--date",
            dest="as_of",
            default=None,
            metavar="YYYY-MM-DD",
            help="last complete day to process (default: yesterday in UTC)",
        )

    def handle(self, *args, as_of: str | None, **options) -> None:
        as_of = day_option(as_of, "--as-of")
        if as_of is not None and as_of > utc.today():
            raise CommandError(f"--as-of {as_of} is in the future")
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
        self.stdout.write(
            f"Nightly pipeline as of {summary['as_of']} (run #{summary['run_id']}): "
            f"{summary['status']} in {summary['seconds']:.2f}s"
        )
        for step in summary["steps"]:
            details = ", ".join(
                f"{key}={value}" for key, value in step.items() if key not in ("name", "seconds")
            )
            self.stdout.write(f"  {step['name']}: {details} ({step['seconds']:.2f}s)")
