"""Two loads for the same account and day at once: the rollups count both, and a user
present in both loads once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from accounts import intake
from accounts.intake import events, partitions
from accounts.models import UsageDaily, UsageFeatureDaily
from tests.factories import AccountFactory

from .test_usage_rollups import rebuilt_from_raw, state

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time"),
]


def test_concurrent_loads_do_not_lose_rollup_counts(monkeypatch):
    account = AccountFactory(external_id="A1")
    # March's partition exists, as the nightly upkeep makes sure for the current months: a
    # load that creates one holds it until it commits, and the other would wait for that
    # (tests/accounts/test_usage_partitions.py) instead of reaching the barrier below
    partitions.partitions_ensure([dt.date(2024, 3, 1)])
    both_inserted = threading.Barrier(2, timeout=20)
    apply = events.apply_new_rollups

    def apply_after_both_inserted() -> int:
        # both transactions hold their new events, uncommitted, before either updates the
        # rollups: without the lock each saw no presence of the other and counted u0 twice
        both_inserted.wait()
        return apply()

    monkeypatch.setattr(events, "apply_new_rollups", apply_after_both_inserted)
    failures: list[BaseException] = []

    def load(user: str, event: str) -> None:
        try:
            rows = [
                {
                    "account_external_id": "A1",
                    "user_id": user,
                    "event": event,
                    "occurred_at": f"2024-03-01T{hour:02d}:00:00Z",
                }
                for hour in range(10)
            ] + [  # the same user in both loads, on the load's own feature
                {
                    "account_external_id": "A1",
                    "user_id": "u0",
                    "event": event,
                    "occurred_at": "2024-03-01T12:00:00Z",
                }
            ]
            result = intake.run_import([intake.source_from_rows("events", rows)])
            assert result.ok, result.errors
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=load, args=args) for args in (("u1", "login"), ("u2", "export"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    day = UsageDaily.objects.get(account=account, day=dt.date(2024, 3, 1))
    # 10 logins by u1 + 10 exports by u2 + u0's login and export = 22 events by 3 users
    assert (day.events, day.active_users) == (22, 3)
    login = UsageFeatureDaily.objects.get(account=account, day=day.day, event="login")
    assert (login.events, login.users) == (11, 2)  # u1 x10, u0
    assert state() == rebuilt_from_raw()
