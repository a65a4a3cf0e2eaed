"""Two people editing one survey campaign at once, and the same new-campaign form sent
twice: a save of the page as it was opened is refused once someone else saved the campaign
(or a round was sent) since, nothing written, who and when said; the form sent twice makes
one campaign, not two that would survey the same people twice."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import utc
from accounts.models import FormOnce
from surveys.models import Campaign, Survey

from .test_editor import FORM

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def segments(db):
    from tests.factories import AccountFactory

    for name in ("Enterprise", "Mid-Market"):
        AccountFactory(segment=name)


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found, f"the editor carries {name}"
    return html.unescape(found.group(1))


def _new(client: Client) -> dict:
    page = client.get(reverse("surveys:campaign-new")).content.decode()
    return {**FORM, "form_key": _hidden(page, "form_key")}


def _opened(client: Client, campaign: Campaign) -> dict:
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    return {**FORM, "opened_at": _hidden(page, "opened_at")}


def test_the_same_new_campaign_form_sent_twice_makes_one_campaign(client, manager):
    client.force_login(manager)
    form = _new(client)
    first = client.post(reverse("surveys:campaign-new"), form)
    second = client.post(reverse("surveys:campaign-new"), form, follow=True)
    campaign = Campaign.objects.get()
    assert first.status_code == 302 and Survey.objects.count() == 1
    assert first["Location"].endswith(f"?campaign={campaign.pk}")
    assert second.redirect_chain[0][0].endswith(f"?campaign={campaign.pk}")
    assert "“Quarterly NPS” was saved already (the form was sent twice): one campaign." in (
        html.unescape(second.content.decode())
    )
    # a new form shown is a new key: a second campaign on purpose is one more
    again = _new(client)
    assert again["form_key"] != form["form_key"]
    assert client.post(reverse("surveys:campaign-new"), again).status_code == 302
    assert Campaign.objects.count() == 2 and Survey.objects.count() == 2


def test_a_refused_new_campaign_claims_nothing_and_keeps_its_key(client, manager):
    """A field wrong: nothing written, the key kept on the page; the fixed form sent twice
    is one campaign. Sent again after its campaign was removed: nothing made, and said."""
    client.force_login(manager)
    form = _new(client)
    r = client.post(reverse("surveys:campaign-new"), {**form, "recurrence_months": ""})
    assert r.status_code == 200 and not Campaign.objects.exists()
    assert not FormOnce.objects.exists() and Survey.objects.count() == 0
    assert _hidden(r.content.decode(), "form_key") == form["form_key"]
    for _ in range(2):
        assert client.post(reverse("surveys:campaign-new"), form).status_code == 302
    campaign = Campaign.objects.get()
    campaign.delete()
    r = client.post(reverse("surveys:campaign-new"), form, follow=True)
    assert r.redirect_chain[0][0] == reverse("surveys:campaign-list")
    assert "This form was sent already." in r.content.decode()
    assert not Campaign.objects.exists()


def test_a_save_of_a_campaign_changed_since_it_was_opened_is_refused(admin_user, manager):
    ada, max_ = Client(), Client()
    ada.force_login(admin_user)
    max_.force_login(manager)
    max_.post(reverse("surveys:campaign-new"), _new(max_))
    campaign = Campaign.objects.get()
    ada_form, max_form = _opened(ada, campaign), _opened(max_, campaign)

    url = reverse("surveys:campaign-edit", args=[campaign.pk])
    assert max_.post(url, {**max_form, "reminder_after_days": "7"}).status_code == 302
    r = ada.post(url, {**ada_form, "name": "Yearly NPS"})

    assert r.status_code == 200  # the editor again, her draft and the reason
    campaign.refresh_from_db()
    assert (campaign.name, campaign.reminder_after_days, campaign.updated_by) == (
        "Quarterly NPS", 7, manager,
    )  # fmt: skip
    assert r.context["form"].non_field_errors() == [
        f"This campaign was changed by Max at {utc.moment_text(campaign.updated_at)} UTC, "
        "after you opened it. Your changes are not saved: reload the page to see the "
        "campaign as it is now, then make your change again."
    ]
    assert 'value="Yearly NPS"' in r.content.decode()
    # reloaded, her change goes through on top of his
    assert ada.post(url, {**_opened(ada, campaign), "reminder_after_days": "7",
                          "name": "Yearly NPS"}).status_code == 302  # fmt: skip
    campaign.refresh_from_db()
    assert (campaign.name, campaign.reminder_after_days, campaign.updated_by) == (
        "Yearly NPS", 7, admin_user,
    )  # fmt: skip


def test_a_round_sent_since_the_page_was_opened_refuses_the_save(admin_user):
    """A send moves the next send time on: the page's older time saved would send again."""
    from surveys.services import _campaign_run

    client = Client()
    client.force_login(admin_user)
    client.post(reverse("surveys:campaign-new"), _new(client))
    campaign = Campaign.objects.get()
    form = _opened(client, campaign)
    _campaign_run(campaign, now=campaign.next_run_at)  # nobody to invite: the round still counts
    r = client.post(reverse("surveys:campaign-edit", args=[campaign.pk]), {**form, "name": "X"})
    assert "This campaign was changed (a round was sent) at " in html.unescape(r.content.decode())
    campaign.refresh_from_db()
    assert (campaign.name, campaign.runs) == ("Quarterly NPS", 1)


def test_a_second_click_on_save_is_no_error(admin_user):
    client = Client()
    client.force_login(admin_user)
    client.post(reverse("surveys:campaign-new"), _new(client))
    campaign = Campaign.objects.get()
    form = {**_opened(client, campaign), "reminder_after_days": "9"}
    url = reverse("surveys:campaign-edit", args=[campaign.pk])
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302  # opened_at is old, nothing changes
    campaign.refresh_from_db()
    assert campaign.reminder_after_days == 9
