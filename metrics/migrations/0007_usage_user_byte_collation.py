"""PostgreSQL: ``metrics_usageuser.user_id`` compares as bytes (``COLLATE "C"``), like the
presences it is derived from (``accounts`` migration 0008): the trigger on every load of
events upserts one key per (account, user) into its primary key. SQLite: nothing."""

from django.db import migrations


def _alter(collation: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"ALTER TABLE metrics_usageuser ALTER COLUMN user_id TYPE varchar(200) "
                f"COLLATE {collation}"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_usage_text_byte_collation"),
        ("metrics", "0006_kpi_usage_windows"),
    ]

    operations = [
        migrations.RunPython(_alter('"C"'), _alter('pg_catalog."default"')),
    ]
