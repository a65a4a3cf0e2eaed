"""Celery tasks of the voice of the customer: thin, idempotent, ids and ISO dates only."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.utils import timezone

from accounts import utc
from outbox.services import task_enqueue

from . import services
from .models import ThemeRun

logger = logging.getLogger(__name__)
RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),  # the database may be back in a moment
    "retry_backoff": True,
    "max_retries": 5,
}
RESCORE_HOURS = 48  # the nightly run rescores texts changed in the last two days
DEBOUNCE_KEY = "voice:texts:{}"
DEBOUNCE_SECONDS = 10  # before the health recompute (30 s), so it sees the new scores


@shared_task(ignore_result=True, **RETRY)
def refresh_all_voice(as_of: str | None = None, rescore_all: bool = False) -> dict:
    """Nightly: score the texts that changed (all of them with ``rescore_all``), record
    every account's sentiment and relationship for ``as_of`` (default yesterday, UTC) and
    rebuild the north-star weeks. Safe to run twice (upserts)."""
    day = dt.date.fromisoformat(as_of) if as_of else utc.yesterday()
    since = None if rescore_all else timezone.now() - dt.timedelta(hours=RESCORE_HOURS)
    texts = services.text_sentiments_refresh(since=since)
    scores = services.voice_scores_record(as_of=day)
    star = services.north_star_weeks_record(as_of=day)
    result = {"as_of": day.isoformat(), "texts": texts, "scores": scores, "north_star": star}
    logger.info("voice refresh: %s", result)
    return result


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def compute_themes(run_id: int) -> None:
    """Compute the themes of a run started by ``request_themes`` or the nightly sweeper.
    Bounded: at most ``services.THEME_MAX_TEXTS`` texts (≈ 1–2 minutes on two cores, see
    docs/benchmarks.md), and Celery stops it after 10 minutes (the run is marked failed)."""
    run = ThemeRun.objects.filter(pk=run_id, status=ThemeRun.Status.RUNNING).first()
    if run is None:
        logger.info("themes run #%s is not running: nothing to do", run_id)
        return
    services.themes_compute(run=run)


@shared_task(ignore_result=True)
def compute_all_themes(as_of: str | None = None) -> None:
    """Nightly: start a themes run for ``as_of`` (default yesterday), unless one runs."""
    day = dt.date.fromisoformat(as_of) if as_of else utc.yesterday()
    run = services.theme_run_start(as_of=day)
    if run is not None:
        task_enqueue(compute_themes, args=[run.pk])


def request_themes(*, user) -> ThemeRun | None:
    """On demand (the themes page): start a run now; None when one is already running.
    The task is sent once the run's row is committed."""
    run = services.theme_run_start(as_of=utc.today(), requested_by=user)
    if run is not None:
        transaction.on_commit(lambda: task_enqueue(compute_themes, args=[run.pk]))
    return run


@shared_task(ignore_result=True, **RETRY)
def score_account_texts(account_ids: list[int]) -> None:
    """Score the texts of accounts whose data just changed (the incremental path), so the
    health recompute that follows sees them."""
    for account_id in account_ids:
        cache.delete(DEBOUNCE_KEY.format(account_id))
    services.text_sentiments_refresh(account_ids=account_ids)


def north_star_changed() -> None:
    """After an admin picked a new north star: rebuild its weeks once the choice commits."""
    transaction.on_commit(lambda: task_enqueue(rebuild_north_star))


@shared_task(ignore_result=True, **RETRY)
def rebuild_north_star() -> None:
    """After an admin picked a new north star: its weeks, now."""
    services.north_star_weeks_record(as_of=utc.today())


def account_texts_changed(account_ids: Iterable[int]) -> None:
    """Hook for writers of account data (``ACCOUNT_DATA_CHANGED_HOOKS``): score these
    accounts' texts once the current transaction commits. A bulk import (over 1,000
    accounts) leaves it to the nightly run."""
    ids = sorted({int(i) for i in account_ids})
    if not ids or len(ids) > 1000:
        return
    # debounced per account: tracking calls report the same accounts all day long
    ids = [i for i in ids if cache.add(DEBOUNCE_KEY.format(i), 1, timeout=DEBOUNCE_SECONDS)]
    if ids:
        transaction.on_commit(
            lambda: task_enqueue(score_account_texts, args=[ids], countdown=DEBOUNCE_SECONDS)
        )
