"""The rescore after a model change (``workspace.services.backfill_*``) with the real
pipeline functions: the nightly day's snapshots, an account recomputed during the day
(its snapshot dated today), a new version, the rescore, the queue standings."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.urls import reverse

from metrics import tasks as metrics_tasks
from metrics.models import AccountStanding, HealthSnapshot
from metrics.services import (
    health_model_ensure_default,
    health_model_version_create,
    health_snapshots_record,
)
from metrics.standings import account_standings_refresh
from tests.factories import AccountFactory, ContractFactory
from tests.waiting import wait_until
from workspace import services

from .conftest import utc_today

pytestmark = pytest.mark.django_db


def _usage_only(version) -> list[dict]:
    """The components of ``version`` with every weight but usage's set to 0."""
    out = []
    for c in version.components:
        out.append({**c, "weight": c["weight"] if c["key"] == "usage" else 0})
    return out


def test_rescore_reaches_the_snapshots_dated_after_the_nightly_day(admin_user, celery_eager):
    today = utc_today()
    yesterday = today - dt.timedelta(days=1)
    noted, quiet = AccountFactory(), AccountFactory()
    for account in (noted, quiet):
        ContractFactory(
            account=account, start_date=dt.date(2020, 1, 1), mrr=Decimal(100), quantity=10
        )
    model = health_model_ensure_default()
    v1 = model.versions.get(active=True)
    # the nightly run of yesterday, its standings; then a CSM's note recomputes one account
    health_snapshots_record(as_of=yesterday)
    account_standings_refresh()
    metrics_tasks.recompute_account_health(noted.pk)
    assert HealthSnapshot.objects.get(account=noted, day=today).model_version == v1
    assert AccountStanding.objects.get(account=noted).day == today

    v2 = health_model_version_create(model=model, components=_usage_only(v1), notes="usage")
    job = services.backfill_start(days=2, user=admin_user)

    # every snapshot from the range's start on is v2's: the two days of the range, and the
    # one of today (the recomputed account only: the quiet one gets no snapshot today)
    snaps = HealthSnapshot.objects.filter(day__gte=yesterday - dt.timedelta(days=1))
    assert {(s.account_id, s.day) for s in snaps} == {
        (noted.pk, yesterday - dt.timedelta(days=1)),
        (quiet.pk, yesterday - dt.timedelta(days=1)),
        (noted.pk, yesterday),
        (quiet.pk, yesterday),
        (noted.pk, today),
    }
    assert {s.model_version_id for s in snaps} == {v2.pk}
    # the progress counts today's day too: 2 days of the range + 1 later day
    progress = services.backfill_progress(job)
    assert {k: progress[k] for k in ("status", "done", "total", "last_day", "start", "end")} == {
        "status": "done",
        "done": 3,
        "total": 3,
        "last_day": today.isoformat(),
        "start": (yesterday - dt.timedelta(days=1)).isoformat(),
        "end": yesterday.isoformat(),
    }
    # the queue reads the rescored snapshot of today, the others stay on yesterday
    today_snap = HealthSnapshot.objects.get(account=noted, day=today)
    standing = AccountStanding.objects.get(account=noted)
    assert (standing.day, standing.score, standing.band) == (
        today,
        today_snap.score,
        today_snap.band,
    )
    assert AccountStanding.objects.get(account=quiet).day == yesterday


def test_rescore_days_start_at_the_books_first_data_day(admin_user, celery_eager):
    """The book's only data is a contract that started 2 days ago: a rescore of the last
    30 days covers 2 days (the day before yesterday and yesterday; nothing is dated
    later), not 30 days of blank snapshots."""
    yesterday = utc_today() - dt.timedelta(days=1)
    first = yesterday - dt.timedelta(days=1)
    ContractFactory(account=AccountFactory(), start_date=first, mrr=Decimal(100), quantity=5)
    health_model_ensure_default()
    job = services.backfill_start(days=30, user=admin_user)
    progress = services.backfill_progress(job)
    assert (progress["status"], progress["start"], progress["end"]) == (
        "done",
        first.isoformat(),
        yesterday.isoformat(),
    )
    assert (progress["done"], progress["total"]) == (2, 2)  # (yesterday - first) + 1 = 2
    assert sorted(HealthSnapshot.objects.values_list("day", flat=True)) == [first, yesterday]


def test_rescore_wholly_before_the_data_is_a_failed_job_not_a_task(
    client, admin_user, celery_eager
):
    """Data only from today on: the days up to yesterday have nothing to score; the job
    says so and nothing is written."""
    ContractFactory(account=AccountFactory(), start_date=utc_today(), mrr=Decimal(100), quantity=5)
    health_model_ensure_default()
    job = services.backfill_start(days=3, user=admin_user)
    progress = services.backfill_progress(job)
    assert progress["status"] == "failed"
    assert progress["error"] == (
        f"no account has data before {utc_today().isoformat()}; recompute from that day on"
    )
    assert not HealthSnapshot.objects.exists()
    client.force_login(admin_user)
    page = client.get(reverse("workspace:backfill-status"), {"job": job}).content.decode()
    assert (
        f"Nothing rescored: no account has data before {utc_today().isoformat()}; "
        "recompute from that day on." in page
    )


