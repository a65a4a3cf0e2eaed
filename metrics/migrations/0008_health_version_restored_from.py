"""A restored health model version names the earlier version it copies
(``HealthModelVersion.restored_from``)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0007_kpi_scope_team"),
    ]

    operations = [
        migrations.AddField(
            model_name="healthmodelversion",
            name="restored_from",
            field=models.ForeignKey(
                blank=True,
                help_text="the earlier version this one is a copy of (a restore); blank otherwise",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="metrics.healthmodelversion",
            ),
        ),
    ]
