"""The standing keeps whether an override set its score (the queue, the account page and
the API read it there, instead of each probing the snapshot); the existing standings take
it from their snapshot of the same day."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef


def flag_from_snapshots(apps, schema_editor):
    AccountStanding = apps.get_model("metrics", "AccountStanding")
    HealthSnapshot = apps.get_model("metrics", "HealthSnapshot")
    by_hand = HealthSnapshot.objects.filter(
        account_id=OuterRef("account_id"), day=OuterRef("day")
    ).exclude(overrides=[])
    AccountStanding.objects.filter(Exists(by_hand)).update(overridden=True)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0015_account_standing_ctas_waiting"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountstanding",
            name="overridden",
            field=models.BooleanField(
                default=False, help_text="an override (of the score or a component) set that score"
            ),
        ),
        migrations.RunPython(flag_from_snapshots, migrations.RunPython.noop),
    ]
