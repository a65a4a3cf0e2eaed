"""Sending: audiences, fatigue, opt-outs, reminders, schedules and events; every email goes
through the outbox exactly once, also when a task runs twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AccountLifecycle, Stakeholder
from outbox.models import Message
from surveys import services
from surveys.models import Campaign, Invitation, OptOut
from surveys.tasks import send_due_campaigns, send_survey_reminders
from tests.factories import AccountFactory, ContractFactory, StakeholderFactory, TicketFactory

from .conftest import NOW, make_campaign, make_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(celery_eager, settings):
    settings.SURVEY_FATIGUE_DAYS = 30
    settings.SURVEY_FATIGUE_MAX_PER_YEAR = 3


def _send(campaign, round="1", **kw):
    return services.campaign_round_send(
        campaign=campaign, round=round, now=kw.pop("now", NOW), **kw
    )


def test_audience_filters_segment_lifecycle_and_role(django_capture_on_commit_callbacks):
    ent = AccountFactory(segment="Enterprise", lifecycle_stage=AccountLifecycle.MATURE)
    smb = AccountFactory(segment="SMB", lifecycle_stage=AccountLifecycle.MATURE)
    onboarding = AccountFactory(segment="Enterprise", lifecycle_stage=AccountLifecycle.ONBOARDING)
    champ = StakeholderFactory(account=ent, role=Stakeholder.Role.CHAMPION)
    StakeholderFactory(account=ent, role=Stakeholder.Role.BILLING)
    StakeholderFactory(account=smb, role=Stakeholder.Role.CHAMPION)
    StakeholderFactory(account=onboarding, role=Stakeholder.Role.CHAMPION)
    campaign = make_campaign(
        segments=["Enterprise"], lifecycle_stages=["mature"], roles=["champion"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        summary = _send(campaign)
    assert summary.as_dict()["issued"] == 1
    assert list(Invitation.objects.values_list("stakeholder_id", flat=True)) == [champ.pk]
    assert [m.to for m in mail.outbox] == [[champ.email.lower()]]


def test_band_filter_uses_the_latest_health_snapshot():
    from metrics.models import HealthSnapshot
    from metrics.services import health_model_ensure_default

    version = health_model_ensure_default().versions.get(active=True)
    red, green = AccountFactory(), AccountFactory()
    for account, bands in ((red, ["green", "red"]), (green, ["red", "green"])):
        for day, band in zip((dt.date(2026, 2, 1), dt.date(2026, 3, 1)), bands, strict=True):
            HealthSnapshot.objects.create(
                account=account, day=day, model_version=version, score=50, band=band
            )
    StakeholderFactory(account=red)
    StakeholderFactory(account=green)
    StakeholderFactory()  # no snapshot: matches no band
    campaign = make_campaign(bands=["red"])
    _send(campaign)
    assert list(Invitation.objects.values_list("account_id", flat=True)) == [red.pk]


def test_fatigue_nobody_twice_within_n_days_nor_more_than_m_a_year():
    tired = StakeholderFactory(email="tired@x.example")  # invited 10 days ago elsewhere
    busy = StakeholderFactory(email="busy@x.example")  # already 3 times in the last year
    fresh = StakeholderFactory(email="fresh@x.example")  # last invited 40 days ago
    old = make_campaign(name="old")
    Invitation.objects.filter(pk=make_invitation(old, tired).pk).update(
        sent_at=NOW - dt.timedelta(days=10)
    )
    for days, round in ((100, "a"), (200, "b"), (300, "c")):
        inv = make_invitation(old, busy, round=round)
        Invitation.objects.filter(pk=inv.pk).update(sent_at=NOW - dt.timedelta(days=days))
    inv = make_invitation(old, fresh)
    Invitation.objects.filter(pk=inv.pk).update(sent_at=NOW - dt.timedelta(days=40))
    summary = _send(make_campaign(name="new"))
    assert summary.as_dict() == {
        "issued": 1,
        "already_invited": 0,
        "opted_out": 0,
        "fatigued": 2,
        "no_email": 0,
    }
    assert Invitation.objects.get(campaign__name="new").stakeholder_id == fresh.pk


def test_opted_out_people_are_never_surveyed_and_no_email_is_skipped(client):
    out = StakeholderFactory(email="Out@X.example")
    StakeholderFactory(email="")
    OptOut.objects.create(email="out@x.example")
    summary = _send(make_campaign())
    assert summary.opted_out == 1 and summary.no_email == 1 and summary.issued == []
    assert (
        services.survey_invitation_issue(
            campaign_id=make_campaign(name="direct").pk, stakeholder_id=out.pk, round="1"
        )
        is None
    )
    assert mail.outbox == [] and not Invitation.objects.exists()


def test_a_round_resent_or_a_task_run_twice_sends_nothing_twice(django_capture_on_commit_callbacks):
    StakeholderFactory.create_batch(3)
    campaign = make_campaign(next_run_at=NOW - dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        first = services.campaigns_send_due(now=NOW)
        again = services.campaigns_send_due(now=NOW)  # one-off: nothing left to run
        resent = _send(campaign, round="1")  # the same round by hand: all already invited
        for invitation in Invitation.objects.all():  # a retried email step: claimed already
            assert services.invitation_email_send(invitation_id=invitation.pk) is False
    assert first == {
        campaign.pk: {
            "issued": 3,
            "already_invited": 0,
            "opted_out": 0,
            "fatigued": 0,
            "no_email": 0,
        }
    }
    assert again == {} and resent.already_invited == 3
    assert len(mail.outbox) == 3 and Message.objects.count() == 3
    campaign.refresh_from_db()
    assert campaign.runs == 1 and campaign.next_run_at is None


def test_recurring_campaign_moves_on_and_skips_missed_runs(settings):
    settings.SURVEY_FATIGUE_DAYS = 0
    StakeholderFactory()
    start = dt.datetime(2025, 11, 30, 9, 0, tzinfo=dt.UTC)
    campaign = make_campaign(
        trigger=Campaign.Trigger.RECURRING, recurrence_months=3, next_run_at=start
    )
    services.campaigns_send_due(now=NOW)  # 2026-03-02: the 2026-02-28 run was also missed
    campaign.refresh_from_db()
    assert campaign.runs == 1
    assert campaign.next_run_at == dt.datetime(2026, 5, 30, 9, 0, tzinfo=dt.UTC)
    services.campaigns_send_due(now=dt.datetime(2026, 5, 30, 9, 0, tzinfo=dt.UTC))
    assert sorted(Invitation.objects.values_list("round", flat=True)) == ["1", "2"]


def test_reminders_after_n_days_to_non_responders_once(django_capture_on_commit_callbacks):
    campaign = make_campaign(reminder_after_days=5)
    quiet = make_invitation(
        campaign, sent_at=NOW - dt.timedelta(days=6), expires_at=NOW + dt.timedelta(days=20)
    )
    answered = make_invitation(
        campaign, sent_at=NOW - dt.timedelta(days=6), expires_at=NOW + dt.timedelta(days=20)
    )
    services.response_record(invitation_id=answered.pk, score=9, now=NOW - dt.timedelta(days=1))
    recent = make_invitation(
        campaign, sent_at=NOW - dt.timedelta(days=2), expires_at=NOW + dt.timedelta(days=20)
    )
    expired = make_invitation(
        campaign, sent_at=NOW - dt.timedelta(days=9), expires_at=NOW - dt.timedelta(days=1)
    )
    gone = make_invitation(
        campaign, sent_at=NOW - dt.timedelta(days=6), expires_at=NOW + dt.timedelta(days=20)
    )
    OptOut.objects.create(email=gone.email)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.invitation_reminders_send(now=NOW) == 1
        assert services.invitation_reminders_send(now=NOW + dt.timedelta(hours=1)) == 0  # once
    assert [m.to for m in mail.outbox] == [[quiet.email]]
    assert "a reminder" in mail.outbox[0].body
    assert Message.objects.get().key == f"survey-reminder:{quiet.pk}:1"
    # the recent one is due when its 5 days are over
    with django_capture_on_commit_callbacks(execute=True):
        assert services.invitation_reminders_send(now=NOW + dt.timedelta(days=3)) == 1
    assert mail.outbox[1].to == [recent.email]
    assert set(Invitation.objects.filter(reminders_sent=1).values_list("id", flat=True)) == {
        quiet.pk,
        recent.pk,
    }
    assert expired.pk and answered.pk  # never reminded: expired, answered


def test_reminder_task_runs_the_service(django_capture_on_commit_callbacks):
    campaign = make_campaign(reminder_after_days=1)
    make_invitation(
        campaign,
        sent_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
    )
    with django_capture_on_commit_callbacks(execute=True):
        send_survey_reminders.delay()
        send_survey_reminders.delay()
    assert len(mail.outbox) == 1


def test_ticket_solved_and_renewal_start_event_campaigns(django_capture_on_commit_callbacks):
    account = AccountFactory()
    person = StakeholderFactory(account=account)
    StakeholderFactory()  # another account: not surveyed
    tickets = make_campaign(
        "csat",
        name="after tickets",
        trigger=Campaign.Trigger.EVENT,
        event=Campaign.Event.TICKET_SOLVED,
    )
    Campaign.objects.filter(pk=tickets.pk).update(events_checked_until=NOW - dt.timedelta(hours=1))
    TicketFactory(
        account=account,
        external_id="T-17",
        status="solved",
        opened_at=NOW - dt.timedelta(days=2),
        resolved_at=NOW - dt.timedelta(minutes=5),
    )
    TicketFactory(
        account=account,
        external_id="T-1",
        status="solved",
        opened_at=NOW - dt.timedelta(days=9),
        resolved_at=NOW - dt.timedelta(days=3),
    )  # before
    renewals = make_campaign(
        "nps",
        name="before renewal",
        trigger=Campaign.Trigger.EVENT,
        event=Campaign.Event.RENEWAL,
        renewal_days_before=30,
    )
    Campaign.objects.filter(pk=renewals.pk).update(events_checked_until=NOW - dt.timedelta(days=1))
    renewal_account = AccountFactory()
    renewing = StakeholderFactory(account=renewal_account)
    ContractFactory(account=renewal_account, end_date=(NOW + dt.timedelta(days=30)).date())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.event_campaigns_run(now=NOW) == {tickets.pk: 1, renewals.pk: 1}
        assert services.event_campaigns_run(now=NOW) == {tickets.pk: 0, renewals.pk: 0}
    assert set(Invitation.objects.values_list("campaign_id", "round", "stakeholder_id")) == {
        (tickets.pk, "ticket:T-17", person.pk),
        (renewals.pk, f"renewal:{(NOW + dt.timedelta(days=30)).date()}", renewing.pk),
    }
    assert len(mail.outbox) == 2


def test_campaign_start_for_account_is_the_playbooks_door(django_capture_on_commit_callbacks):
    account = AccountFactory()
    StakeholderFactory.create_batch(2, account=account)
    StakeholderFactory()  # elsewhere
    campaign = make_campaign(trigger=Campaign.Trigger.EVENT, event=Campaign.Event.PLAYBOOK)
    with django_capture_on_commit_callbacks(execute=True):
        summary = services.campaign_start_for_account(
            campaign_id=campaign.pk, account_id=account.pk, round="playbook:cta:12"
        )
        again = services.campaign_start_for_account(
            campaign_id=campaign.pk, account_id=account.pk, round="playbook:cta:12"
        )
    assert len(summary.issued) == 2 and again.already_invited == 2
    assert len(mail.outbox) == 2
    draft = make_campaign(name="draft", status=Campaign.Status.DRAFT)
    with pytest.raises(ValidationError, match="not active"):
        services.campaign_start_for_account(campaign_id=draft.pk, account_id=account.pk, round="x")


def test_survey_invitation_issue_one_person(django_capture_on_commit_callbacks):
    person = StakeholderFactory(email="Pat@Y.example")
    campaign = make_campaign()
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.survey_invitation_issue(
            campaign_id=campaign.pk, stakeholder_id=person.pk, round="playbook:1"
        )
        same = services.survey_invitation_issue(
            campaign_id=campaign.pk, stakeholder_id=person.pk, round="playbook:1"
        )
    assert invitation.pk == same.pk and invitation.email == "pat@y.example"
    assert invitation.sent_at is not None and len(mail.outbox) == 1


def test_send_due_campaigns_task(django_capture_on_commit_callbacks):
    StakeholderFactory()
    make_campaign(next_run_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with django_capture_on_commit_callbacks(execute=True):
        send_due_campaigns.delay()
        send_due_campaigns.delay()
    assert len(mail.outbox) == 1


# --- a round's emails go to the outbox together ------------------------------------------------


def _audience_of(n: int, segment: str) -> Campaign:
    """A campaign whose audience is ``n`` people of one account of ``segment``, loaded with
    its survey as the senders load it."""
    account = AccountFactory(segment=segment)
    StakeholderFactory.create_batch(n, account=account)
    campaign = make_campaign(name=segment, segments=[segment], reminder_after_days=1)
    return Campaign.objects.select_related("survey").get(pk=campaign.pk)


def test_a_round_of_3_or_30_costs_the_same_queries_and_one_delivery_task(
    django_capture_on_commit_callbacks, monkeypatch
):
    from outbox import tasks as outbox_tasks

    delivered: list[list[int]] = []  # the message ids of each delivery task

    def record(args, **kwargs):
        delivered.append(args[0] if isinstance(args[0], list) else [args[0]])

    for task in (outbox_tasks.deliver_messages, outbox_tasks.deliver_message):
        monkeypatch.setattr(task, "apply_async", record)
    cost = {}
    for n in (3, 30):
        campaign = _audience_of(n, f"seg-{n}")
        delivered.clear()
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
        ):
            summary = _send(campaign)
        assert len(summary.issued) == n
        cost[n] = (len(queries), [len(ids) for ids in delivered])
    # audience, earlier invitations, opt-outs, fatigue, insert, read back, the outbox's two,
    # and two savepoints (the round's, the outbox insert's) of two statements each
    assert cost == {3: (12, [3]), 30: (12, [30])}
    invitations = Invitation.objects.all()
    assert invitations.filter(sent_at=NOW).count() == 33
    # the same keys as one email at a time: a retried step queues nothing twice
    assert set(Message.objects.values_list("key", flat=True)) == {
        f"survey-invite:{pk}" for pk in invitations.values_list("id", flat=True)
    }
    for invitation in invitations[:2]:
        assert services.invitation_email_send(invitation_id=invitation.pk) is False
    assert Message.objects.count() == 33


def test_reminders_of_3_or_30_cost_the_same_queries_and_are_sent_once(
    django_capture_on_commit_callbacks,
):
    cost = {}
    for n in (3, 30):
        campaign = _audience_of(n, f"seg-{n}")
        _send(campaign, now=NOW - dt.timedelta(days=2))
        mail.outbox.clear()
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=False) as callbacks,
        ):
            assert services.invitation_reminders_send(now=NOW) == n
        cost[n] = (len(queries), len(callbacks))
        Campaign.objects.filter(pk=campaign.pk).update(reminder_after_days=None)
    # campaigns, locked read, one UPDATE, outbox (2), + savepoints; one delivery task each
    assert cost[3] == cost[30] and cost[3][1] == 1
    assert services.invitation_reminders_send(now=NOW) == 0
    Campaign.objects.update(reminder_after_days=1)
    assert services.invitation_reminders_send(now=NOW + dt.timedelta(hours=1)) == 0  # once
    assert Message.objects.filter(key__startswith="survey-reminder:").count() == 33
    assert set(
        Message.objects.filter(key__startswith="survey-reminder:").values_list("key", flat=True)
    ) == {f"survey-reminder:{pk}:1" for pk in Invitation.objects.values_list("id", flat=True)}


def test_every_surveys_task_is_run_by_beat():
    """No task without a caller: a playbook's survey step has its own task in playbooks."""
    from config.celery import app

    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith("surveys.tasks.")}
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert ours == {
        "surveys.tasks.send_due_campaigns",
        "surveys.tasks.send_survey_reminders",
        "surveys.tasks.announce_answers",
    }
    assert ours <= scheduled