@contextmanager
def _lock_in_another_session():
    """The pipeline lock held by another database session, as the night's run in another
    process holds it (PostgreSQL: the advisory lock); released when the block ends."""
    from django.db import DEFAULT_DB_ALIAS, connection, connections

    from metrics import pipeline

    if connection.vendor != "postgresql":
        pytest.skip("an advisory lock of PostgreSQL")
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", pipeline.RUN_LOCK)
        yield
    finally:
        other.close()  # the session ends: the lock goes


def _busy_book():
    """One account scored for yesterday (a rescore of 3 days adds 2 snapshots), and the
    run of the other session (its row, for the page to name it)."""
    from metrics.models import PipelineRun

    account = AccountFactory()
    ContractFactory(account=account, start_date=utc_today() - dt.timedelta(days=30))
    yesterday = utc_today() - dt.timedelta(days=1)
    health_snapshots_record(as_of=yesterday)
    assert HealthSnapshot.objects.count() == 1
    return yesterday, PipelineRun.objects.create(as_of=yesterday)


def test_rescore_while_a_pipeline_run_holds_the_lock_waits_in_the_worker_then_runs(
    client, admin_user
):
    """Deployed: a night's run (another session holds the lock) and a rescore must not
    interleave their writes of the same days. The rescore is not refused: the worker's task
    leaves it waiting, in the run's words, and tries again in a minute (Celery's retry);
    once the lock is free the same job rescores."""
    from unittest import mock

    from celery.exceptions import Retry

    from workspace import tasks

    yesterday, holder = _busy_book()
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:  # the worker's part
        job = services.backfill_start(days=3, user=admin_user)
    args = delay.call_args.args
    client.force_login(admin_user)
    with _lock_in_another_session():
        with pytest.raises(Retry):  # called directly, as a worker calls it: not eager
            tasks.health_backfill(*args)
        progress = services.backfill_progress(job)
        started = holder.started_at.astimezone(dt.UTC)
        words = (
            f"another pipeline run is in progress (run #{holder.pk} for {yesterday}, "
            f"started {started:%H:%M} UTC)"
        )
        assert (progress["status"], progress["busy"], progress["done"]) == ("waiting", words, 0)
        assert list(HealthSnapshot.objects.values_list("day", flat=True)) == [yesterday]
        page = client.get(reverse("workspace:backfill-status"), {"job": job}).content.decode()
        assert (
            f"Waiting</span> Not started yet: {words}. It starts by itself when that ends "
            "(tried again every minute, for up to 6 hours); this page follows it." in page
        )
        listed = client.get(reverse("workspace:backfill-status")).content.decode()
        assert f'Waiting</span> <span class="small">{words}</span>' in listed
    tasks.health_backfill(*args)  # the retry, the lock free: no Retry raised
    progress = services.backfill_progress(job)
    assert (progress["status"], progress["done"], progress["total"]) == ("done", 3, 3)
    assert "busy" not in progress
    assert HealthSnapshot.objects.count() == 3


def test_a_rescore_that_waited_six_hours_gives_up_and_says_so(client, admin_user):
    """Still busy after ``BACKFILL_WAIT_HOURS`` of tries: failed, nothing rescored, no
    further retry."""
    from unittest import mock

    from django.core.cache import cache
    from django.utils import timezone

    from workspace import tasks

    yesterday, holder = _busy_book()
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:
        job = services.backfill_start(days=3, user=admin_user)
    key = services.BACKFILL_KEY.format(job)
    long_ago = timezone.now() - dt.timedelta(hours=6, minutes=1)
    cache.set(key, {**cache.get(key), "waiting_since": long_ago.isoformat()})
    with _lock_in_another_session():
        tasks.health_backfill(*delay.call_args.args)  # returns: no Retry
    progress = services.backfill_progress(job)
    assert progress["status"] == "failed" and progress["total"] == 0
    assert progress["error"].startswith(
        f"the pipeline stayed busy for 6 hours: another pipeline run is in progress "
        f"(run #{holder.pk} for {yesterday}"
    )
    assert list(HealthSnapshot.objects.values_list("day", flat=True)) == [yesterday]
    client.force_login(admin_user)
    page = client.get(reverse("workspace:backfill-status"), {"job": job}).content.decode()
    assert "Nothing rescored: the pipeline stayed busy for 6 hours: another" in page


@pytest.mark.django_db(transaction=True)  # the other thread's connection reads the runs too
def test_rescore_run_inline_waits_for_the_lock_in_the_request(
    admin_user, celery_eager, monkeypatch
):
    """Embedded (tasks inline, no worker to try again later): the request waits while
    another rescore of this server holds the lock (another thread), then rescores."""
    import threading

    from django.db import connection

    from metrics import pipeline

    monkeypatch.setattr(pipeline, "WAIT_POLL_SECONDS", 0.1)
    _busy_book()
    held = threading.Event()

    def other_rescore() -> None:
        try:
            with pipeline.exclusive():
                held.set()
                # holds the lock until the request's rescore says it waits
                wait_until(
                    lambda: any(j["status"] == "waiting" for j in services.backfill_recent()),
                    "the rescore to wait",
                    timeout=30,
                )
        finally:
            connection.close()

    thread = threading.Thread(target=other_rescore)
    thread.start()
    assert held.wait(10)
    job = services.backfill_start(days=3, user=admin_user)
    thread.join(10)
    progress = services.backfill_progress(job)
    assert (progress["status"], progress["done"]) == ("done", 3)
    assert "waiting_since" in progress  # it did wait
    assert HealthSnapshot.objects.count() == 3


