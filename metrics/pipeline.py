"""The nightly pipeline: the steps that turn a day's raw data into what CSMs see next
morning, run in order for one ``as_of`` day and recorded as a ``PipelineRun``.

``as_of`` is the last *complete* UTC day (default: yesterday): a run at 02:15 on the 6th
finalizes the 5th. Steps: the usage rollup reconcile, then the health snapshots; KPI
snapshots and playbook rules join ``STEPS`` as they are built.

Called by the Celery task ``metrics.tasks.run_nightly_pipeline`` (beat, 02:15 UTC) and by
``python manage.py run_pipeline``; plain functions, runnable from a shell.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.intake import events as intake_events
from accounts.models import UsageDaily, UsageEvent, UsageFeatureDaily

from . import services
from .models import PipelineRun

logger = logging.getLogger(__name__)

# Days reconciled before and including as_of: yesterday and the day before, so events that
# arrived late (after the previous night's run) are counted too.
ROLLUP_DAYS = 2


class PipelineError(Exception):
    """A step failed; the run is recorded as failed with the error."""

    def __init__(self, message: str, *, run_id: int, step: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step


def default_as_of() -> dt.date:
    """The last complete UTC day."""
    return timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)


def usage_rollups_reconcile(*, as_of: dt.date, days: int = ROLLUP_DAYS) -> dict[str, Any]:
    """Rebuild UsageDaily and UsageFeatureDaily for the ``days`` UTC days ending with
    ``as_of`` from the raw events, so the rollups equal the events whatever happened on
    ingest. Set-based: clear the window, then rebuild every (account, day) pair that has
    events with the intake's own rollup code. One transaction: readers never see a gap."""
    first = as_of - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    with transaction.atomic():
        pairs = list(
            UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
            .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
            .values_list("account_id", "day")
            .order_by()
            .distinct()
        )
        # rows of the window with no events left (or a feature no longer used) must go too
        cleared, _ = UsageDaily.objects.filter(day__gte=first, day__lte=as_of).delete()
        UsageFeatureDaily.objects.filter(day__gte=first, day__lte=as_of).delete()
        rebuilt = intake_events.rollups_rebuild(pairs=pairs) if pairs else 0
    return {
        "first_day": first.isoformat(),
        "last_day": as_of.isoformat(),
        "account_days_before": cleared,  # UsageDaily rows of the window before the rebuild
        "account_days": rebuilt,  # ... and after it: one per account with events that day
    }


def health_snapshots(*, as_of: dt.date) -> dict[str, Any]:
    """Every account's health snapshot as of ``as_of`` (after the rollups: usage first)."""
    return services.health_snapshots_record(as_of=as_of)


Step = Callable[..., dict[str, Any]]
STEPS: list[tuple[str, Step]] = [
    ("usage_rollups", usage_rollups_reconcile),
    ("health", health_snapshots),
]


def run_nightly(as_of: dt.date | None = None) -> dict[str, Any]:
    """Run every step for ``as_of`` (default: yesterday, UTC) and record the run.

    Returns ``{"run_id", "as_of", "status", "seconds", "steps": [{"name", "seconds", ...}]}``.
    Re-running a day is harmless: every step rebuilds its output for that day. A failing
    step stops the run, which is recorded as failed, and raises ``PipelineError``."""
    as_of = as_of or default_as_of()
    run = PipelineRun.objects.create(as_of=as_of)
    clock = time.monotonic()
    for name, step in STEPS:
        step_clock = time.monotonic()
        try:
            info = step(as_of=as_of)
        except Exception as exc:
            run.status = PipelineRun.Status.FAILED
            run.error = f"{name}: {type(exc).__name__}: {exc}"
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at", "steps"])
            logger.exception("nightly pipeline %s failed in step %s", as_of, name)
            raise PipelineError(run.error, run_id=run.pk, step=name) from exc
        run.steps.append({"name": name, **info, "seconds": round(time.monotonic() - step_clock, 3)})
        run.save(update_fields=["steps"])
    run.status = PipelineRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    summary = {
        "run_id": run.pk,
        "as_of": as_of.isoformat(),
        "status": str(run.status),
        "seconds": round(time.monotonic() - clock, 3),
        "steps": run.steps,
    }
    logger.info(
        "nightly pipeline for %s: run #%s %s in %.2fs",
        as_of,
        run.pk,
        run.status,
        summary["seconds"],
    )
    return summary
