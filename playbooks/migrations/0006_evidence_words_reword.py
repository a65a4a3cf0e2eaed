"""CTA evidence written before the one spelling of money and before counts of one were said
in the singular: "1 overdue invoice (633,600.00 USD due)" becomes "($633,600.00 due)" and
"1 of 1 seats active" becomes "1 of 1 seat active", as the triggers write them now, in the
CTAs, the comments the engine added when a CTA matched again, and the timeline facts
quoting them. Rewritten once here, not on every read: an open CTA compares its stored
evidence with each night's, so the old words would read as a new fact and earn a "Matched
again" comment. The amount and its currency are in the old words to the cent, so nothing
is lost. Going back leaves them as they are."""

from django.db import migrations


def reword(apps, schema_editor):
    from playbooks.services import evidence_words_reword

    evidence_words_reword(
        apps.get_model("playbooks", "Cta"),
        apps.get_model("playbooks", "CtaComment"),
        apps.get_model("accounts", "TimelineEntry"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("playbooks", "0005_cta_email_off"),
        ("accounts", "0013_timeline_one_count_titles"),
    ]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop, elidable=True)]
