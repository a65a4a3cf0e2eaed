"""PostgreSQL: ``accounts_usageevent`` becomes a table partitioned by range of
``occurred_at``, one partition per UTC month and a DEFAULT partition (see
``accounts.intake.partitions``). The primary key becomes ``(dedup_key, occurred_at)``:
PostgreSQL wants the partition key in every unique index, and the uniqueness is the same
because ``occurred_at`` is part of the dedup key's hash. Django's view of the model does not
change (``dedup_key`` stays its primary key), so this migration has no state operation.

An existing table is converted in the migration's transaction: renamed, its rows copied
into the partitioned table (one partition per month they span, plus this month and the next
two), then dropped. The table is locked meanwhile (count about a minute per 10M events).
Reversible: the reverse copies the rows back into a plain table keyed by ``dedup_key``.
SQLite keeps a plain table: both directions do nothing there. Self-contained on purpose
(no import of app code, which may change after this migration)."""

import datetime as dt

from django.db import migrations

TABLE = "accounts_usageevent"
OLD = "accounts_usageevent_unpartitioned"
COLUMNS = "account_id, user_id, event, occurred_at, value, dedup_key"
INDEX = "event_account_time_idx"  # the model's Meta.indexes name, kept on the parent
PLAIN_PK = "accounts_usageevent_dedup_key_4ec2d9c7_pk"  # the name Django gave it (0003)
AHEAD_MONTHS = 2


def _month_after(month):
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _bound(month):
    return f"'{month.isoformat()} 00:00:00+00'"


def _relkind(cursor):
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
    row = cursor.fetchone()
    return row[0] if row else None


def _primary_key_name(cursor, table):
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
        [table],
    )
    return cursor.fetchone()[0]


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor) == "p":
            return
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        pk = _primary_key_name(cursor, TABLE)
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {pk} TO {OLD}_pkey")
        cursor.execute(f"ALTER INDEX {INDEX} RENAME TO {OLD}_time_idx")
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at)"
        )
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM {OLD}"
        )
        months = {row[0] for row in cursor.fetchall()}
        month = dt.datetime.now(dt.UTC).date().replace(day=1)
        for _ in range(AHEAD_MONTHS + 1):
            months.add(month)
            month = _month_after(month)
        for month in sorted(months):
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{month:%Y%m} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(_month_after(month))})"
            )
        # copy first, index after: one sorted build per partition instead of row by row
        cursor.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {OLD}")
        cursor.execute(f"DROP TABLE {OLD}")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (dedup_key, occurred_at)"
        )
        cursor.execute(f"CREATE INDEX {INDEX} ON {TABLE} (account_id, occurred_at)")
        cursor.execute(f"ANALYZE {TABLE}")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor) != "p":
            return
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {OLD} (LIKE {TABLE} INCLUDING DEFAULTS)")
        cursor.execute(f"INSERT INTO {OLD} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}")
        cursor.execute(f"DROP TABLE {TABLE}")  # and its partitions
        cursor.execute(f"ALTER TABLE {OLD} RENAME TO {TABLE}")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {PLAIN_PK} PRIMARY KEY (dedup_key)")
        cursor.execute(f"CREATE INDEX {INDEX} ON {TABLE} (account_id, occurred_at)")
        cursor.execute(f"ANALYZE {TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_usage_presence"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
