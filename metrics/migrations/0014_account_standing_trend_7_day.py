"""The day the 7-day health trend compares with (``AccountStanding.trend_7_day``): the
latest snapshot on or before 7 days back, at most 2 days earlier. Filled by the next
standings refresh (nightly, or one account when its health changes).

Named for what it adds: another metrics migration may land beside it and be renumbered."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0013_health_model_scope_to_rules"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountstanding",
            name="trend_7_day",
            field=models.DateField(
                blank=True,
                help_text="the snapshot day trend_7 compares with: the latest on or before 7 days back, at most 2 days earlier (metrics.standings.TREND_7_TOLERANCE)",
                null=True,
            ),
        ),
    ]
