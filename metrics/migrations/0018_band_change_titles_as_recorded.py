"""Band-change facts recorded before the timeline printed their scores as recorded: the
pair in their titles reworded from the scores their data keep ("(50 → 29)" becomes
"(50.1 → 28.6)", as the playbook's evidence and new facts print it). A rewording of words
made from stored numbers, not a change of history: the data, the date and the rest of the
title stay. Going back leaves the titles as they are (both read right)."""

from django.db import migrations


def reword(apps, schema_editor):
    from metrics.services import band_change_titles_reword

    band_change_titles_reword(apps.get_model("accounts", "TimelineEntry"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_api_token_made_and_revoked_by"),
        ("metrics", "0017_account_data_arrival"),
    ]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop, elidable=True)]
