"""Beat tasks: the weekly digests (Monday 06:00 UTC) and the scheduled reports (daily 06:30
UTC, each report when its cadence period ended yesterday). Thin: the services do the work;
the outbox keys make a second run send nothing."""

from __future__ import annotations

from celery import shared_task

from accounts import utc

from . import services


@shared_task
def send_weekly_digests() -> int:
    return services.digests_send(today=utc.today())


@shared_task
def send_scheduled_reports() -> int:
    return services.scheduled_reports_send(as_of=utc.yesterday())
