from __future__ import annotations

import datetime as dt

from celery import shared_task

from . import services


@shared_task(ignore_result=True, acks_late=True)
def health_backfill(job: str, start: str, end: str) -> None:
    """Rescore the health of every day in [start, end] with the active models (after a model
    change), and every snapshot dated after ``end`` (accounts recomputed today), then the
    queue standings. Idempotent: each day's snapshots are upserted."""
    services.backfill_run(
        job=job, start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end)
    )
