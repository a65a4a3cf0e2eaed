"""One row per account whose data arrived after its last health recompute started, for the
sweep that schedules a recompute lost with a killed worker (metrics.arrivals)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_api_token_made_and_revoked_by"),
        ("metrics", "0016_account_standing_overridden"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccountDataArrival",
            fields=[
                (
                    "account",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="accounts.account",
                    ),
                ),
                ("arrived_at", models.DateTimeField()),
            ],
            options={
                "indexes": [models.Index(fields=["arrived_at"], name="data_arrival_at_idx")],
            },
        ),
    ]
