"""Facts written before counts of one were said in the singular: "Payment failed: $10.00
(1 attempts)" becomes "(1 attempt)", "Contract started: Pro, $99.00 MRR, 1 seats" becomes
"1 seat", as new facts print them. The titles are words kept for good (a fact is rewritten
only when its row changes), so they are rewritten once here; only the end of the title
where the builder puts the count, so a subject or a product name is never touched. Going
back leaves them as they are."""

from django.db import migrations


def reword(apps, schema_editor):
    from accounts.timeline import one_count_titles_reword

    one_count_titles_reword(apps.get_model("accounts", "TimelineEntry"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0012_form_once")]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop, elidable=True)]
