"""python manage.py run_pipeline [--as-of YYYY-MM-DD]: the nightly pipeline, now, in this
process (what Celery beat runs at 02:15 UTC), with a line per step.

The day must be complete (before today, UTC). A day older than the latest day processed
gets its history rebuilt only (usage rollups and windows, health and KPI snapshots): the
steps that act on the present (the queue's standings, the raw events' upkeep, playbooks and
CTAs, KPI alerts) are skipped, and the output says so and why (``metrics.pipeline``).

One run at a time (``pipeline.exclusive``, the catch-up included): while another holds the
pipeline lock it exits with "another pipeline run is in progress (…); wait for it or stop
it", and while a run fanned out to the workers shows life (its health chunks pending) with
words naming it and saying when it would count as dead; one that has shown none for
``PIPELINE_RUN_STALE_MINUTES`` is superseded, and the output says so. Ctrl-C, or SIGTERM
while it runs, stops it with one line, the run recorded as failed ("health: interrupted
(SIGINT)"), exit code 130 (143 for SIGTERM).

It also clears the forms' keys older than two days (``accounts.once.keys_clear``), as
Celery beat's ``clear_old_form_keys`` does when deployed: embedded mode has no beat, and
this is the command its cron runs each night. Before the run and outside its steps, so a
run refused or failed clears them too; twice a day (deployed, by hand) is harmless."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from accounts import once as form_once
from accounts import utc
from metrics import pipeline
from metrics.management.arguments import ONCE, day_option, once


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises ``pipeline.Interrupted`` meanwhile (the run is recorded as failed, as
    on Ctrl-C), the previous handler restored after. Only the main thread sets handlers:
    elsewhere (``call_command`` from a thread) SIGTERM is left as it is."""

    def interrupt(signum: int, frame) -> None:
        raise pipeline.Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


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
            metavar="YYYY-MM-DD",
            help="last complete day to process, before today in UTC (default: yesterday)",
            **ONCE,
        )

    def handle(self, *args, as_of: str | None, **options) -> None:
        as_of = day_option(once(as_of, "--as-of/--date"), "--as-of")
        if as_of is not None and (why := utc.incomplete_day_words(as_of)):
            raise CommandError(f"--as-of/--date {why}")
        cleared = form_once.keys_clear()
        try:
            with _sigterm_interrupts(), pipeline.exclusive() as superseded:
                for words in superseded:  # a fanned-out run that showed no life for long
                    self.stdout.write(words)
                if as_of is None:  # like the scheduled run: missed nights first
                    for missed in pipeline.run_missed(pipeline.default_as_of()):
                        self.stdout.write(
                            f"Caught up the missed night {missed['as_of']} "
                            f"(run #{missed['run_id']}): {missed['status']}"
                        )
                summary = pipeline.run_nightly(as_of)
        except pipeline.PipelineBusy as exc:
            raise CommandError(str(exc)) from None
        except pipeline.PipelineError as exc:
            raise CommandError(f"pipeline run #{exc.run_id} failed: {exc}") from exc
        except (KeyboardInterrupt, pipeline.Interrupted) as exc:
            # one line, not a traceback: the run it stopped (its note), recorded as failed
            notes = getattr(exc, "__notes__", None)
            words = notes[-1] if notes else f"{pipeline.interrupted_words(exc)} before a run began"
            code = exc.code if isinstance(exc, pipeline.Interrupted) else 130
            raise CommandError(f"stopped: {words}", returncode=code) from None
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
                f"{key}={value}"
                for key, value in step.items()
                if key not in ("name", "seconds", "twin_names")
            )
            self.stdout.write(f"  {step['name']}: {details} ({step['seconds']:.2f}s)")
            for twins in step.get("twin_names") or ():  # the health step's: what to do
                self.stdout.write(f"  warning: {twins}")
        self.stdout.write(f"Cleared {cleared} form key(s) older than {form_once.KEEP.days} days.")
