"""Celery tasks of the metrics app. Thin: parse arguments (ids and ISO dates), call the
pipeline or a service. Every task is idempotent (upserts on natural keys), so ``acks_late``
redeliveries are harmless; only ``OperationalError`` (a dropped connection, a deadlock, a
lock timeout) is retried, a bounded number of times.

The incremental path: ``account_changed(account_ids)`` (call it when new events, tickets,
contracts or survey answers of accounts have been written) schedules, after the commit,
``recompute_account_health`` for each account, debounced: the first change of an account
sets a cache key for ``DEBOUNCE_SECONDS`` and sends one task with that countdown; changes
during the window find the key and send nothing, and the task reads everything committed by
then. So a burst costs one recompute, and the account is current within ~DEBOUNCE_SECONDS.
Each change is also recorded (``arrivals.arrivals_record``) and the recompute removes it;
``sweep_stale_health`` (beat, every minute) schedules again the accounts whose recorded
change is older than ``arrivals.GRACE``: a recompute lost with a killed worker, whose
message would otherwise wait an hour (the broker's visibility timeout) in Redis.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from celery import shared_task
from django.core.cache import cache
from django.db import DatabaseError, OperationalError, transaction
from django.utils import timezone

from accounts import utc
from accounts.models import Account
from outbox.services import task_enqueue

from . import arrivals, pipeline, services, standings

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 30
DEBOUNCE_KEY = "metrics:health-recompute:{}"
# the sweep sends an account's recompute again at most this often (a worker down for long
# would otherwise get one more message per account and sweep)
SWEPT_KEY = "metrics:health-swept:{}"
SWEPT_SECONDS = 10 * 60
# more accounts than this in one change (a bulk import): chunk tasks instead of one task each
INCREMENTAL_CHUNK_ABOVE = 100

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),  # only errors that may pass on retry
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
}


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,  # every step rebuilds its day, so running twice is harmless
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def run_nightly_pipeline(self, as_of: str | None = None, chunk_size: int | None = None) -> dict:
    """Nightly at 02:15 UTC (config/celery.py): the pipeline for yesterday, or ``as_of``
    (``YYYY-MM-DD``) when given. In a worker the health step fans out into chunk tasks of
    ``chunk_size`` (default ``pipeline.HEALTH_CHUNK``) account ids; run eagerly (embedded
    mode, ``.apply()``) everything runs here, in one process.

    One run at a time (``pipeline.exclusive``, the catch-up included): while another run
    holds the pipeline lock (a ``run_pipeline`` by hand), or a run fanned out to the workers
    still shows life, this logs why and returns ``{"busy": why}`` without running; the next
    schedule runs the night (and catches up)."""
    day = dt.date.fromisoformat(as_of) if as_of else None
    try:
        with pipeline.exclusive():
            if day is None:  # the scheduled run: first the nights that were missed, if any
                pipeline.run_missed(pipeline.default_as_of())
            return pipeline.run_nightly(
                day,
                fan_out=not self.request.is_eager,
                chunk_size=chunk_size or pipeline.HEALTH_CHUNK,
            )
    except pipeline.PipelineBusy as exc:
        logger.warning("nightly pipeline not run: %s", exc)
        return {"busy": str(exc)}


@shared_task(bind=True, ignore_result=True, **RETRY)
def recompute_health_chunk(
    self, account_ids: list[int], as_of: str, run_id: int | None = None, chunk: int | None = None
) -> None:
    """Set-based: a handful of aggregate queries for the whole chunk, one bulk upsert. With
    ``run_id``, a chunk of that pipeline run: skipped if the run is no longer running, and the
    task finishing the run's last chunk goes on with the steps after health."""
    if run_id is not None and not pipeline.run_is_running(run_id):
        logger.info("health chunk %s of run #%s skipped: the run is not running", chunk, run_id)
        return
    started = timezone.now()
    try:
        counts = services.health_snapshots_record(
            account_ids=account_ids,
            as_of=dt.date.fromisoformat(as_of),
            announce=run_id is None,  # a pipeline run's final step evaluates the playbooks
        )
    except OperationalError as exc:
        if run_id is not None and self.request.retries >= self.max_retries:
            pipeline.chunk_failed(run_id, chunk, exc)
        raise
    except Exception as exc:
        if run_id is not None:
            pipeline.chunk_failed(run_id, chunk, exc)
        raise
    if run_id is None and as_of >= utc.today().isoformat():  # today's: the incremental path
        arrivals.arrivals_clear(account_ids, through=started)
    if run_id is not None and pipeline.health_chunk_done(run_id=run_id, chunk=chunk, counts=counts):
        continue_nightly_pipeline.delay(run_id)