def test_a_second_ask_for_the_same_days_joins_the_rescore_not_started_yet(admin_user):
    """A double click on Rescore (or a second admin) while the first rescore is queued or
    waiting for the pipeline: the same job, one task. Not started, it reads the models
    active when it starts, so the second ask is answered by it; a second job would wait
    for it and then rescore every day again."""
    from unittest import mock

    from celery.exceptions import Retry
    from django.core.cache import cache
    from django.utils import timezone

    from workspace import tasks

    _busy_book()
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:
        job = services.backfill_start(days=3, user=admin_user)
        assert services.backfill_start(days=3, user=admin_user) == job  # queued: joined
        with _lock_in_another_session(), pytest.raises(Retry):
            tasks.health_backfill(*delay.call_args.args)
        assert services.backfill_progress(job)["status"] == "waiting"
        assert services.backfill_start(days=3, user=admin_user) == job  # waiting: joined
        assert delay.call_count == 1
        other = services.backfill_start(days=2, user=admin_user)  # other days: its own
        assert other != job and delay.call_count == 2
        # a waiting job no longer tried for long (its task lost): a new job, not joined
        key = services.BACKFILL_KEY.format(job)
        long_ago = (timezone.now() - dt.timedelta(minutes=30)).isoformat()
        cache.set(key, {**cache.get(key), "seen_at": long_ago})
        assert services.backfill_start(days=3, user=admin_user) not in (job, other)
        assert delay.call_count == 3
    assert [j["job"] for j in services.backfill_recent()][1:] == [other, job]


def test_a_rescore_whose_progress_was_lost_still_gives_up_after_its_tries(admin_user):
    """The progress (and when the waiting began) is in the cache, which may lose it: the
    task's own count of tries bounds the wait all the same, never a retry every minute for
    good."""
    from unittest import mock

    from django.core.cache import cache

    yesterday, _ = _busy_book()
    with mock.patch("workspace.tasks.health_backfill.delay") as delay:
        job = services.backfill_start(days=3, user=admin_user)
    _, start, end = delay.call_args.args
    tries = services.BACKFILL_WAIT_HOURS * 3600 // services.BACKFILL_RETRY_SECONDS  # 360
    run = {
        "job": job,
        "start": dt.date.fromisoformat(start),
        "end": dt.date.fromisoformat(end),
        "inline": False,
    }
    with _lock_in_another_session():
        cache.delete(services.BACKFILL_KEY.format(job))
        assert services.backfill_run(**run, tries=tries - 1) is False  # tries again
        cache.delete(services.BACKFILL_KEY.format(job))
        assert services.backfill_run(**run, tries=tries) is True  # over: failed
    progress = services.backfill_progress(job)
    assert progress["status"] == "failed"
    assert progress["error"].startswith("the pipeline stayed busy for 6 hours")
    assert list(HealthSnapshot.objects.values_list("day", flat=True)) == [yesterday]


@pytest.mark.django_db(transaction=True)  # the other thread's connection reads the jobs too
def test_rescore_run_inline_waits_for_a_run_in_another_process(
    admin_user, celery_eager, monkeypatch, tmp_path
):
    """Embedded: the night's ``run_pipeline`` from cron, another process, holds the lock
    (SQLite: the OS lock of its file beside the database). The page's rescore, run in the
    request, waits for it, then rescores once that process is gone."""
    import threading

    from django.db import connection

    from metrics import pipeline
    from tests.waiting import hold_lock_file

    if connection.vendor != "sqlite" or pipeline.fcntl is None:
        pytest.skip("embedded mode's lock file (SQLite, with fcntl)")
    monkeypatch.setattr(pipeline, "WAIT_POLL_SECONDS", 0.1)
    path = tmp_path / "book.sqlite3.pipeline-lock"
    monkeypatch.setattr(pipeline, "lock_file", lambda: path)  # the test database is in memory
    _busy_book()
    holder = hold_lock_file(path)

    def end_the_run_once_the_rescore_waits() -> None:
        try:
            wait_until(
                lambda: any(j["status"] == "waiting" for j in services.backfill_recent()),
                "the rescore to wait",
                timeout=30,
            )
        finally:
            holder.kill()
            connection.close()

    thread = threading.Thread(target=end_the_run_once_the_rescore_waits)
    thread.start()
    job = services.backfill_start(days=3, user=admin_user)
    thread.join(10)
    holder.communicate()
    progress = services.backfill_progress(job)
    assert (progress["status"], progress["done"]) == ("done", 3)
    assert "waiting_since" in progress  # it did wait
    assert HealthSnapshot.objects.count() == 3
