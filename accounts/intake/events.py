"""Usage events: deduplicated bulk load and the daily rollups kept current with it.

The same SQL runs on PostgreSQL and SQLite: a chunk of events is staged in a temporary
table (with ``COPY`` on PostgreSQL, ``executemany`` on SQLite) and moved into
``accounts_usageevent`` with ``ON CONFLICT DO NOTHING`` (the primary key: the dedup key, on
PostgreSQL with ``occurred_at``, the partition key). The months a chunk spans get their
partitions first (``intake.partitions``; cached, so usually no query). The events that
were actually new are kept in a second temporary table; at the end of the load they are
*added* to the rollups (``apply_new_rollups``): counts and value sums add up, and distinct
users add up through ``UsagePresence`` (a user counts once per day and feature, and once
per day). A load therefore costs the same whatever the rollups already hold, and a file of
duplicates costs no rollup work at all.

The nightly reconcile (``metrics.pipeline``) rebuilds the rollups and presences of recent
days from the raw events (``rollups_rebuild``), the safety net under the increments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from hashlib import md5

from django.db import connection

from accounts import timeline
from accounts.models import TimelineEntry

from . import partitions

STAGE = "intake_event_stage"
NEW = "intake_event_new"  # events this load inserted, not yet in the rollups
FRESH = "intake_presence_fresh"  # presences this load inserted (see apply_new_rollups)
AFFECTED = "intake_event_affected"  # (account, day) pairs queued for a rebuild from raw
LOCK_SPACE = 7301  # advisory-lock namespace of rollup updates
LOCK_BUCKETS = 256
ACCOUNT_CHUNK = 5_000  # accounts per IN (...) lookup
FIRST_USAGE_KEY, FIRST_USAGE_TITLE = "usage:first", "First product usage"  # the timeline fact
EVENT_COLUMNS = "account_id, user_id, event, occurred_at, value, dedup_key"


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


def _clear(cursor, table: str) -> None:
    # TRUNCATE on PostgreSQL: rows DELETEd inside the running transaction stay in the
    # temporary table as dead rows, and every later chunk would scan them again
    if _vendor() == "postgresql":
        cursor.execute(f"TRUNCATE {table}")
    else:
        cursor.execute(f"DELETE FROM {table}")


def prepare(*, rebuild: bool = False) -> None:
    """Create (or empty) the temporary tables of this connection: those of a load, or with
    ``rebuild`` the queue of pairs to rebuild from raw events."""
    pg = _vendor() == "postgresql"
    uuid_type = "uuid" if pg else "char(32)"
    ts_type = "timestamptz" if pg else "datetime"
    text = "varchar(200) NOT NULL"
    tables = {
        STAGE: f"account_id bigint NOT NULL, user_id {text}, event {text}, "
        f"occurred_at {ts_type} NOT NULL, value double precision NULL, "
        f"dedup_key {uuid_type} NOT NULL",
        NEW: f"account_id bigint NOT NULL, day date NOT NULL, user_id {text}, event {text}, "
        "value double precision NULL",
        FRESH: f"account_id bigint NOT NULL, day date NOT NULL, user_id {text}, event {text}, "
        "first_that_day boolean NOT NULL",
    }
    if rebuild:
        tables = {
            AFFECTED: "account_id bigint NOT NULL, day date NOT NULL, PRIMARY KEY (account_id, day)"
        }
    with connection.cursor() as cursor:
        if pg:
            # JIT compiling these big statements costs more than it saves
            cursor.execute("SET LOCAL jit = off")
        for table, columns in tables.items():
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({columns})")
            _clear(cursor, table)


def copy_payload(rows: list[tuple]) -> bytes:
    """The ``COPY … FROM STDIN`` text of ``(account_id, user_id, event, occurred_at, value,
    dedup_key)`` rows, encoded. Pure Python: the event loader builds it in its worker thread,
    so the thread that owns the connection only hands it to PostgreSQL."""
    lines = []
    append = lines.append
    for account_id, user_id, event, occurred_at, value, key in rows:
        if "\\" in user_id or "\\" in event or not (user_id + event).isprintable():
            # tabs, newlines, backslashes: COPY's escapes (rare; most names are plain)
            user_id, event = _copy_text(user_id), _copy_text(event)
        shown = "\\N" if value is None else repr(value)
        append(f"{account_id}\t{user_id}\t{event}\t{occurred_at.isoformat()}\t{shown}\t{key}\n")
    return "".join(lines).encode()


def load_chunk(rows: list[tuple], payload: bytes | None = None) -> int:
    """Insert ``(account_id, user_id, event, occurred_at, value, dedup_key)`` rows; returns
    how many were new (the rest were already there). ``payload``: their ``copy_payload``
    when the caller built it already. Call ``prepare()`` first and ``apply_new_rollups()``
    after the last chunk."""
    if not rows:
        return 0
    day_sql = _day_bounds()[0]
    with connection.cursor() as cursor:
        if _vendor() == "postgresql":
            # a month without its partition would land in the DEFAULT one: create it first
            partitions.partitions_for([row[3] for row in rows])
            if payload is None:
                payload = copy_payload(rows)
            with cursor.cursor.copy(f"COPY {STAGE} ({EVENT_COLUMNS}) FROM STDIN") as copy:
                copy.write(payload)
            # the rows actually inserted (not the duplicates) go on to the rollups
            cursor.execute(
                f"WITH new AS (INSERT INTO accounts_usageevent ({EVENT_COLUMNS}) "
                f"SELECT {EVENT_COLUMNS} FROM {STAGE} ON CONFLICT DO NOTHING "
                f"RETURNING account_id, user_id, event, occurred_at, value) "
                f"INSERT INTO {NEW} (account_id, day, user_id, event, value) "
                f"SELECT account_id, {day_sql}, user_id, event, value FROM new"
            )
            created = cursor.rowcount
        else:
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {STAGE} VALUES (%s, %s, %s, %s, %s, %s)",
                [(a, u, e, adapt(t), v, k) for a, u, e, t, v, k in rows],
            )
            # SQLite has no RETURNING inside a WITH: the inserted rows come back here
            cursor.execute(
                f"INSERT OR IGNORE INTO accounts_usageevent ({EVENT_COLUMNS}) "
                f"SELECT {EVENT_COLUMNS} FROM {STAGE} WHERE true "
                f"RETURNING account_id, {day_sql}, user_id, event, value"
            )
            new = cursor.fetchall()
            created = len(new)
            cursor.executemany(f"INSERT INTO {NEW} VALUES (%s, %s, %s, %s, %s)", new)
        _clear(cursor, STAGE)
    return created


def _lock_buckets(cursor, table: str) -> None:
    """Two loads for the same account commit in some order, and the second must see the
    first's presences to count a user once. So rollup updates of an account wait until the
    previous one commits (each statement after the lock then sees it). Locks per bucket of
    accounts, taken in order: bounded in number and free of deadlocks."""
    if _vendor() == "postgresql":
        cursor.execute(
            f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, b) FROM (SELECT DISTINCT "
            f"(account_id % {LOCK_BUCKETS})::int AS b FROM {table} ORDER BY 1) buckets"
        )


def apply_new_rollups() -> int:
    """Add the events inserted since ``prepare()`` to UsageDaily, UsageFeatureDaily and
    UsagePresence; returns how many events that was."""
    pg = _vendor() == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {NEW}")
        added = cursor.fetchone()[0]
        if not added:
            return 0
        _lock_buckets(cursor, NEW)
        # 1. presences: the ones not stored yet are this load's new (user, day, feature)
        # triples; first_that_day says the user had no other presence that day before.
        # Both read the table as it was before the statement (one snapshot per statement).
        seen_that_day = (
            "EXISTS (SELECT 1 FROM accounts_usagepresence p WHERE p.account_id = f.account_id "
            "AND p.day = f.day AND p.user_id = f.user_id)"
        )
        triples = f"SELECT DISTINCT account_id, day, user_id, event FROM {NEW} WHERE user_id <> ''"
        if pg:
            # a probe and a plain insert, not ON CONFLICT DO NOTHING (dearer per new row,
            # see _add_to_rollup): the locks above keep other loads off these keys
            cursor.execute(
                f"WITH f AS (INSERT INTO accounts_usagepresence (account_id, day, user_id, "
                f"event) SELECT * FROM ({triples}) t WHERE NOT EXISTS (SELECT 1 FROM "
                f"accounts_usagepresence p WHERE p.account_id = t.account_id AND p.day = t.day "
                f"AND p.user_id = t.user_id AND p.event = t.event) ORDER BY 1, 2, 3, 4 "
                f"RETURNING account_id, day, user_id, event) "
                f"INSERT INTO {FRESH} SELECT f.*, NOT {seen_that_day} FROM f"
            )
        else:  # one writer at a time: read what is missing, then insert it
            cursor.execute(
                f"INSERT INTO {FRESH} SELECT f.*, NOT {seen_that_day} FROM ({triples}) f "
                f"WHERE NOT EXISTS (SELECT 1 FROM accounts_usagepresence p "
                f"WHERE p.account_id = f.account_id AND p.day = f.day "
                f"AND p.user_id = f.user_id AND p.event = f.event)"
            )
            cursor.execute(
                f"INSERT INTO accounts_usagepresence (account_id, day, user_id, event) "
                f"SELECT account_id, day, user_id, event FROM {FRESH}"
            )
        # 2. the rollups: new events and value sums, new users, added to what is stored
        days = (
            "SELECT n.account_id, n.day, n.events, COALESCE(u.users, 0) AS active_users, "
            "n.value_sum FROM "
            f"(SELECT account_id, day, count(*) AS events, COALESCE(sum(value), 0) AS value_sum "
            f"FROM {NEW} GROUP BY account_id, day) n LEFT JOIN "
            f"(SELECT account_id, day, count(DISTINCT user_id) AS users FROM {FRESH} "
            f"WHERE first_that_day GROUP BY account_id, day) u "
            "ON u.account_id = n.account_id AND u.day = n.day"
        )
        _add_to_rollup(
            cursor,
            "accounts_usagedaily",
            ["account_id", "day"],
            ["events", "active_users", "value_sum"],
            days,
        )
        features = (
            "SELECT n.account_id, n.day, n.event, n.events, COALESCE(u.users, 0) AS users FROM "
            f"(SELECT account_id, day, event, count(*) AS events FROM {NEW} "
            f"GROUP BY account_id, day, event) n LEFT JOIN "
            f"(SELECT account_id, day, event, count(*) AS users FROM {FRESH} "
            f"GROUP BY account_id, day, event) u "
            "ON u.account_id = n.account_id AND u.day = n.day AND u.event = n.event"
        )
        _add_to_rollup(
            cursor,
            "accounts_usagefeaturedaily",
            ["account_id", "day", "event"],
            ["events", "users"],
            features,
        )
        _clear(cursor, NEW)
        _clear(cursor, FRESH)
    return added


def _add_to_rollup(cursor, table: str, keys: list[str], sums: list[str], rows: str) -> None:
    """Add ``rows`` (a SELECT of ``keys`` and ``sums``, one row per key) to ``table``.

    PostgreSQL: one statement that updates the keys already stored and inserts the others
    with a plain INSERT. ``INSERT … ON CONFLICT DO UPDATE`` costs more per new row
    (speculative insertion; a backfill's keys are nearly all new): 300,000 new day rows
    took 8.1–8.6 s that way and 4.6–6.4 s as a probe and a plain insert
    (docs/benchmarks.md, issue 2, fourth session). Safe because the caller holds the
    rollup locks of these accounts (``_lock_buckets``): no other load adds one of these
    keys before this transaction commits. SQLite: ``ON CONFLICT DO UPDATE`` (one writer)."""
    columns = ", ".join(keys + sums)
    if _vendor() != "postgresql":
        added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM ({rows}) r WHERE true "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
        )
        return
    order = ", ".join(str(i + 1) for i in range(len(keys)))
    added = ", ".join(f"{c} = t.{c} + r.{c}" for c in sums)
    match = " AND ".join(f"t.{k} = r.{k}" for k in keys)
    stored = " AND ".join(f"s.{k} = r.{k}" for k in keys)
    cursor.execute(
        f"WITH r AS MATERIALIZED ({rows}), "
        f"s AS (UPDATE {table} t SET {added} FROM r WHERE {match} "
        f"RETURNING {', '.join('t.' + k for k in keys)}) "
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM r "
        f"WHERE NOT EXISTS (SELECT 1 FROM s WHERE {stored}) ORDER BY {order}"
    )


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
    """Rebuild UsagePresence, UsageDaily and UsageFeatureDaily for every queued (account,
    day) pair from the raw events; returns the number of UsageDaily rows written (pairs
    with no events left get none: their rollup rows are the caller's to delete)."""
    _, day_start, next_day = _day_bounds()
    join = (
        f"FROM {AFFECTED} a JOIN accounts_usageevent e ON e.account_id = a.account_id "
        f"AND e.occurred_at >= {day_start} AND e.occurred_at < {next_day} WHERE true"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {AFFECTED}")
        if not cursor.fetchone()[0]:
            return 0
        _lock_buckets(cursor, AFFECTED)
        cursor.execute(
            "DELETE FROM accounts_usagepresence WHERE EXISTS (SELECT 1 FROM "
            f"{AFFECTED} a WHERE a.account_id = accounts_usagepresence.account_id "
            "AND a.day = accounts_usagepresence.day)"
        )
        cursor.execute(
            "INSERT INTO accounts_usagepresence (account_id, day, user_id, event) "
            f"SELECT DISTINCT a.account_id, a.day, e.user_id, e.event {join} "
            "AND e.user_id <> ''"
        )
        cursor.execute(
            "INSERT INTO accounts_usagedaily (account_id, day, events, active_users, value_sum) "
            "SELECT a.account_id, a.day, count(*), count(DISTINCT NULLIF(e.user_id, '')), "
            f"COALESCE(sum(e.value), 0) {join} GROUP BY a.account_id, a.day "
            "ON CONFLICT (account_id, day) DO UPDATE SET events = excluded.events, "
            "active_users = excluded.active_users, value_sum = excluded.value_sum"
        )
        written = cursor.rowcount
        cursor.execute(
            "INSERT INTO accounts_usagefeaturedaily (account_id, day, event, events, users) "
            "SELECT a.account_id, a.day, e.event, count(*), count(DISTINCT NULLIF(e.user_id, '')) "
            f"{join} GROUP BY a.account_id, a.day, e.event "
            "ON CONFLICT (account_id, day, event) DO UPDATE SET events = excluded.events, "
            "users = excluded.users"
        )
        _clear(cursor, AFFECTED)
    return written


def lock_all_rollups() -> None:
    """Hold every rollup lock until the transaction ends: no load changes a rollup or a
    presence meanwhile (the nightly reconcile clears and rebuilds a whole window under it)."""
    if _vendor() == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, b) "
                f"FROM generate_series(0, {LOCK_BUCKETS - 1}) AS b"
            )


def rollups_rebuild(*, pairs: Iterable[tuple[int, dt.date]]) -> int:
    """Rebuild the rollups and presences of the given (account, day) pairs from the raw
    events (the nightly reconcile, and anyone who changed raw events by other means); a
    pair with no events left loses its presences. Run inside a transaction."""
    prepare(rebuild=True)
    mark_affected(pairs)
    return rebuild_affected_rollups()


def first_usage_record(first_seen: dict[int, dt.datetime]) -> None:
    """Keep one 'first product usage' fact per account at its earliest known event."""
    if not first_seen:
        return
    if _vendor() == "postgresql":
        # one statement for the whole load: the fact is written where missing and moved
        # where this load saw an earlier event (the lookup of the known facts and Django's
        # bulk upsert cost 6.7 µs of backend and ~10 µs of Python CPU per event of an API
        # batch of 10,000; this statement 3.9 µs of backend: docs/benchmarks.md)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_timelineentry "
                "(account_id, key, kind, occurred_at, title, detail, data, created_at) "
                "SELECT f.account_id, %s, %s, f.occurred_at, %s, '', '{}', now() "
                "FROM unnest(%s::bigint[], %s::timestamptz[]) AS f(account_id, occurred_at) "
                "ORDER BY 1 "
                "ON CONFLICT (account_id, key) DO UPDATE SET occurred_at = excluded.occurred_at, "
                "kind = excluded.kind, title = excluded.title, detail = excluded.detail, "
                "data = excluded.data "
                "WHERE excluded.occurred_at < accounts_timelineentry.occurred_at",
                [
                    FIRST_USAGE_KEY,
                    TimelineEntry.Kind.USAGE_FIRST.value,
                    FIRST_USAGE_TITLE,
                    list(first_seen),
                    list(first_seen.values()),
                ],
            )
        return
    accounts = list(first_seen)
    for start in range(0, len(accounts), ACCOUNT_CHUNK):
        chunk = accounts[start : start + ACCOUNT_CHUNK]
        known = dict(
            TimelineEntry.objects.filter(account_id__in=chunk, key=FIRST_USAGE_KEY).values_list(
                "account_id", "occurred_at"
            )
        )
        timeline.timeline_upsert(
            TimelineEntry(
                account_id=account_id,
                key=FIRST_USAGE_KEY,
                kind=TimelineEntry.Kind.USAGE_FIRST,
                occurred_at=first_seen[account_id],
                title=FIRST_USAGE_TITLE,
            )
            for account_id in chunk
            if account_id not in known or first_seen[account_id] < known[account_id]
        )


def events_load(rows: list[tuple]) -> int:
    """Load ``(account_id, user_id, event, occurred_at, value, dedup_key)`` rows that are
    already valid (the demo generator, internal tools): new ones inserted and added to the
    rollups, the first-usage facts kept. Returns how many were new. Run inside a
    transaction; files and API batches go through ``run_import`` instead."""
    prepare()
    created = load_chunk(rows)
    apply_new_rollups()
    first_seen: dict[int, dt.datetime] = {}
    for account_id, _user, _event, occurred_at, _value, _key in rows:
        seen = first_seen.get(account_id)
        if seen is None or occurred_at < seen:
            first_seen[account_id] = occurred_at
    first_usage_record(first_seen)
    return created
