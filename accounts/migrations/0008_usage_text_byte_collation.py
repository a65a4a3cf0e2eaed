"""PostgreSQL: the ``user_id`` and ``event`` columns of the raw events, the presences and the
feature days compare as bytes (``COLLATE "C"``).

Every new event of a load is a new key in the presences' primary key (account, day,
user_id, event) and in the feature days' unique (account, day, event) and (event, day)
indexes; each B-tree step compares these strings. Under the database's default collation
(``C.UTF-8`` or ``en_US.UTF-8``) every comparison goes through the C library's ``strcoll``;
under ``"C"`` it is a ``memcmp``. Measured (docs/benchmarks.md, "issue 2, fourth session"):
the presence and feature-day statements of a load cost about 2 µs less per event each.

Same type and length, so no table rewrite; the indexes on these columns are rebuilt. The
raw events change too (no index reads them) so that every table a comparison joins
(the reconcile's ``EXCEPT`` of events against the rollups) has the same collation. Order
by these columns is byte order (the same as ``C.UTF-8``; under ``en_US`` upper case now
sorts before lower case). Identifiers, not prose. SQLite: nothing (``BINARY`` already).
A later ``AlterField`` of these fields would put the default collation back: keep it.
"""

from django.db import migrations

COLUMNS = [
    ("accounts_usageevent", ["user_id", "event"]),
    ("accounts_usagepresence", ["user_id", "event"]),
    ("accounts_usagefeaturedaily", ["event"]),
]


def _alter(collation: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, columns in COLUMNS:
            changes = ", ".join(
                f"ALTER COLUMN {c} TYPE varchar(200) COLLATE {collation}" for c in columns
            )
            schema_editor.execute(f"ALTER TABLE {table} {changes}")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_rollups_without_database_foreign_keys"),
    ]

    operations = [
        migrations.RunPython(_alter('"C"'), _alter("pg_catalog.\"default\"")),
    ]
