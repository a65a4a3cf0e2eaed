"""Sending without Celery beat (embedded mode): the editor's "Send now" and
``manage.py surveys_send``; both say who was left out of a round and why. A one-off campaign
that has sent is done: editing it asks for no new send time and never sends it again."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from surveys import services
from surveys.models import Campaign, Invitation, OptOut
from tests.factories import AccountFactory, StakeholderFactory

from .conftest import make_campaign, make_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(celery_eager, settings):
    settings.SURVEY_FATIGUE_DAYS = 30
    settings.SURVEY_FATIGUE_MAX_PER_YEAR = 4


@pytest.fixture
def audience():
    """Seven people: four to survey, two surveyed five days ago by another campaign, one who
    opted out."""
    account = AccountFactory(segment="Enterprise")
    fresh = StakeholderFactory.create_batch(4, account=account)
    earlier = make_campaign("csat", name="Support CSAT", status=Campaign.Status.CLOSED)
    tired = StakeholderFactory.create_batch(2, account=account)
    for person in tired:
        make_invitation(earlier, person, now=timezone.now() - dt.timedelta(days=5))
    gone = StakeholderFactory(account=account)
    OptOut.objects.create(email=gone.email.lower())
    return fresh


def _texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _send_now(client, campaign, round, capture):
    with capture(execute=True):
        return client.post(reverse("surveys:campaign-send", args=[campaign.pk]), {"round": round})


LEFT_OUT = "3 left out: 2 surveyed in the last 30 days or 4 times in a year, 1 opted out."


def test_send_now_sends_a_one_off_once_and_says_who_was_left_out(
    client, admin_user, audience, django_capture_on_commit_callbacks
):
    later = timezone.now() + dt.timedelta(days=10)
    campaign = make_campaign(name="NPS Q1", next_run_at=later)
    client.force_login(admin_user)
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Not sent yet." in page and "Send round 1 now" in page
    assert reverse("surveys:campaign-send", args=[campaign.pk]) in page

    r = _send_now(client, campaign, "1", django_capture_on_commit_callbacks)
    assert r.status_code == 302 and r["Location"] == reverse(
        "surveys:campaign-edit", args=[campaign.pk]
    )
    assert _texts(r) == [f"Round 1 of “NPS Q1” sent to 4 people; {LEFT_OUT}"]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email.lower() for p in audience)
    campaign.refresh_from_db()
    assert (campaign.runs, campaign.next_run_at) == (1, None)

    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Last send: round 1 on" in page and "4 invited, 0 answered" in page
    assert "Send round" not in page and "was already sent: it sends once" in page

    # a second click (the page still offered round 1), then the sweeper: nothing more
    again = _send_now(client, campaign, "1", django_capture_on_commit_callbacks)
    assert _texts(again) == [
        "“NPS Q1” is a one-off campaign and was already sent: it sends once. To survey its "
        "audience again, create a new campaign or make this one recurring."
    ]
    assert services.campaigns_send_due(now=later + dt.timedelta(days=400)) == {}
    assert len(mail.outbox) == 4 and Invitation.objects.filter(campaign=campaign).count() == 4


def test_send_now_brings_a_recurring_round_forward(
    client, manager, audience, django_capture_on_commit_callbacks
):
    scheduled = (timezone.now() + dt.timedelta(days=10)).replace(microsecond=0)
    campaign = make_campaign(
        name="Quarterly",
        trigger=Campaign.Trigger.RECURRING,
        recurrence_months=3,
        next_run_at=scheduled,
        runs=2,
    )
    client.force_login(manager)
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Send round 3 now" in page and "instead of on" in page
    r = _send_now(client, campaign, "3", django_capture_on_commit_callbacks)
    assert _texts(r) == [f"Round 3 of “Quarterly” sent to 4 people; {LEFT_OUT}"]
    campaign.refresh_from_db()
    assert campaign.runs == 3
    assert campaign.next_run_at == services._add_months(scheduled, 3)  # the one after it
    assert set(Invitation.objects.filter(campaign=campaign).values_list("round", flat=True)) == {
        "3"
    }
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Last send: round 3 on" in page and "Send round 4 now" in page
    assert f"Round 3 of “Quarterly” sent to 4 people; {LEFT_OUT}" in page  # the message shown
    # the page opened before offered round 3: a second POST of it sends nothing
    again = _send_now(client, campaign, "3", django_capture_on_commit_callbacks)
    assert _texts(again) == [
        "Round 3 of “Quarterly” was sent already (it has sent 3): nothing sent again."
    ]
    assert len(mail.outbox) == 4


def test_a_round_that_invited_nobody_says_so(
    client, admin_user, audience, django_capture_on_commit_callbacks
):
    campaign = make_campaign(name="Pulse", segments=["Nobody here"], next_run_at=timezone.now())
    client.force_login(admin_user)
    r = _send_now(client, campaign, "1", django_capture_on_commit_callbacks)
    assert _texts(r) == ["Round 1 of “Pulse” sent to nobody: no stakeholder matches the audience."]
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Round 1 invited nobody: its audience was empty or everyone in it was left out." in page
    assert "Last send" not in page and "Not sent yet." not in page and mail.outbox == []


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"status": Campaign.Status.DRAFT}, "“C” is a draft: set its status to Active and save it"),
        ({"status": Campaign.Status.CLOSED}, "“C” is closed: it sends nothing more."),
        (
            {"closes_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)},
            "“C” closed on 1 Jan 2020 00:00 UTC: its links would not work.",
        ),
    ],
)
def test_send_now_refuses_a_campaign_that_may_not_send(
    client, admin_user, audience, fields, why, django_capture_on_commit_callbacks
):
    campaign = make_campaign(name="C", next_run_at=timezone.now(), **fields)
    client.force_login(admin_user)
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Send round" not in page and why in page
    r = _send_now(client, campaign, "1", django_capture_on_commit_callbacks)
    assert r.status_code == 302 and len(_texts(r)) == 1 and _texts(r)[0].startswith(why)
    assert mail.outbox == [] and not Invitation.objects.filter(campaign=campaign).exists()
    campaign.refresh_from_db()
    assert campaign.runs == 0


def test_event_campaigns_have_no_send_now(
    client, admin_user, audience, django_capture_on_commit_callbacks
):
    campaign = make_campaign(
        name="After a ticket", trigger=Campaign.Trigger.EVENT, event=Campaign.Event.TICKET_SOLVED
    )
    client.force_login(admin_user)
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert "Send round" not in page and f"campaign-{campaign.pk}-sending" not in page
    r = _send_now(client, campaign, "1", django_capture_on_commit_callbacks)
    assert _texts(r) == [
        "“After a ticket” starts on an event (ticket solved): it surveys one account when "
        "that happens, never everyone at once."
    ]
    assert mail.outbox == []


def test_send_now_is_for_editors_and_a_post(client, csm, audience):
    campaign = make_campaign(next_run_at=timezone.now())
    url = reverse("surveys:campaign-send", args=[campaign.pk])
    client.force_login(csm)
    assert client.post(url, {"round": "1"}).status_code == 403
    assert client.get(url).status_code == 405
    assert mail.outbox == [] and not campaign.invitations.exists()


def test_send_now_needs_the_csrf_token(audience, admin_user):
    from django.test import Client

    campaign = make_campaign(next_run_at=timezone.now())
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    r = client.post(reverse("surveys:campaign-send", args=[campaign.pk]), {"round": "1"})
    assert r.status_code == 403 and not campaign.invitations.exists()


# --- a one-off campaign that has sent, edited -------------------------------------------------

EDIT = {
    "name": "NPS Q1",
    "status": "active",
    "kind": "nps",
    "question": "How likely are you to recommend Acme?",
    "follow_up": "",
    "language": "en",
    "strings": "",
    "segments": [],
    "trigger": "one_off",
    "next_run_at": "",  # what the editor shows for a one-off that has sent
    "recurrence_months": "",
    "event": "",
    "reminder_after_days": "",
    "expires_after_days": "30",
}


def test_editing_a_sent_one_off_keeps_it_sent(
    client, admin_user, audience, django_capture_on_commit_callbacks
):
    campaign = make_campaign(name="NPS Q1", next_run_at=timezone.now() - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.campaigns_send_due()[campaign.pk]["issued"] == 4
    client.force_login(admin_user)
    url = reverse("surveys:campaign-edit", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert 'name="next_run_at"' in page and "it takes no new send time" in page

    r = client.post(url, EDIT)  # only the question changed
    assert r.status_code == 302, r.content.decode()[:3000]
    campaign.refresh_from_db()
    assert campaign.survey.question == "How likely are you to recommend Acme?"
    assert (campaign.status, campaign.runs, campaign.next_run_at) == ("active", 1, None)

    # a new send time is refused, and says why
    r = client.post(url, {**EDIT, "next_run_at": "2030-01-01T09:00"})
    assert r.status_code == 200
    assert "This one-off campaign was sent already and sends once" in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.next_run_at is None

    with django_capture_on_commit_callbacks(execute=True):
        assert services.campaigns_send_due(now=timezone.now() + dt.timedelta(days=400)) == {}
    assert len(mail.outbox) == 4
    assert set(Invitation.objects.filter(campaign=campaign).values_list("round", flat=True)) == {
        "1"
    }
    list_page = client.get(reverse("surveys:campaign-list")).content.decode()
    assert "One-off, sent" in list_page


def test_a_sent_one_off_given_a_time_before_the_fix_is_not_sent_again(
    client, admin_user, audience, django_capture_on_commit_callbacks
):
    """A row edited with the old editor's workaround: ran once, then a new send time."""
    campaign = make_campaign(name="NPS Q1", next_run_at=timezone.now() - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        services.campaigns_send_due()
    Campaign.objects.filter(pk=campaign.pk).update(next_run_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.campaigns_send_due(now=timezone.now() + dt.timedelta(days=400)) == {}
    assert len(mail.outbox) == 4
    client.force_login(admin_user)
    page = client.get(reverse("surveys:campaign-edit", args=[campaign.pk])).content.decode()
    assert 'name="next_run_at" value=' not in page  # the editor shows no leftover time


def test_a_one_off_not_yet_sent_still_needs_a_send_time(client, admin_user):
    campaign = make_campaign(name="NPS Q1")
    client.force_login(admin_user)
    r = client.post(reverse("surveys:campaign-edit", args=[campaign.pk]), EDIT)
    assert r.status_code == 200
    assert "An active scheduled campaign needs a send time." in r.content.decode()


# --- manage.py surveys_send -------------------------------------------------------------------


def _run(*args) -> str:
    out = io.StringIO()
    call_command("surveys_send", *args, stdout=out)
    return out.getvalue()


def _due_with_a_reminder():
    campaign = make_campaign(
        name="NPS Q1", segments=["Enterprise"], next_run_at=timezone.now() - dt.timedelta(hours=2)
    )
    old = make_campaign(name="Onboarding CES", kind="ces", reminder_after_days=5)
    quiet = make_invitation(  # someone outside NPS Q1's audience
        old,
        StakeholderFactory(account=AccountFactory(segment="SMB")),
        now=timezone.now() - dt.timedelta(days=40),
        expires_at=timezone.now() + dt.timedelta(days=5),
    )
    return campaign, quiet


def test_command_sends_due_campaigns_and_reminders(audience, django_capture_on_commit_callbacks):
    campaign, quiet = _due_with_a_reminder()
    with django_capture_on_commit_callbacks(execute=True):
        text = _run()
    assert text.splitlines() == [
        "Scheduled campaigns: 1 sent",
        f"  #{campaign.pk} NPS Q1 sent to 4 people; {LEFT_OUT}",
        "Event campaigns: nobody to invite",
        "Reminders: 1 sent",
    ]
    assert len(mail.outbox) == 5 and "a reminder" in mail.outbox[-1].body
    assert mail.outbox[-1].to == [quiet.email]
    with django_capture_on_commit_callbacks(execute=True):
        again = json.loads(_run("--json"))  # as beat's next run: nothing left
    assert again == {"scheduled": [], "events": [], "reminders": 0}
    assert len(mail.outbox) == 5


def test_command_json_and_one_half_at_a_time(audience, django_capture_on_commit_callbacks):
    campaign, _ = _due_with_a_reminder()
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            _run("--reminders-only", "--json")
            == json.dumps({"scheduled": [], "events": [], "reminders": 1}, indent=2) + "\n"
        )
        result = json.loads(_run("--no-reminders", "--json"))
    assert result == {
        "scheduled": [
            {
                "campaign": campaign.pk,
                "name": "NPS Q1",
                "issued": 4,
                "already_invited": 0,
                "opted_out": 1,
                "fatigued": 2,
                "no_email": 0,
            }
        ],
        "events": [],
    }
    assert len(mail.outbox) == 5
    with pytest.raises(CommandError, match="not allowed with argument"):
        _run("--reminders-only", "--no-reminders")
