"""Monthly partitions of the usage events, and the retention of raw events.

On PostgreSQL ``accounts_usageevent`` is partitioned by range of ``occurred_at``, one
partition per UTC month (``accounts_usageevent_p202611``), plus a DEFAULT partition
(``accounts_usageevent_default``) as a safety net; migration ``accounts.0006`` made it so.
Its primary key is ``(dedup_key, occurred_at)``: PostgreSQL wants the partition key in every
unique index, and the uniqueness is the same because ``occurred_at`` is part of the key's hash
(and of its first 48 bits). Django keeps its view (``dedup_key`` is the primary key), so the
ORM, the admin and the cascade from ``Account`` work unchanged. SQLite keeps a plain table.

**Partitions ahead of need.** Every event load calls ``partitions_ensure`` with the months
its rows fall in (``intake.events.load_chunk``: files, API batches, the demo seed); months
known to exist are cached per process, so a load of known months costs no query. A missing
month gets its partition in the load's own transaction (``CREATE TABLE … LIKE`` and ``ATTACH
PARTITION``: the parent is only locked SHARE UPDATE EXCLUSIVE, so other loads and reads go
on). The nightly pipeline keeps this month and the next ``AHEAD_MONTHS`` ready
(``partitions_maintain``), so live traffic never creates one. A row that reaches the
DEFAULT partition anyway (an ORM insert, a month dropped by retention in another process) is
stored and read like any other; it is moved into its month's partition when that partition
is created, which the nightly pipeline does for every month found in the DEFAULT partition.

**Retention.** ``settings.USAGE_EVENTS_RETENTION_MONTHS`` (0 = keep every raw event): the
raw events of the current month and of that many whole months before it are kept; older
whole monthly partitions are detached and dropped (instant whatever their size), older rows
of the DEFAULT partition deleted; on SQLite old rows are deleted in batches. The daily
rollups and presences are kept for ever: everything that would rebuild them from raw events
first asks ``raw_events_since()`` and leaves older days alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction

from accounts import utc

TABLE = "accounts_usageevent"
DEFAULT = f"{TABLE}_default"
COLUMNS = "account_id, user_id, event, occurred_at, value, dedup_key"
PARTITION_NAME = re.compile(rf"{TABLE}_p(\d{{4}})(\d{{2}})")
PARTITION_LOCK = (7302, 0)  # advisory lock: one creator of partitions at a time
AHEAD_MONTHS = 2  # the nightly pipeline keeps this month and the next two ready
MIN_RETENTION_MONTHS = 3  # health and KPIs read 60 days of raw events; catch-up runs a week
SPAN_MONTHS = 24  # see partitions_for
RETENTION_LOCK_TIMEOUT = 30_000  # ms the retention waits for the table (see below)
DELETE_BATCH = 10_000  # rows per DELETE when retention runs without partitions (SQLite)

# months whose partition is known to exist (committed), per process
_known: set[dt.date] = set()


def month_of(value: dt.date | dt.datetime) -> dt.date:
    """The first day of the UTC month of a day or an instant."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).date()
    return value.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def _bound(month: dt.date) -> str:
    """A month's first instant as a timestamptz literal (UTC whatever the session zone)."""
    return f"'{month.isoformat()} 00:00:00+00'"


def retention_cutoff(today: dt.date, months: int | None = None) -> dt.date | None:
    """The first day whose raw events the retention keeps, seen on ``today``; None when raw
    events are kept for ever. ``months`` defaults to the setting."""
    if months is None:
        months = settings.USAGE_EVENTS_RETENTION_MONTHS
    if not months:
        return None
    return add_months(month_of(today), -months)


def raw_events_since() -> dt.date | None:
    """The first UTC day whose raw events are all still stored (None: every day's are).
    Rollups of earlier days must not be rebuilt or compared with the raw events."""
    return retention_cutoff(utc.today())


class RawEventsDropped(ValueError):
    """A computation needs raw events of days the retention has dropped."""


def raw_events_require(first_day: dt.date, what: str) -> None:
    """Raise ``RawEventsDropped`` when ``what`` needs the raw events from ``first_day`` on
    and the retention no longer keeps them."""
    since = raw_events_since()
    if since is not None and first_day < since:
        raise RawEventsDropped(
            f"{what} needs the raw usage events from {first_day}, but only those from "
            f"{since} on are kept (USAGE_EVENTS_RETENTION_MONTHS="
            f"{settings.USAGE_EVENTS_RETENTION_MONTHS}); the stored results are kept"
        )


def _partitioned(cursor) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
    row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def _monthly_partitions(cursor) -> set[dt.date]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        [TABLE],
    )
    months = set()
    for (name,) in cursor.fetchall():
        match = PARTITION_NAME.fullmatch(name)
        if match:
            months.add(dt.date(int(match[1]), int(match[2]), 1))
    return months


def _has_default(cursor) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT])
    return cursor.fetchone()[0]


def _create(cursor, month: dt.date) -> int:
    """Create and attach ``month``'s partition, moving its rows out of the DEFAULT partition
    first (PostgreSQL refuses to attach a range the DEFAULT partition holds rows of).
    Returns the number of rows moved."""
    name, lo, hi = partition_name(month), _bound(month), _bound(add_months(month, 1))
    cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
    moved = 0
    if _has_default(cursor):
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= {lo} "
            f"AND occurred_at < {hi} RETURNING {COLUMNS}) "
            f"INSERT INTO {name} ({COLUMNS}) SELECT {COLUMNS} FROM moved"
        )
        moved = cursor.rowcount
    # ATTACH (not CREATE … PARTITION OF): SHARE UPDATE EXCLUSIVE on the parent, so loads
    # and reads of other months are not blocked; the primary key and the index come along
    cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})")
    return moved


