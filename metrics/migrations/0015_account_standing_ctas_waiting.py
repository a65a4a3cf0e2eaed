"""The CTAs of an account waiting for room under their owner's cap
(``AccountStanding.waiting_ctas``, pending CTAs, counted among ``open_ctas``), so the queue
says "1 open · 1 waiting" rather than "2 open". Filled by the next standings refresh
(nightly, or one account when its CTAs change); until then it reads 0."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0014_account_standing_trend_7_day"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountstanding",
            name="waiting_ctas",
            field=models.PositiveIntegerField(
                default=0,
                help_text="of open_ctas, those pending: over the owner's cap of open CTAs, "
                "not yet in their queue",
            ),
        ),
        migrations.AlterField(
            model_name="accountstanding",
            name="open_ctas",
            field=models.PositiveIntegerField(
                default=0, help_text="CTAs not closed, the waiting ones (waiting_ctas) included"
            ),
        ),
    ]