@shared_task(ignore_result=True, **RETRY)
def continue_nightly_pipeline(run_id: int) -> None:
    """The steps after health of a fanned-out run, sent by its last health chunk."""
    pipeline.continue_after_health(run_id)


@shared_task(ignore_result=True, **RETRY)
def recompute_account_health(account_id: int) -> None:
    """Today's health snapshot of one account (the incremental path). Clears the debounce
    key first, so a change committed while this runs schedules another recompute."""
    cache.delete(DEBOUNCE_KEY.format(account_id))
    started = timezone.now()
    if not Account.objects.filter(pk=account_id).exists():
        logger.info("account %s is gone: no health to recompute", account_id)
        arrivals.arrivals_clear([account_id], through=started)
        return
    services.health_snapshots_record(account_ids=[account_id], as_of=utc.today())
    standings.account_standings_refresh(account_ids=[account_id])
    arrivals.arrivals_clear([account_id], through=started)


@shared_task(ignore_result=True, **RETRY)
def sweep_stale_health() -> int:
    """Beat, every minute (config/celery.py): schedule the debounced recompute again for the
    accounts whose data arrived more than ``arrivals.GRACE`` ago and that no recompute has
    read since, at most ``arrivals.SWEEP_LIMIT``, the oldest first; an account at most once
    every ``SWEPT_SECONDS``. Returns how many were scheduled."""
    due = arrivals.accounts_due()
    sent = 0
    for account_id in due:
        if cache.add(SWEPT_KEY.format(account_id), 1, timeout=SWEPT_SECONDS) is not False:
            _schedule_account(account_id)
            sent += 1
    if due:
        logger.warning(
            "%s accounts' data arrived over %ss ago without a health recompute: %s scheduled",
            len(due),
            int(arrivals.GRACE.total_seconds()),
            sent,
        )
    return sent


def _schedule_account(account_id: int) -> None:
    # add() is None when the cache (Redis) is away: no debounce then, schedule it anyway
    if cache.add(DEBOUNCE_KEY.format(account_id), 1, timeout=DEBOUNCE_SECONDS) is not False:
        task_enqueue(recompute_account_health, args=[account_id], countdown=DEBOUNCE_SECONDS)


def _schedule(account_ids: list[int]) -> None:
    # recorded first: in embedded mode the recompute runs right here and removes the record
    try:
        arrivals.arrivals_record(account_ids)
    except DatabaseError:  # after the data's commit: its recompute still goes out
        logger.exception("the arrival of accounts %s' data was not recorded", account_ids[:10])
    if len(account_ids) > INCREMENTAL_CHUNK_ABOVE:
        today = utc.today().isoformat()
        size = pipeline.HEALTH_CHUNK
        for start in range(0, len(account_ids), size):
            task_enqueue(recompute_health_chunk, args=[account_ids[start : start + size], today])
        return
    for account_id in account_ids:
        _schedule_account(account_id)


def account_changed(account_ids: Iterable[int]) -> None:
    """The hook for writers of account data (the intake): recompute the health of these
    accounts as of today, debounced, once the current transaction commits (right away
    outside one). Up to ``INCREMENTAL_CHUNK_ABOVE`` accounts get one debounced task each;
    more (a bulk import) get chunk tasks."""
    ids = sorted({int(i) for i in account_ids})
    if ids:
        transaction.on_commit(lambda: _schedule(ids))