def _remember(months: set[dt.date]) -> None:
    # only once committed: a rolled-back load must not leave a month believed to exist
    transaction.on_commit(lambda: _known.update(months))


def partitions_ensure(months: Iterable[dt.date], *, cached: bool = True) -> dict[str, Any]:
    """Make sure each month (first days of UTC months) has its partition, inside the caller's
    transaction if any. Returns ``{"created": [months], "moved": rows moved out of the
    DEFAULT partition}``. No query when every month is cached (``cached=False`` asks the
    catalog anyway and leaves the cache alone); nothing on SQLite or when the table is not
    partitioned."""
    wanted = {month_of(m) for m in months}
    if cached:
        wanted -= _known
    if not wanted or connection.vendor != "postgresql":
        return {"created": [], "moved": 0}
    created, moved = [], 0
    with transaction.atomic(), connection.cursor() as cursor:
        if not _partitioned(cursor):
            return {"created": [], "moved": 0}
        if wanted - _monthly_partitions(cursor):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", PARTITION_LOCK)
            # another load may have created some while this one waited (and committed)
            for month in sorted(wanted - _monthly_partitions(cursor)):
                moved += _create(cursor, month)
                created.append(month)
        if cached:
            _remember(wanted)
    return {"created": created, "moved": moved}


def partitions_for(occurred: Iterable[dt.datetime]) -> dict[str, Any]:
    """``partitions_ensure`` for every month from the earliest to the latest of these
    instants (a chunk of events): min and max cost a tenth of converting each instant to its
    month, and event files run in time order, so the months between have events too. A
    chunk spanning more than ``SPAN_MONTHS`` (a stray date from 1970) gets only the months
    its events are in, not every month between."""
    occurred = list(occurred)
    if not occurred:
        return {"created": [], "moved": 0}
    first, last = month_of(min(occurred)), month_of(max(occurred))
    span = (last.year - first.year) * 12 + last.month - first.month
    if span > SPAN_MONTHS:
        return partitions_ensure({month_of(t) for t in occurred})
    return partitions_ensure(add_months(first, n) for n in range(span + 1))


def default_months(cursor) -> list[dt.date]:
    """The months of the rows sitting in the DEFAULT partition."""
    if not _has_default(cursor):
        return []
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
        f"FROM {DEFAULT} ORDER BY 1"
    )
    return [row[0] for row in cursor.fetchall()]


def events_retention_apply(*, today: dt.date, months: int | None = None) -> dict[str, Any]:
    """Drop the raw events older than the retention seen on ``today`` (see the module):
    whole monthly partitions on PostgreSQL (detached, then dropped), batches of DELETEs
    otherwise. Rollups and presences are not touched. Returns what was done."""
    cutoff = retention_cutoff(today, months)
    if cutoff is None:
        return {"cutoff": None, "dropped_partitions": [], "deleted_events": 0}
    dropped: list[str] = []
    deleted = 0
    with connection.cursor() as cursor:
        partitioned = connection.vendor == "postgresql" and _partitioned(cursor)
    if partitioned:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # DETACH locks the whole table: rather give up for tonight than queue every
                # read and load behind a long import
                cursor.execute(f"SET LOCAL lock_timeout = '{RETENTION_LOCK_TIMEOUT}ms'")
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", PARTITION_LOCK)
                for month in sorted(_monthly_partitions(cursor)):
                    if add_months(month, 1) <= cutoff:  # the whole month is before the cutoff
                        name = partition_name(month)
                        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
                        cursor.execute(f"DROP TABLE {name}")
                        dropped.append(name)
                if _has_default(cursor):
                    cursor.execute(f"DELETE FROM {DEFAULT} WHERE occurred_at < {_bound(cutoff)}")
                    deleted = cursor.rowcount
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            return {
                "cutoff": cutoff.isoformat(),
                "dropped_partitions": [],
                "deleted_events": 0,
                "skipped": f"the events table stayed busy for {RETENTION_LOCK_TIMEOUT} ms: "
                "nothing dropped, the next run tries again",
            }
        _known.difference_update({m for m in _known if m < cutoff})
    else:
        from accounts.models import UsageEvent

        old = UsageEvent.objects.filter(
            occurred_at__lt=dt.datetime.combine(cutoff, dt.time.min, tzinfo=dt.UTC)
        )
        while True:
            with transaction.atomic():
                keys = list(old.values_list("pk", flat=True)[:DELETE_BATCH])
                if keys:
                    deleted += UsageEvent.objects.filter(pk__in=keys).delete()[0]
            if len(keys) < DELETE_BATCH:
                break
    return {"cutoff": cutoff.isoformat(), "dropped_partitions": dropped, "deleted_events": deleted}


def partitions_maintain(*, today: dt.date) -> dict[str, Any]:
    """The nightly upkeep: apply the retention, then make sure this month and the next
    ``AHEAD_MONTHS`` have their partitions and that every month with rows in the DEFAULT
    partition gets its own (the rows move there)."""
    retention = events_retention_apply(today=today)
    if connection.vendor != "postgresql":
        return {**retention, "created": [], "moved": 0}
    this_month = month_of(today)
    with connection.cursor() as cursor:
        stray = default_months(cursor) if _partitioned(cursor) else []
    wanted = {add_months(this_month, n) for n in range(AHEAD_MONTHS + 1)} | set(stray)
    made = partitions_ensure(wanted, cached=False)
    return {
        **retention,
        "created": [m.isoformat() for m in made["created"]],
        "moved": made["moved"],
    }
