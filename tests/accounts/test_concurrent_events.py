"""Two loads for the same account and day at once: the rollup counts both."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from accounts import intake
from accounts.intake import events
from accounts.models import UsageDaily
from tests.factories import AccountFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time"),
]


def test_concurrent_loads_do_not_lose_rollup_counts(monkeypatch):
    account = AccountFactory(external_id="A1")
    both_inserted = threading.Barrier(2, timeout=20)
    rebuild = events.rebuild_affected_rollups

    def rebuild_after_both_inserted() -> int:
        # both transactions hold their new events, uncommitted, before either rebuilds:
        # without a lock the later commit overwrote the rollup with its own count only
        both_inserted.wait()
        return rebuild()

    monkeypatch.setattr(events, "rebuild_affected_rollups", rebuild_after_both_inserted)
    failures: list[BaseException] = []

    def load(user: str) -> None:
        try:
            rows = [
                {
                    "account_external_id": "A1",
                    "user_id": user,
                    "event": "login",
                    "occurred_at": f"2024-03-01T{hour:02d}:00:00Z",
                }
                for hour in range(10)
            ]
            result = intake.run_import([intake.source_from_rows("events", rows)])
            assert result.ok, result.errors
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=load, args=(u,)) for u in ("u1", "u2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    day = UsageDaily.objects.get(account=account, day=dt.date(2024, 3, 1))
    # 10 logins by u1 + 10 by u2 = 20 events by 2 users
    assert (day.events, day.active_users) == (20, 2)
