"""Known users per account (``UsageUser``), kept by triggers on ``accounts_usagepresence``
and backfilled from the presences already stored."""

import django.db.models.deletion
from django.db import migrations, models

# PostgreSQL: one statement-level trigger per write, over the rows it wrote (a load inserts
# its presences in one statement: one upsert of their users, not one per row)
PG_TRIGGERS = """
CREATE FUNCTION metrics_usageuser_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metrics_usageuser (account_id, user_id, first_day)
    SELECT account_id, user_id, min(day) FROM added GROUP BY account_id, user_id ORDER BY 1, 2
    ON CONFLICT (account_id, user_id) DO UPDATE SET first_day = EXCLUDED.first_day
    WHERE EXCLUDED.first_day < metrics_usageuser.first_day;
    RETURN NULL;
END $$;
CREATE TRIGGER metrics_usageuser_added AFTER INSERT ON accounts_usagepresence
REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION metrics_usageuser_added();

CREATE FUNCTION metrics_usageuser_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metrics_usageuser u USING (SELECT DISTINCT account_id, user_id FROM removed) t
    WHERE u.account_id = t.account_id AND u.user_id = t.user_id;
    INSERT INTO metrics_usageuser (account_id, user_id, first_day)
    SELECT p.account_id, p.user_id, min(p.day) FROM accounts_usagepresence p
    JOIN (SELECT DISTINCT account_id, user_id FROM removed) t
    ON p.account_id = t.account_id AND p.user_id = t.user_id
    GROUP BY p.account_id, p.user_id ORDER BY 1, 2;
    RETURN NULL;
END $$;
CREATE TRIGGER metrics_usageuser_removed AFTER DELETE ON accounts_usagepresence
REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION metrics_usageuser_removed();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS metrics_usageuser_added ON accounts_usagepresence;
DROP TRIGGER IF EXISTS metrics_usageuser_removed ON accounts_usagepresence;
DROP FUNCTION IF EXISTS metrics_usageuser_added();
DROP FUNCTION IF EXISTS metrics_usageuser_removed();
"""

# SQLite: row-level triggers (it has no statement-level ones); the same rules
SQLITE_TRIGGERS = [
    """
CREATE TRIGGER metrics_usageuser_added AFTER INSERT ON accounts_usagepresence BEGIN
    INSERT INTO metrics_usageuser (account_id, user_id, first_day)
    VALUES (NEW.account_id, NEW.user_id, NEW.day)
    ON CONFLICT (account_id, user_id) DO UPDATE SET first_day = excluded.first_day
    WHERE excluded.first_day < metrics_usageuser.first_day;
END
""",
    """
CREATE TRIGGER metrics_usageuser_removed AFTER DELETE ON accounts_usagepresence BEGIN
    DELETE FROM metrics_usageuser WHERE account_id = OLD.account_id AND user_id = OLD.user_id;
    INSERT INTO metrics_usageuser (account_id, user_id, first_day)
    SELECT account_id, user_id, min(day) FROM accounts_usagepresence
    WHERE account_id = OLD.account_id AND user_id = OLD.user_id GROUP BY account_id, user_id;
END
""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS metrics_usageuser_added",
    "DROP TRIGGER IF EXISTS metrics_usageuser_removed",
]


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_TRIGGERS)
    else:
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)
    schema_editor.execute(
        "INSERT INTO metrics_usageuser (account_id, user_id, first_day) "
        "SELECT account_id, user_id, min(day) FROM accounts_usagepresence "
        "GROUP BY account_id, user_id"
    )


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP)
    else:
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_usage_presence"),
        ("metrics", "0004_account_standing"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageUser",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "account",
                        "user_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("user_id", models.CharField(max_length=200)),
                ("first_day", models.DateField()),
                (
                    "account",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="usage_users",
                        to="accounts.account",
                    ),
                ),
            ],
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
