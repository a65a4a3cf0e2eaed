"""The day the 30-day health trend compares with (``AccountStanding.trend_30_day``): the
latest snapshot on or before 30 days back, at most 7 days earlier. Filled by the next
standings refresh (nightly, or one account when its health changes)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0008_health_version_restored_from"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountstanding",
            name="trend_30_day",
            field=models.DateField(
                blank=True,
                help_text="the snapshot day trend_30 compares with: the latest on or before 30 days back, at most 7 days earlier (metrics.standings.TREND_30_TOLERANCE)",
                null=True,
            ),
        ),
    ]
