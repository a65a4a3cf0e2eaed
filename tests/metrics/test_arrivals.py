"""The safety net of the incremental health recompute: every change of an account's data is
recorded, the recompute removes it, and the sweep schedules again what no recompute read
within ``arrivals.GRACE`` (a recompute lost with a worker killed mid-task)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from metrics import arrivals, tasks
from metrics.models import AccountDataArrival, HealthSnapshot
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

MIN = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_sweep_takes_data_no_recompute_read_and_older_than_the_debounce(celery_eager):
    now = timezone.now()
    lost, read, fresh = AccountFactory(), AccountFactory(), AccountFactory()
    for account in (lost, read, fresh):
        ContractFactory(account=account, quantity=10)
    # lost: refreshed 10 minutes ago, an event batch 5 minutes later, its recompute never ran
    arrivals.arrivals_record([lost.pk], at=now - 10 * MIN)
    tasks.recompute_account_health.apply(args=[lost.pk])  # runs now: reads that data
    arrivals.arrivals_record([lost.pk], at=now + 5 * MIN)  # and "5 minutes later" ...
    later = now + 5 * MIN + arrivals.GRACE + dt.timedelta(seconds=1)  # ... swept after GRACE
    # read: its data arrived, then its recompute ran
    arrivals.arrivals_record([read.pk], at=now - 10 * MIN)
    tasks.recompute_account_health.apply(args=[read.pk])
    assert HealthSnapshot.objects.filter(account=read).exists()
    # fresh: arrived 10 s before the sweep, its debounced recompute is still due
    arrivals.arrivals_record([fresh.pk], at=later - dt.timedelta(seconds=10))

    assert arrivals.accounts_due(now=later) == [lost.pk]
    assert not AccountDataArrival.objects.filter(account=read).exists()


def test_the_oldest_arrivals_first_at_most_the_limit():
    now = timezone.now()
    accounts = AccountFactory.create_batch(4)
    for n, account in enumerate(accounts):
        arrivals.arrivals_record([account.pk], at=now - (10 - n) * MIN)
    assert arrivals.accounts_due(now=now, limit=3) == [a.pk for a in accounts[:3]]


@pytest.mark.parametrize("n", [3, 30])
def test_recording_and_sweeping_cost_one_query_whatever_the_number_of_accounts(
    n, django_assert_num_queries
):
    ids = [a.pk for a in AccountFactory.create_batch(n)]
    with django_assert_num_queries(1):
        arrivals.arrivals_record(ids, at=timezone.now() - 5 * MIN)
    with django_assert_num_queries(1):
        assert sorted(arrivals.accounts_due()) == sorted(ids)
    with django_assert_num_queries(1):
        arrivals.arrivals_record(ids)  # again, later: the later time is kept, no new rows
    assert AccountDataArrival.objects.count() == n
    assert arrivals.accounts_due() == []


def test_a_change_during_the_recompute_stays_due():
    account = AccountFactory()
    started = timezone.now()
    arrivals.arrivals_record([account.pk], at=started - MIN)
    arrivals.arrivals_record([account.pk], at=started + dt.timedelta(seconds=1))
    assert arrivals.arrivals_clear([account.pk], through=started) == 0
    assert AccountDataArrival.objects.filter(account=account).exists()


def test_the_sweep_task_schedules_the_debounced_recompute_once(monkeypatch, caplog):
    account = AccountFactory()
    arrivals.arrivals_record([account.pk], at=timezone.now() - 5 * MIN)
    scheduled: list[int] = []
    monkeypatch.setattr(tasks, "_schedule_account", scheduled.append)
    assert tasks.sweep_stale_health.apply().get() == 1
    assert scheduled == [account.pk]
    assert "1 accounts' data arrived over 90s ago" in caplog.text
    # still due at the next sweep (the worker is down): not sent again for SWEPT_SECONDS
    assert tasks.sweep_stale_health.apply().get() == 0
    assert scheduled == [account.pk]


def test_embedded_mode_records_and_the_inline_recompute_clears(
    settings, celery_eager, django_capture_on_commit_callbacks
):
    """Eager tasks, no beat: the change is recorded, the recompute runs at once and removes
    it; nothing is left for a sweep."""
    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]
    account = AccountFactory()
    ContractFactory(account=account, quantity=10)
    from accounts.services import account_data_changed

    with django_capture_on_commit_callbacks(execute=True):
        account_data_changed([account.pk])
    assert HealthSnapshot.objects.filter(account=account).exists()
    assert not AccountDataArrival.objects.exists()


def test_a_bulk_change_is_recorded_and_its_chunk_recompute_clears_it(
    settings, celery_eager, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]
    accounts = AccountFactory.create_batch(tasks.INCREMENTAL_CHUNK_ABOVE + 1)
    from accounts.services import account_data_changed

    with django_capture_on_commit_callbacks(execute=True):
        account_data_changed([a.pk for a in accounts])
    assert not AccountDataArrival.objects.exists()


def test_the_beat_schedule_runs_the_sweep_every_minute():
    from config.celery import app

    entry = app.conf.beat_schedule["sweep-stale-health"]
    assert entry["task"] == tasks.sweep_stale_health.name
    assert entry["schedule"] == 60.0
