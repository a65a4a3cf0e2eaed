"""Facts written before the one spelling of money: "Invoice paid: 1,485.00 USD" becomes
"Invoice paid: $1,485.00", as new facts print it. Their titles are words (paid and failed
invoices, ended contracts keep no amount in their data), so the words are rewritten once
here rather than re-spelt on every read by every reader (page, API, digest); the amount and
its currency are in the old words to the cent, so nothing is lost. Going back leaves them
as they are (both read right)."""

from django.db import migrations


def reword(apps, schema_editor):
    from accounts.timeline import money_titles_reword

    money_titles_reword(apps.get_model("accounts", "TimelineEntry"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0009_api_token_made_and_revoked_by")]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop, elidable=True)]
