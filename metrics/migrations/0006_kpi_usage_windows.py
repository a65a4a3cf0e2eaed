"""Stored usage windows (``UsageWindowDay``, ``UsageWindow``, ``UsageWindowFeature``): the
usage inputs of the KPI report per account and window end, written by the night, and the
triggers that delete an account's rows as soon as a usage day they cover changes."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# A write to ``accounts_usagedaily`` (every load of events upserts it; the reconcile and the
# rebuild delete and rewrite it) or a delete of presences (a rebuild) makes the stored
# windows of its accounts that end after the day it touched stale: delete them, so the next
# read computes those accounts directly. PostgreSQL: statement-level, over the rows written
# (one delete per load, not one per row); nothing to do while no window was ever stored.
STALE_FUNCTION = """
CREATE FUNCTION metrics_usagewindow_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM metrics_usagewindowday LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    DELETE FROM metrics_usagewindow w
    USING (SELECT account_id, min(day) AS day FROM changed GROUP BY account_id) c
    WHERE w.account_id = c.account_id AND w.end_day > c.day;
    DELETE FROM metrics_usagewindowfeature w
    USING (SELECT account_id, min(day) AS day FROM changed GROUP BY account_id) c
    WHERE w.account_id = c.account_id AND w.end_day > c.day;
    RETURN NULL;
END $$;
"""
PG_TRIGGERS = [
    ("usagedaily", "INSERT", "NEW"),
    ("usagedaily", "UPDATE", "NEW"),
    ("usagedaily", "DELETE", "OLD"),
    ("usagepresence", "DELETE", "OLD"),
]
PG_DROP_FUNCTION = "DROP FUNCTION IF EXISTS metrics_usagewindow_stale();"

SQLITE_DELETE = """
    DELETE FROM metrics_usagewindow WHERE account_id = {row}.account_id AND end_day > {row}.day;
    DELETE FROM metrics_usagewindowfeature
    WHERE account_id = {row}.account_id AND end_day > {row}.day;
"""


def _name(table: str, event: str) -> str:
    return f"metrics_usagewindow_{table}_{event.lower()}"


def triggers_create(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(STALE_FUNCTION)
    for table, event, row in PG_TRIGGERS:
        name = _name(table, event)
        if postgres:
            schema_editor.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON accounts_{table} "
                f"REFERENCING {row} TABLE AS changed FOR EACH STATEMENT "
                "EXECUTE FUNCTION metrics_usagewindow_stale()"
            )
        else:
            schema_editor.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON accounts_{table} BEGIN"
                f"{SQLITE_DELETE.format(row=row)}END"
            )


def triggers_drop(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for table, event, _row in PG_TRIGGERS:
        on = f" ON accounts_{table}" if postgres else ""
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {_name(table, event)}{on}")
    if postgres:
        schema_editor.execute(PG_DROP_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_rollups_without_database_foreign_keys"),
        ("metrics", "0005_usage_user"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageWindowDay",
            fields=[
                ("end_day", models.DateField(primary_key=True, serialize=False)),
                ("key_features", models.TextField(blank=True)),
                ("computed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name="UsageWindow",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "account",
                        "end_day",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("end_day", models.DateField()),
                ("listed", models.BooleanField(default=True)),
                ("known", models.PositiveIntegerField(default=0)),
                ("active", models.PositiveIntegerField(default=0)),
                ("previous_active", models.PositiveIntegerField(default=0)),
                ("events", models.BigIntegerField(default=0)),
                ("previous_events", models.BigIntegerField(default=0)),
                ("week0", models.PositiveIntegerField(default=0)),
                ("week1", models.PositiveIntegerField(default=0)),
                ("week2", models.PositiveIntegerField(default=0)),
                ("week3", models.PositiveIntegerField(default=0)),
                ("daily_users", models.PositiveIntegerField(default=0)),
                ("key_used", models.PositiveIntegerField(default=0)),
                (
                    "account",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="usage_windows",
                        to="accounts.account",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["end_day"], name="usage_window_end_idx")],
            },
        ),
        migrations.CreateModel(
            name="UsageWindowFeature",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "account",
                        "end_day",
                        "event",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("end_day", models.DateField()),
                ("event", models.CharField(max_length=200)),
                ("users", models.PositiveIntegerField()),
                (
                    "account",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="usage_window_features",
                        to="accounts.account",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["end_day"], name="usage_window_feature_end_idx")],
            },
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
