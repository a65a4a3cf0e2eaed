from __future__ import annotations

import datetime as dt

from celery import shared_task

from . import services


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=None)
def health_backfill(self, job: str, start: str, end: str) -> None:
    """Rescore the health of every day in [start, end] with the active models (after a model
    change), and every snapshot dated after ``end`` (accounts recomputed today), then the
    queue standings. Idempotent: each day's snapshots are upserted. While the pipeline is
    busy (the night's run, another rescoring) it tries again every minute, up to
    ``services.BACKFILL_WAIT_HOURS`` (the service gives up then); run inline (embedded mode,
    eager: a retry would run again at once) the service waits in the request instead."""
    inline = bool(self.request.is_eager)
    over = services.backfill_run(
        job=job,
        start=dt.date.fromisoformat(start),
        end=dt.date.fromisoformat(end),
        inline=inline,
        tries=self.request.retries or 0,
    )
    if not over:
        raise self.retry(countdown=services.BACKFILL_RETRY_SECONDS)
