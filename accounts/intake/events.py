"""Usage events: deduplicated bulk load and the daily rollups kept current with it.

The same SQL runs on PostgreSQL and SQLite: a chunk of events is staged in a temporary
table (with ``COPY`` on PostgreSQL, ``executemany`` on SQLite), moved into
``accounts_usageevent`` with ``ON CONFLICT DO NOTHING`` on the dedup key, and the
(account, day) pairs it touched are remembered in a second temporary table. At the end
the rollups of exactly those pairs are rebuilt from the raw events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from hashlib import md5

from django.db import connection

from accounts import timeline
from accounts.models import TimelineEntry

STAGE = "intake_event_stage"
LOCK_SPACE = 7301  # advisory-lock namespace of rollup rebuilds
LOCK_BUCKETS = 256
ACCOUNT_CHUNK = 5_000  # accounts per IN (...) lookup
AFFECTED = "intake_event_affected"


def dedup_key(account_id: int, user_id: str, event: str, occurred_at: dt.datetime, value) -> str:
    """The identity of ``(account, user_id, event, occurred_at, value)`` as 32 hex digits
    (a UUID to the database): the same event sent twice gets the same key, whatever door
    it came through.

    The first 48 bits are the event's time in microseconds, the other 80 a hash of the
    rest: keys of events close in time sit close in the primary-key index, so bulk loads
    touch few index pages (a purely random key made them several times slower)."""
    micros = round(occurred_at.timestamp() * 1_000_000)
    shown = "" if value is None else repr(float(value))
    text = f"{account_id}\x1f{user_id}\x1f{event}\x1f{micros}\x1f{shown}"
    digest = md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()
    return f"{micros & 0xFFFFFFFFFFFF:012x}{digest[:20]}"


_SPECIAL = ("\\", "\t", "\n", "\r")  # characters COPY's text format escapes


def _copy_text(value: str) -> str:
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        value = value.replace(char, escaped)
    return value


def _vendor() -> str:
    return connection.vendor


def _day_bounds() -> tuple[str, str, str]:
    """SQL for an event's UTC day, and a day's first and next instant, per database."""
    if _vendor() == "postgresql":
        return (
            "(occurred_at AT TIME ZONE 'UTC')::date",
            "(a.day::timestamp AT TIME ZONE 'UTC')",
            "((a.day + 1)::timestamp AT TIME ZONE 'UTC')",
        )
    # SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC: text order is time order
    return ("date(occurred_at)", "a.day", "date(a.day, '+1 day')")


def prepare() -> None:
    """Create (or empty) the temporary tables of this connection."""
    uuid_type = "uuid" if _vendor() == "postgresql" else "char(32)"
    ts_type = "timestamptz" if _vendor() == "postgresql" else "datetime"
    with connection.cursor() as cursor:
        if _vendor() == "postgresql":
            # JIT compiling these big statements costs more than it saves
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (account_id bigint NOT NULL, "
            f"user_id varchar(200) NOT NULL, event varchar(200) NOT NULL, "
            f"occurred_at {ts_type} NOT NULL, value double precision NULL, "
            f"dedup_key {uuid_type} NOT NULL)"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {AFFECTED} "
            f"(account_id bigint NOT NULL, day date NOT NULL, PRIMARY KEY (account_id, day))"
        )
        cursor.execute(f"DELETE FROM {STAGE}")
        cursor.execute(f"DELETE FROM {AFFECTED}")


def load_chunk(rows: list[tuple]) -> int:
    """Insert ``(account_id, user_id, event, occurred_at, value, dedup_key)`` rows; returns
    how many were new (the rest were already there). Call ``prepare()`` first and
    ``rebuild_affected_rollups()`` after the last chunk."""
    if not rows:
        return 0
    day_sql = _day_bounds()[0]
    with connection.cursor() as cursor:
        if _vendor() == "postgresql":
            lines = []
            for account_id, user_id, event, occurred_at, value, key in rows:
                both = user_id + event
                if any(c in both for c in _SPECIAL):
                    user_id, event = _copy_text(user_id), _copy_text(event)
                shown = "\\N" if value is None else repr(value)
                lines.append(
                    f"{account_id}\t{user_id}\t{event}\t{occurred_at.isoformat()}\t{shown}\t{key}\n"
                )
            with cursor.cursor.copy(
                f"COPY {STAGE} (account_id, user_id, event, occurred_at, value, dedup_key) "
                f"FROM STDIN"
            ) as copy:
                copy.write("".join(lines))
            # only days that got new events need their rollups rebuilt
            cursor.execute(
                f"WITH new AS (INSERT INTO accounts_usageevent (account_id, user_id, event, "
                f"occurred_at, value, dedup_key) SELECT account_id, user_id, event, occurred_at, "
                f"value, dedup_key FROM {STAGE} ON CONFLICT (dedup_key) DO NOTHING "
                f"RETURNING account_id, occurred_at), "
                f"marked AS (INSERT INTO {AFFECTED} (account_id, day) SELECT DISTINCT "
                f"account_id, {day_sql} FROM new ON CONFLICT DO NOTHING) "
                f"SELECT count(*) FROM new"
            )
            created = cursor.fetchone()[0]
        else:
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {STAGE} VALUES (%s, %s, %s, %s, %s, %s)",
                [(a, u, e, adapt(t), v, k) for a, u, e, t, v, k in rows],
            )
            cursor.execute(
                f"INSERT OR IGNORE INTO accounts_usageevent (account_id, user_id, event, "
                f"occurred_at, value, dedup_key) SELECT account_id, user_id, event, occurred_at, "
                f"value, dedup_key FROM {STAGE} WHERE true"
            )
            created = cursor.rowcount
            # SQLite has one writer at a time and no RETURNING in a CTE: mark every staged
            # day (a day whose events were all duplicates is rebuilt to the same numbers)
            cursor.execute(
                f"INSERT OR IGNORE INTO {AFFECTED} (account_id, day) "
                f"SELECT DISTINCT account_id, {day_sql} FROM {STAGE} WHERE true"
            )
        cursor.execute(f"DELETE FROM {STAGE}")
    return created


def mark_affected(pairs: Iterable[tuple[int, dt.date]]) -> None:
    """Queue (account, day) pairs for a rollup rebuild (e.g. the nightly reconcile)."""
    or_ignore = "OR IGNORE" if _vendor() != "postgresql" else ""
    tail = "" if or_ignore else "ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT {or_ignore} INTO {AFFECTED} (account_id, day) VALUES (%s, %s) {tail}",
            [(a, d.isoformat()) for a, d in pairs],
        )


def rebuild_affected_rollups() -> int:
    """Rebuild UsageDaily and UsageFeatureDaily for every queued (account, day) pair from
    the raw events; returns the number of pairs."""
    _, day_start, next_day = _day_bounds()
    join = (
        f"FROM {AFFECTED} a JOIN accounts_usageevent e ON e.account_id = a.account_id "
        f"AND e.occurred_at >= {day_start} AND e.occurred_at < {next_day} WHERE true"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {AFFECTED}")
        pairs = cursor.fetchone()[0]
        if not pairs:
            return 0
        if _vendor() == "postgresql":
            # Two loads for the same account commit in some order; each rebuild must count
            # the other's events, so rebuilds of an account wait for the previous load to
            # commit (each statement then sees it). Locks per bucket of accounts, taken in
            # order: bounded in number and free of deadlocks.
            cursor.execute(
                f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, b) FROM (SELECT DISTINCT "
                f"(account_id % {LOCK_BUCKETS})::int AS b FROM {AFFECTED} ORDER BY 1) buckets"
            )

        cursor.execute(
            "INSERT INTO accounts_usagedaily (account_id, day, events, active_users, value_sum) "
            "SELECT a.account_id, a.day, count(*), count(DISTINCT NULLIF(e.user_id, '')), "
            f"COALESCE(sum(e.value), 0) {join} GROUP BY a.account_id, a.day "
            "ON CONFLICT (account_id, day) DO UPDATE SET events = excluded.events, "
            "active_users = excluded.active_users, value_sum = excluded.value_sum"
        )
        cursor.execute(
            "INSERT INTO accounts_usagefeaturedaily (account_id, day, event, events, users) "
            "SELECT a.account_id, a.day, e.event, count(*), count(DISTINCT NULLIF(e.user_id, '')) "
            f"{join} GROUP BY a.account_id, a.day, e.event "
            "ON CONFLICT (account_id, day, event) DO UPDATE SET events = excluded.events, "
            "users = excluded.users"
        )
        cursor.execute(f"DELETE FROM {AFFECTED}")
    return pairs


def lock_all_rollups() -> None:
    """Hold every rollup lock until the transaction ends: no load rebuilds a rollup
    meanwhile (the nightly reconcile clears and rebuilds a whole window under it)."""
    if _vendor() == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, b) "
                f"FROM generate_series(0, {LOCK_BUCKETS - 1}) AS b"
            )


def rollups_rebuild(*, pairs: Iterable[tuple[int, dt.date]]) -> int:
    """Rebuild the rollups of the given (account, day) pairs (the nightly reconcile and
    anyone who changed raw events by other means). Run inside a transaction."""
    prepare()
    mark_affected(pairs)
    return rebuild_affected_rollups()


def first_usage_record(first_seen: dict[int, dt.datetime]) -> None:
    """Keep one 'first product usage' fact per account at its earliest known event."""
    accounts = list(first_seen)
    for start in range(0, len(accounts), ACCOUNT_CHUNK):
        chunk = accounts[start : start + ACCOUNT_CHUNK]
        known = dict(
            TimelineEntry.objects.filter(account_id__in=chunk, key="usage:first").values_list(
                "account_id", "occurred_at"
            )
        )
        timeline.timeline_upsert(
            TimelineEntry(
                account_id=account_id,
                key="usage:first",
                kind=TimelineEntry.Kind.USAGE_FIRST,
                occurred_at=first_seen[account_id],
                title="First product usage",
            )
            for account_id in chunk
            if account_id not in known or first_seen[account_id] < known[account_id]
        )


def events_load(rows: list[tuple]) -> int:
    """Load ``(account_id, user_id, event, occurred_at, value, dedup_key)`` rows that are
    already valid (the demo generator, internal tools): new ones inserted, the touched days'
    rollups rebuilt, the first-usage facts kept. Returns how many were new. Run inside a
    transaction; files and API batches go through ``run_import`` instead."""
    prepare()
    created = load_chunk(rows)
    rebuild_affected_rollups()
    first_seen: dict[int, dt.datetime] = {}
    for account_id, _user, _event, occurred_at, _value, _key in rows:
        seen = first_seen.get(account_id)
        if seen is None or occurred_at < seen:
            first_seen[account_id] = occurred_at
    first_usage_record(first_seen)
    return created
