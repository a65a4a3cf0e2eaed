"""Usage events partitioned by month (PostgreSQL) and the retention of raw events: loads
never fail for a month without its partition, dedup holds across partitions and re-imports,
retention drops whole months and keeps the rollups, and nothing rebuilds rollups or health
from raw events the retention dropped."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from accounts import intake
from accounts.intake import events, partitions
from accounts.intake.partitions import add_months, month_of
from accounts.models import Account, UsageDaily, UsageEvent
from metrics import pipeline, services
from metrics.kpis import adoption
from metrics.models import HealthSnapshot
from tests.factories import AccountFactory

from .test_usage_rollups import rebuilt_from_raw, state

PG = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions: PostgreSQL only")
THIS_MONTH = month_of(timezone.now())


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    """Each test starts with no month known to this process (the cache is restored after)."""
    monkeypatch.setattr(partitions, "_known", set())


def ev(user: str, at: dt.datetime, event: str = "login", account: str = "A1") -> dict:
    return {
        "account_external_id": account,
        "user_id": user,
        "event": event,
        "occurred_at": at.isoformat(),
    }


def at(month: dt.date, day: int = 10, hour: int = 9) -> dt.datetime:
    return dt.datetime(month.year, month.month, day, hour, tzinfo=dt.UTC)


def load(rows: list[dict]) -> intake.ImportResult:
    result = intake.run_import([intake.source_from_rows("events", rows)])
    assert result.ok, result.errors
    return result


def partitions_now() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'accounts_usageevent'::regclass"
        )
        return {name for (name,) in cursor.fetchall()}


def rows_by_partition() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM accounts_usageevent GROUP BY 1"
        )
        return dict(cursor.fetchall())


# --- partitions created on demand ---------------------------------------------------------

JAN, FEB, MAR = dt.date(2023, 1, 1), dt.date(2023, 2, 1), dt.date(2023, 3, 1)


@PG
@pytest.mark.django_db
def test_an_import_spanning_months_gets_their_partitions_and_dedups_on_reimport():
    AccountFactory(external_id="A1")
    assert not {partitions.partition_name(m) for m in (JAN, FEB, MAR)} & partitions_now()
    rows = [ev("u1", at(JAN, 31, 23)), ev("u2", at(FEB, 1, 0)), ev("u1", at(MAR, 15))]
    rows += [ev("u3", at(MAR, 31, 23))]  # the month's last hour: still March
    first = load(rows)
    assert first.total("created") == 4
    assert rows_by_partition() == {
        "accounts_usageevent_p202301": 1,
        "accounts_usageevent_p202302": 1,
        "accounts_usageevent_p202303": 2,
    }  # nothing in the DEFAULT partition
    # the same file again, and a file overlapping it: ON CONFLICT finds them in their months
    again = load(rows)
    assert (again.total("created"), again.total("unchanged")) == (0, 4)
    overlap = load([rows[1], ev("u9", at(FEB, 2))])
    assert (overlap.total("created"), overlap.total("unchanged")) == (1, 1)
    assert UsageEvent.objects.count() == 5
    assert state() == rebuilt_from_raw()


@pytest.mark.django_db
def test_reimports_are_deduplicated_on_every_database():
    AccountFactory(external_id="A1")
    rows = [ev(f"u{i}", at(add_months(JAN, i), 3)) for i in range(4)]
    assert load(rows).total("created") == 4
    assert load(rows).total("created") == 0
    assert UsageEvent.objects.count() == 4


@PG
@pytest.mark.django_db
def test_rows_in_the_default_partition_move_to_their_month_when_it_is_created():
    account = AccountFactory(external_id="A1")
    # an insert that bypasses the intake (the ORM): no partition for June 2022 yet
    june = dt.date(2022, 6, 1)
    key = events.dedup_key(account.pk, "u1", "login", at(june), None)
    UsageEvent.objects.create(
        account=account, user_id="u1", event="login", occurred_at=at(june), dedup_key=key
    )
    assert rows_by_partition() == {"accounts_usageevent_default": 1}
    made = partitions.partitions_ensure([june])
    assert made == {"created": [june], "moved": 1}
    assert rows_by_partition() == {"accounts_usageevent_p202206": 1}
    # a load of the same event finds it there: no duplicate
    assert load([ev("u1", at(june))]).total("created") == 0


@PG
@pytest.mark.django_db
def test_a_load_asks_the_catalog_only_for_months_it_does_not_know(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    AccountFactory(external_id="A1")
    rows = [(1, "u1", "login", at(JAN), None, "0" * 32)]
    # not known: savepoint, is it partitioned, which partitions, the lock, which partitions
    # again, then per month create, has a DEFAULT partition, move, attach; release
    with django_assert_num_queries(10), django_capture_on_commit_callbacks(execute=True):
        assert partitions.partitions_for(r[3] for r in rows)["created"] == [JAN]
    # known once committed: no query
    with django_assert_num_queries(0):
        assert partitions.partitions_for(r[3] for r in rows)["created"] == []


@PG
@pytest.mark.django_db
def test_a_chunk_gets_the_months_it_spans_but_not_decades_for_a_stray_date():
    made = partitions.partitions_for([at(JAN), at(MAR)])
    assert made["created"] == [JAN, FEB, MAR]  # February between them too
    stray = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    made = partitions.partitions_for([stray, at(MAR), at(dt.date(2023, 4, 1))])
    assert made["created"] == [dt.date(1970, 1, 1), dt.date(2023, 4, 1)]  # not 639 months


@PG
@pytest.mark.django_db
def test_the_nightly_upkeep_keeps_months_ahead_and_empties_the_default_partition():
    account = AccountFactory(external_id="A1")
    stray = dt.date(2021, 9, 1)
    UsageEvent.objects.create(
        account=account,
        user_id="u1",
        event="login",
        occurred_at=at(stray),
        dedup_key=events.dedup_key(account.pk, "u1", "login", at(stray), None),
    )
    today = dt.date(2030, 12, 31)  # months nobody created yet
    done = pipeline.usage_events_upkeep(as_of=today)
    assert done["created"] == ["2021-09-01", "2030-12-01", "2031-01-01", "2031-02-01"]
    assert done["moved"] == 1 and done["dropped_partitions"] == []
    assert rows_by_partition() == {"accounts_usageevent_p202109": 1}
    # the next night: nothing to do
    again = pipeline.usage_events_upkeep(as_of=today)
    assert again["created"] == [] and again["moved"] == 0


@PG
@pytest.mark.django_db(transaction=True)
def test_two_loads_creating_the_same_month_at_once_both_succeed():
    AccountFactory(external_id="A1")
    month = dt.date(2019, 5, 1)
    start = threading.Barrier(2, timeout=20)
    failures: list[BaseException] = []

    def run(user: str) -> None:
        try:
            start.wait()
            load([ev(user, at(month, day)) for day in range(1, 6)])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(u,)) for u in ("u1", "u2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    assert rows_by_partition() == {"accounts_usageevent_p201905": 10}
    assert UsageDaily.objects.filter(day__gte=month).count() == 5
    assert state() == rebuilt_from_raw()


@pytest.mark.django_db
def test_the_admin_shows_changes_and_deletes_a_partitioned_event(client, admin_user):
    """Django keeps ``dedup_key`` as the primary key: admin URLs and deletes work unchanged
    on the partitioned table."""
    AccountFactory(external_id="A1")
    load([ev("u1", at(JAN)), ev("u2", at(FEB))])
    event = UsageEvent.objects.get(user_id="u1")
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    listing = client.get(reverse("admin:accounts_usageevent_changelist"))
    assert listing.status_code == 200 and b"u2" in listing.content
    page = reverse("admin:accounts_usageevent_change", args=[event.pk])
    assert client.get(page).status_code == 200
    delete = reverse("admin:accounts_usageevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert list(UsageEvent.objects.values_list("user_id", flat=True)) == ["u2"]


# --- retention ----------------------------------------------------------------------------

OLD = add_months(THIS_MONTH, -5)  # dropped by a 3-month retention
KEPT = add_months(THIS_MONTH, -1)


@pytest.fixture
def book():
    """Two accounts: A1 used the product five months ago and last month, A2 only five
    months ago."""
    AccountFactory(external_id="A1")
    AccountFactory(external_id="A2")
    load(
        [
            ev("old1", at(OLD, 3)),
            ev("old1", at(OLD, 4), event="export"),
            ev("both", at(OLD, 4)),
            ev("both", at(KEPT, 5)),
            ev("new1", at(KEPT, 6)),
            ev("x1", at(OLD, 3), account="A2"),
        ]
    )


def _known_users() -> dict[str, int]:
    end = timezone.now().astimezone(dt.UTC).date()
    usage = adoption.usage_inputs(Account.objects.all(), end=end)
    names = dict(Account.objects.values_list("pk", "external_id"))
    return {names[a]: row["known"] for a, row in usage.per_account.items()}


@pytest.mark.django_db
def test_retention_drops_old_raw_events_and_keeps_rollups_and_known_users(book, settings):
    before = state()
    known = _known_users()
    assert known == {"A1": 3, "A2": 1}  # old1, both, new1; x1
    settings.USAGE_EVENTS_RETENTION_MONTHS = 3
    assert partitions.raw_events_since() == add_months(THIS_MONTH, -3)
    assert _known_users() == known  # from the presences once a retention is set

    done = partitions.events_retention_apply(today=timezone.now().date())

    assert done["cutoff"] == add_months(THIS_MONTH, -3).isoformat()
    if connection.vendor == "postgresql":
        # the load made the months from OLD to KEPT; those before the cutoff go
        assert done["dropped_partitions"] == [
            partitions.partition_name(OLD),
            partitions.partition_name(add_months(OLD, 1)),
        ]
        assert partitions.partition_name(OLD) not in partitions_now()
        assert partitions.partition_name(KEPT) in partitions_now()
    else:
        assert done["deleted_events"] == 4
    assert sorted(UsageEvent.objects.values_list("user_id", flat=True)) == ["both", "new1"]
    assert state() == before  # rollups and presences untouched
    assert _known_users() == known  # A2 has no raw event left and still knows x1


@pytest.mark.django_db
def test_the_upkeep_command_says_what_it_dropped(book, settings):
    settings.USAGE_EVENTS_RETENTION_MONTHS = 3
    out = StringIO()
    call_command("usage_events_upkeep", stdout=out)
    text = out.getvalue()
    cutoff = add_months(THIS_MONTH, -3)
    assert f"raw events before {cutoff} dropped (3 months)" in text
    if connection.vendor == "postgresql":
        assert f"partitions dropped: {partitions.partition_name(OLD)}, " in text
    else:
        assert "rows deleted: 4." in text
    assert sorted(UsageEvent.objects.values_list("user_id", flat=True)) == ["both", "new1"]


@PG
@pytest.mark.django_db(transaction=True)
def test_retention_gives_up_for_the_night_when_the_table_stays_busy(book, settings, monkeypatch):
    settings.USAGE_EVENTS_RETENTION_MONTHS = 3
    monkeypatch.setattr(partitions, "RETENTION_LOCK_TIMEOUT", 200)
    reading, done = threading.Event(), threading.Event()

    def long_read() -> None:  # a long report or import holds the table
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT count(*) FROM accounts_usageevent")
                reading.set()
                done.wait(20)
                cursor.execute("ROLLBACK")
        finally:
            connections.close_all()

    thread = threading.Thread(target=long_read)
    thread.start()
    try:
        assert reading.wait(20)
        result = partitions.events_retention_apply(today=timezone.now().date())
    finally:
        done.set()
        thread.join(20)
    assert result["dropped_partitions"] == [] and "next run tries again" in result["skipped"]
    assert UsageEvent.objects.count() == 6  # nothing dropped
    # once the table is free, the same call drops them
    assert partitions.events_retention_apply(today=timezone.now().date())["dropped_partitions"]


@pytest.mark.django_db
def test_retention_deletes_in_batches_without_partitions(book, settings, monkeypatch):
    monkeypatch.setattr(partitions, "DELETE_BATCH", 2)
    settings.USAGE_EVENTS_RETENTION_MONTHS = 3
    with connection.cursor() as cursor:
        partitioned = connection.vendor == "postgresql" and partitions._partitioned(cursor)
    if partitioned:
        pytest.skip("PostgreSQL drops partitions (the test above)")
    done = partitions.events_retention_apply(today=timezone.now().date())
    assert done["deleted_events"] == 4  # 2 + 2 + an empty last batch
    assert UsageEvent.objects.count() == 2


@pytest.mark.django_db
def test_after_retention_nothing_rebuilds_old_days_from_raw_events(book, settings):
    old_day = at(OLD, 4).date()
    # the health of an old day with every raw event still there, to compare with below
    services.health_snapshots_record(as_of=old_day)
    scored_with_events = dict(
        HealthSnapshot.objects.filter(day=old_day).values_list("account_id", "score")
    )
    HealthSnapshot.objects.all().delete()
    settings.USAGE_EVENTS_RETENTION_MONTHS = 3
    partitions.events_retention_apply(today=timezone.now().date())
    before = state()

    # the reconcile of a day whose raw events are gone: skipped, the rollups kept
    step = pipeline.usage_rollups_reconcile(as_of=old_day)
    assert step["corrected"] == 0 and "no longer kept" in step["skipped"]
    # a window across the horizon: only the days with raw events are compared
    since = partitions.raw_events_since()
    step = pipeline.usage_rollups_reconcile(as_of=since, days=5)
    assert step["first_day"] == since.isoformat()
    assert state() == before

    # health reads the rollups and presences, not the raw events: an old day scores the
    # same with its raw events gone as with them (the rollups were kept)
    assert services.health_snapshots_record(as_of=old_day)["accounts"] == 2
    scored_gone = dict(
        HealthSnapshot.objects.filter(day=old_day).values_list("account_id", "score")
    )
    assert scored_gone == scored_with_events
    assert state() == before  # nothing rebuilt from raw events on the way


def test_a_retention_shorter_than_the_windows_is_refused(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import config.settings

    monkeypatch.setenv("USAGE_EVENTS_RETENTION_MONTHS", "2")
    with pytest.raises(ImproperlyConfigured, match="0 \\(keep all\\) or at least 3, got 2"):
        importlib.reload(config.settings)
    monkeypatch.delenv("USAGE_EVENTS_RETENTION_MONTHS")
    importlib.reload(config.settings)


# --- the migration --------------------------------------------------------------------------

BEFORE = [("accounts", "0005_usage_presence")]
AFTER = [("accounts", "0006_usage_event_partitioned_by_month")]


@pytest.fixture
def schema_restored_after():
    """Going back to BEFORE unapplies every later migration that depends on it (other
    apps' too: metrics' stored usage windows, surveys' answer indexes); put the whole
    schema back afterwards, or the later tests run without those tables."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@PG
@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_a_populated_table_and_back(schema_restored_after):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)  # the reverse: back to a plain table, rows kept
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'accounts_usageevent'::regclass")
        assert cursor.fetchone()[0] == "r"
        cursor.execute(
            "INSERT INTO accounts_usageevent (account_id, user_id, event, occurred_at, value, "
            "dedup_key) SELECT 1, 'u' || g, 'login', timestamptz '2020-01-20 12:00+00' "
            "+ g * interval '10 days', g, md5(g::text)::uuid FROM generate_series(1, 40) g"
        )  # 40 events every 10 days from 2020-01-30: 14 months, Jan 2020 to Feb 2021
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'accounts_usageevent'::regclass")
        assert cursor.fetchone()[0] == "p"
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'accounts_usageevent'::regclass "
            "AND i.indisprimary ORDER BY a.attname"
        )
        assert [r[0] for r in cursor.fetchall()] == ["dedup_key", "occurred_at"]
    counts = rows_by_partition()
    assert sum(counts.values()) == 40 and "accounts_usageevent_default" not in counts
    assert len(counts) == 14
    assert counts["accounts_usageevent_p202001"] == 1  # the 30th
    assert UsageEvent.objects.filter(value=40).get().user_id == "u40"
    # this month and the next two are ready
    for n in range(3):
        assert partitions.partition_name(add_months(THIS_MONTH, n)) in partitions_now()
    # and back again, then forward: the rows survive both directions
    MigrationExecutor(connection).migrate(BEFORE)
    assert UsageEvent.objects.count() == 40
    MigrationExecutor(connection).migrate(AFTER)
    assert UsageEvent.objects.count() == 40
