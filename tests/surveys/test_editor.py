"""The campaign editor: admins and managers create and edit; CSMs and outsiders get 403."""

from __future__ import annotations

import html
import json

import pytest
from django.urls import reverse

from surveys.models import Campaign
from tests.factories import AccountFactory

from .conftest import make_campaign, make_invitation

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Quarterly NPS",
    "status": "active",
    "kind": "nps",
    "question": "",
    "follow_up": "What should we do better?",
    "language": "de",
    "strings": json.dumps({"de": {"submit": "Absenden"}}),
    "segments": ["Enterprise", "Mid-Market"],
    "bands": ["red", "yellow"],
    "lifecycle_stages": ["mature"],
    "roles": ["champion", "decision_maker"],
    "trigger": "recurring",
    "next_run_at": "2026-04-01T09:00",
    "recurrence_months": "3",
    "event": "",
    "reminder_after_days": "5",
    "expires_after_days": "30",
}


@pytest.fixture(autouse=True)
def segments(db):
    """Accounts in the segments the form ticks: the editor offers the segments that exist."""
    for name in ("Enterprise", "Mid-Market", "SMB"):
        AccountFactory(segment=name)


def test_manager_creates_a_recurring_campaign(client, manager):
    client.force_login(manager)
    assert client.get(reverse("surveys:campaign-new")).status_code == 200
    r = client.post(reverse("surveys:campaign-new"), FORM)
    assert r.status_code == 302, r.content.decode()[:2000]
    c = Campaign.objects.select_related("survey").get()
    assert (c.trigger, c.recurrence_months, c.reminder_after_days) == ("recurring", 3, 5)
    assert c.segments == ["Enterprise", "Mid-Market"] and c.bands == ["red", "yellow"]
    assert c.roles == ["champion", "decision_maker"] and c.created_by == manager
    assert c.survey.question.startswith("How likely are you to recommend")  # the default
    assert c.survey.strings == {"de": {"submit": "Absenden"}} and c.survey.language == "de"
    assert f'id="campaign-{c.pk}"' in client.get(reverse("surveys:campaign-list")).content.decode()


def test_editor_says_what_is_wrong(client, admin_user):
    client.force_login(admin_user)
    bad = {**FORM, "recurrence_months": "", "strings": '{"de": {"nope": "x"}}'}
    r = client.post(reverse("surveys:campaign-new"), bad)
    assert r.status_code == 200
    body = r.content.decode()
    assert "A recurring campaign needs an interval." in body
    assert "de.nope: unknown string" in body
    event = {**FORM, "trigger": "event", "event": "renewal"}
    assert (
        "How many days before the renewal?"
        in client.post(reverse("surveys:campaign-new"), event).content.decode()
    )
    assert not Campaign.objects.exists()


def test_segments_are_ticked_from_those_that_exist(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("surveys:campaign-new")).content.decode()
    assert 'type="checkbox" name="segments" value="SMB"' in page
    r = client.post(reverse("surveys:campaign-new"), {**FORM, "segments": ["enterprise"]})
    assert r.status_code == 200 and not Campaign.objects.exists()
    assert (
        "No segment is called “enterprise”; the segments are: Enterprise, Mid-Market, SMB."
        in html.unescape(r.content.decode())
    )


def test_kind_cannot_change_once_answered(client, admin_user, dana):
    from surveys import services

    campaign = make_campaign("nps")
    services.response_record(invitation_id=make_invitation(campaign, dana).pk, score=9)
    client.force_login(admin_user)
    r = client.post(reverse("surveys:campaign-edit", args=[campaign.pk]), {**FORM, "kind": "csat"})
    assert r.status_code == 200 and "The kind cannot change: answers exist." in r.content.decode()
    campaign.survey.refresh_from_db()
    assert campaign.survey.kind == "nps"


def test_csm_cannot_edit_but_sees_the_list(client, csm):
    client.force_login(csm)
    assert client.get(reverse("surveys:campaign-new")).status_code == 403
    assert client.post(reverse("surveys:campaign-new"), FORM).status_code == 403
    r = client.get(reverse("surveys:campaign-list"))
    assert r.status_code == 200 and b"New campaign" not in r.content
