"""KPI snapshots of a manager's team (``KpiScope.TEAM``): the scope kind's choices only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0006_kpi_usage_windows"),
    ]

    operations = [
        migrations.AlterField(
            model_name="kpisnapshot",
            name="scope_kind",
            field=models.CharField(
                choices=[
                    ("all", "Whole book"),
                    ("segment", "Segment"),
                    ("owner", "Owner"),
                    ("team", "Manager's team"),
                ],
                max_length=10,
            ),
        ),
    ]
