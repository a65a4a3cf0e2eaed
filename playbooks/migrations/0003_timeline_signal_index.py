"""An index for the playbooks' nightly reads of recent signal facts across the whole book
(survey answers and health band changes of the last days: ``playbooks.facts``). The
timeline's own indexes start with the account, which those reads do not have; a partial
index over the two kinds stays small. It lives here, with its only reader; the SQL is the
same on PostgreSQL and SQLite."""

from django.db import migrations

INDEX = "playbooks_timeline_signals_idx"


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0002_starter_playbooks"), ("accounts", "0004_indexes_and_customer_since_derived")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_timelineentry (occurred_at) "
            "WHERE kind IN ('survey_answer', 'health_band_changed')",
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        )
    ]
