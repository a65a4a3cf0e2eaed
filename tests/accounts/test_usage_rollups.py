"""Incremental usage rollups: what loads add to UsageDaily, UsageFeatureDaily and
UsagePresence equals a rebuild from the raw events, whatever the loads overlapped."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from accounts import intake
from accounts.intake import events, partitions
from accounts.models import UsageDaily, UsageEvent, UsageFeatureDaily, UsagePresence
from metrics import pipeline
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

MAR1, MAR2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


def ev(account: str, user: str, event: str, at: str, value=None) -> dict:
    row = {"account_external_id": account, "user_id": user, "event": event, "occurred_at": at}
    if value is not None:
        row["value"] = value
    return row


def load(rows: list[dict]) -> intake.ImportResult:
    result = intake.run_import([intake.source_from_rows("events", rows)])
    assert result.ok, result.errors
    return result


def state() -> tuple[list, list, list]:
    """Every rollup and presence row, ordered."""
    return (
        list(
            UsageDaily.objects.order_by("account_id", "day").values_list(
                "account_id", "day", "events", "active_users", "value_sum"
            )
        ),
        list(
            UsageFeatureDaily.objects.order_by("account_id", "day", "event").values_list(
                "account_id", "day", "event", "events", "users"
            )
        ),
        list(
            UsagePresence.objects.order_by("account_id", "day", "user_id", "event").values_list(
                "account_id", "day", "user_id", "event"
            )
        ),
    )


def rebuilt_from_raw() -> tuple[list, list, list]:
    """The same rows computed from scratch: everything cleared, then every (account, day)
    that has events rebuilt from the raw events (the reconcile's code path)."""
    with transaction.atomic():
        UsageDaily.objects.all().delete()
        UsageFeatureDaily.objects.all().delete()
        UsagePresence.objects.all().delete()
        pairs = {
            (e.account_id, e.occurred_at.astimezone(dt.UTC).date())
            for e in UsageEvent.objects.all()
        }
        events.rollups_rebuild(pairs=pairs)
    return state()


def daily(account, day) -> tuple:
    row = UsageDaily.objects.get(account=account, day=day)
    return row.events, row.active_users, row.value_sum


def feature(account, day, event) -> tuple:
    row = UsageFeatureDaily.objects.get(account=account, day=day, event=event)
    return row.events, row.users


def test_loads_add_counts_and_new_users_only():
    a1 = AccountFactory(external_id="A1")
    load(
        [
            ev("A1", "u1", "login", "2024-03-01T09:00:00Z", 1),
            ev("A1", "u1", "login", "2024-03-01T10:00:00Z", 2),
            ev("A1", "u2", "export", "2024-03-01T11:00:00Z"),
            ev("A1", "", "login", "2024-03-01T12:00:00Z", 0.5),  # no user: counts as an event
        ]
    )
    # 4 events, users {u1, u2}, values 1 + 2 + 0.5
    assert daily(a1, MAR1) == (4, 2, 3.5)
    assert feature(a1, MAR1, "login") == (3, 1)  # u1 (the empty user is nobody)
    assert feature(a1, MAR1, "export") == (1, 1)
    load(
        [
            ev("A1", "u1", "export", "2024-03-01T13:00:00Z", 4),  # u1 known that day, new to export
            ev("A1", "u3", "login", "2024-03-01T14:00:00Z"),  # a new user
            ev("A1", "u1", "login", "2024-03-01T09:00:00Z", 1),  # a duplicate of the first
        ]
    )
    # 4 + 2 new events = 6; users {u1, u2, u3} = 3; values 3.5 + 4 = 7.5
    assert daily(a1, MAR1) == (6, 3, 7.5)
    assert feature(a1, MAR1, "login") == (4, 2)  # 3 + u3's; users u1, u3
    assert feature(a1, MAR1, "export") == (2, 2)  # u2, u1
    assert UsagePresence.objects.filter(account=a1).count() == 4  # u1/login u1/export u2 u3


def test_rollups_equal_a_rebuild_after_duplicates_and_overlaps():
    AccountFactory(external_id="A1")
    AccountFactory(external_id="A2")
    first = [
        ev("A1", "u1", "login", "2024-03-01T09:00:00Z", 1.5),
        ev("A1", "u2", "login", "2024-03-01T23:59:59Z"),
        ev("A1", "u1", "report", "2024-03-02T00:00:00Z", 3),
        ev("A2", "u1", "login", "2024-03-01T09:00:00Z"),  # same user id, other account
        ev("A2", "", "login", "2024-03-01T10:00:00Z"),
        ev("A1", "u1", "login", "2024-03-01T09:00:00Z", 1.5),  # duplicate inside the batch
    ]
    overlapping = [
        *first[1:4],  # three events again
        ev("A1", "u2", "report", "2024-03-02T08:00:00+02:00"),  # 06:00 UTC on Mar 2
        ev("A1", "u3", "login", "2024-03-01T18:00:00-06:00"),  # 00:00 UTC on Mar 2
        ev("A2", "u1", "login", "2024-03-01T11:00:00Z", 2),
    ]
    assert load(first).total("created") == 5
    assert load(overlapping).total("created") == 3
    assert load(first + overlapping).total("created") == 0  # everything again: no change
    incremental = state()
    assert incremental == rebuilt_from_raw()
    a1 = incremental[0][:2]
    # A1 Mar 1: u1 login, u2 login -> 2 events, 2 users, 1.5; Mar 2: u1 report, u2 report,
    # u3 login -> 3 events, 3 users, 3
    assert [row[2:] for row in a1] == [(2, 2, 1.5), (3, 3, 3.0)]


def test_reimport_of_a_file_changes_nothing(tmp_path):
    account = AccountFactory(external_id="A1")
    path = tmp_path / "events.csv"
    path.write_text(
        "account_external_id,user_id,event,occurred_at,value\n"
        "A1,u1,login,2024-03-01T09:00:00Z,1\n"
        "A1,u2,login,2024-03-01T09:05:00Z,\n"
        "A1,u1,login,2024-03-01T09:00:00Z,1\n"  # the first row again
    )
    first = intake.run_import([intake.source_from_path(path)])
    assert (first.total("created"), first.total("unchanged")) == (2, 1)
    before = state()
    again = intake.run_import([intake.source_from_path(path)])
    assert (again.total("created"), again.total("unchanged")) == (0, 3)
    assert state() == before
    assert daily(account, MAR1) == (2, 2, 1.0)


def test_a_bad_row_leaves_rollups_and_presences_untouched():
    account = AccountFactory(external_id="A1")
    load([ev("A1", "u1", "login", "2024-03-01T09:00:00Z")])
    before = state()
    result = intake.run_import(
        [
            intake.source_from_rows(
                "events",
                [
                    ev("A1", "u2", "login", "2024-03-01T10:00:00Z"),
                    ev("A1", "u3", "login", "not a time"),
                ],
            )
        ]
    )
    assert not result.ok and result.errors[0].row == 2
    assert state() == before
    assert daily(account, MAR1) == (1, 1, 0.0)


def test_several_event_sources_in_one_import_count_a_user_once():
    account = AccountFactory(external_id="A1")
    result = intake.run_import(
        [
            intake.source_from_rows("events", [ev("A1", "u1", "login", "2024-03-01T09:00:00Z")]),
            intake.source_from_rows("events", [ev("A1", "u1", "export", "2024-03-01T10:00:00Z")]),
        ]
    )
    assert result.ok
    assert daily(account, MAR1) == (2, 1, 0.0)  # 2 events by u1 alone


def test_reconcile_drops_presences_of_events_gone_and_restores_the_rest():
    account = AccountFactory(external_id="A1")
    load(
        [
            ev("A1", "u1", "login", "2024-03-01T09:00:00Z"),
            ev("A1", "u2", "login", "2024-03-02T09:00:00Z"),
        ]
    )
    # raw events changed behind the intake's back: Mar 1 loses its only event, Mar 2's
    # rollup is corrupted
    UsageEvent.objects.filter(occurred_at__date=MAR1).delete()
    UsageDaily.objects.filter(day=MAR2).update(events=99, active_users=0)
    summary = pipeline.usage_rollups_reconcile(as_of=MAR2, days=2)
    assert (summary["account_days_before"], summary["account_days"]) == (2, 1)
    assert not UsageDaily.objects.filter(day=MAR1).exists()
    assert not UsagePresence.objects.filter(day=MAR1).exists()
    assert daily(account, MAR2) == (1, 1, 0.0)
    # a later load on Mar 1 counts u1 as new again (the stale presence is gone)
    load([ev("A1", "u1", "login", "2024-03-01T10:00:00Z")])
    assert daily(account, MAR1) == (1, 1, 0.0)
    assert state() == rebuilt_from_raw()


def test_deleting_an_account_deletes_its_presences():
    account = AccountFactory(external_id="A1")
    other = AccountFactory(external_id="A2")
    load(
        [
            ev("A1", "u1", "login", "2024-03-01T09:00:00Z"),
            ev("A2", "u1", "login", "2024-03-01T09:00:00Z"),
        ]
    )
    account.delete()
    assert list(UsagePresence.objects.values_list("account_id", flat=True)) == [other.pk]


def test_load_queries_do_not_grow_with_the_batch(
    django_assert_max_num_queries, django_capture_on_commit_callbacks, monkeypatch
):
    account = AccountFactory(external_id="A1")
    # March's partition exists and is known, as after any earlier load of March committed
    # (a load that creates a partition: tests/accounts/test_usage_partitions.py)
    monkeypatch.setattr(partitions, "_known", set())
    with django_capture_on_commit_callbacks(execute=True):
        partitions.partitions_ensure([MAR1])
    rows = [
        ev("A1", f"u{i % 7}", f"f{i % 3}", f"2024-03-01T09:{i % 60:02d}:{i // 60:02d}Z")
        for i in range(500)
    ]
    # savepoint and release; 3 temporary tables x (create, empty); the account lookup; the
    # events insert (PostgreSQL: + COPY, not counted; SQLite: + 2 executemany) and emptying
    # the stage; count, presences (SQLite: 2), day and feature rollups, emptying 2 tables;
    # first-usage lookup and upsert (PostgreSQL: one upsert). PostgreSQL adds SET jit and
    # the lock: 20 (21 before the first-usage facts became one statement), SQLite 22.
    budget = 20 if connection.vendor == "postgresql" else 22
    with django_assert_max_num_queries(budget):
        load(rows)
    assert daily(account, MAR1)[:2] == (500, 7)  # 500 events by u0..u6


def test_json_events_keep_their_values_whichever_parser_reads_them():
    AccountFactory(external_id="A1")
    rows = [
        ev("A1", "u1", "login", "2024-03-01T09:00:00Z", 0),  # a zero is a value, not empty
        ev("A1", "u1", "login", "2024-03-01T09:01:00Z", 2),
        ev("A1", "u1", "login", "2024-03-01T09:02:00Z", "2.5"),  # text: general parser
        ev("A1", "u1", "login", "2024-03-01T09:03:00+01:00", 1.25),  # 08:03 UTC
        {"account_external_id": "A1", "event": "login", "occurred_at": "2024-03-01T09:04:00"},
        {
            "account_external_id": " A1 ",
            "user_id": 7,
            "event": "x",
            "occurred_at": "2024-03-01T09:05:00Z",
        },
    ]
    load(rows)
    stored = list(
        UsageEvent.objects.order_by("occurred_at").values_list("user_id", "occurred_at", "value")
    )
    at = lambda m: dt.datetime(2024, 3, 1, 8 + (m != 3), m, tzinfo=dt.UTC)  # noqa: E731
    assert stored == [
        ("u1", at(3), 1.25),
        ("u1", at(0), 0.0),
        ("u1", at(1), 2.0),
        ("u1", at(2), 2.5),
        ("", at(4), None),
        ("7", at(5), None),
    ]


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ({"value": True}, "value", "not a number"),
        ({"value": 1e16}, "value", "not a usable number"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"user_id": None, "event": ""}, "event", "required"),
    ],
)
def test_json_events_the_fast_path_refuses_go_to_the_general_parser(row, column, message):
    AccountFactory(external_id="A1")
    bad = {**ev("A1", "u1", "login", "2024-03-01T09:00:00Z"), **row}
    result = intake.run_import([intake.source_from_rows("events", [bad])])
    assert not result.ok
    assert (result.errors[0].column, result.errors[0].row) == (column, 1)
    assert message in result.errors[0].message
    assert not UsageEvent.objects.exists()


def test_the_migration_backfills_the_presences_of_stored_events():
    """Deployments upgrade with events already stored: 0005 gives them their presences, so
    that the next load does not count a user of that day twice."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0005_usage_presence")
    account = AccountFactory(external_id="A1")
    load(
        [
            ev("A1", "u1", "login", "2024-03-01T09:00:00Z"),
            ev("A1", "u1", "login", "2024-03-01T10:00:00Z"),
            ev("A1", "u1", "export", "2024-03-01T23:30:00-01:00"),  # 00:30 UTC on Mar 2
            ev("A1", "", "login", "2024-03-01T11:00:00Z"),
        ]
    )
    expected = state()[2]
    UsagePresence.objects.all().delete()  # as before the migration
    # the function uses only these two of the schema editor (whose SQLite flavour cannot
    # open inside the test's transaction)
    with connection.cursor() as cursor:
        editor = SimpleNamespace(connection=connection, execute=cursor.execute)
        migration.presence_backfill(apps, editor)
    assert (
        state()[2]
        == expected
        == [
            (account.pk, MAR1, "u1", "login"),
            (account.pk, MAR2, "u1", "export"),
        ]
    )
