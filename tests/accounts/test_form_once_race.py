"""Two sends of one new-thing form at the same instant (two tabs' resend, a double click
the browser did not fold) on PostgreSQL make one thing. The first send is held right after
it claimed the form's key, inside its transaction; the second then waits on the key's
unique index, and once the first commits it finds the key claimed and goes to the first's
report or campaign: never a second one, never an error page."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import FormOnce
from reports.models import ScheduledReport
from surveys.models import Campaign, Survey
from tests.factories import AccountFactory
from tests.playbooks.test_concurrency import race
from tests.surveys.test_editor import FORM as CAMPAIGN

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks need PostgreSQL (DATABASE_URL)"
    ),
    pytest.mark.django_db(transaction=True),  # each send commits on its own connection
]
CLAIMED = r'INSERT INTO "accounts_formonce"'


def _key(page: str) -> str:
    return html.unescape(re.search(r'name="form_key" value="([^"]+)"', page).group(1))


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_two_sends_of_one_report_form_at_once_make_one_report(admin_user):
    url = reverse("reports:scheduled")
    one, two = _signed_in(admin_user), _signed_in(admin_user)
    form = {
        "name": "Weekly book", "scope_kind": "all", "scope_key": "", "cadence": "weekly",
        "recipients": [admin_user.pk], "form_key": _key(one.get(url).content.decode()),
    }  # fmt: skip
    outcome = race(
        lambda: one.post(url, form),
        lambda: two.post(url, form, follow=True),
        pause_after=CLAIMED,
    )
    assert outcome["second_waited"], "the second send waited on the first's key"
    assert outcome["first"].status_code == 302
    report = ScheduledReport.objects.get()
    assert "“Weekly book” was saved already (the form was sent twice): one report." in (
        html.unescape(outcome["second"].content.decode())
    )
    assert FormOnce.objects.get().made == f"scheduledreport:{report.pk}"


def test_two_sends_of_one_campaign_form_at_once_make_one_campaign(manager):
    for name in ("Enterprise", "Mid-Market"):
        AccountFactory(segment=name)
    url = reverse("surveys:campaign-new")
    one, two = _signed_in(manager), _signed_in(manager)
    form = {**CAMPAIGN, "form_key": _key(one.get(url).content.decode())}
    outcome = race(
        lambda: one.post(url, form),
        lambda: two.post(url, form, follow=True),
        pause_after=CLAIMED,
    )
    assert outcome["second_waited"], "the second send waited on the first's key"
    campaign = Campaign.objects.get()
    assert Survey.objects.count() == 1  # the second made no survey either
    assert outcome["first"]["Location"].endswith(f"?campaign={campaign.pk}")
    second = outcome["second"]
    assert second.redirect_chain[0][0].endswith(f"?campaign={campaign.pk}")
    assert "“Quarterly NPS” was saved already (the form was sent twice): one campaign." in (
        html.unescape(second.content.decode())
    )
