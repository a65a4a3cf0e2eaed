"""A playbook step that sends a survey: the editor offers the campaigns a step may start
(active, started by "A playbook step") and refuses any other by step number; a CTA opened by
the engine starts the campaign for its account once, on a worker after commit, and the step
shows done with a comment saying what was sent (or why nothing was)."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import Stakeholder, TimelineEntry
from playbooks import rules, selectors, services, tasks
from playbooks.models import Cta, CtaComment, CtaStep, Playbook
from surveys.models import Campaign, Invitation
from tests.factories import AccountFactory, StakeholderFactory, TicketFactory
from tests.surveys.conftest import make_campaign

from .helpers import at, make_playbook

DAYS = dt.timedelta


def step_campaign(name: str = "Onboarding CSAT", **fields) -> Campaign:
    """A campaign a playbook step may start (fields change that)."""
    return make_campaign(
        "csat",
        name=name,
        **{"trigger": Campaign.Trigger.EVENT, "event": Campaign.Event.PLAYBOOK, **fields},
    )


# --- rules: pure ------------------------------------------------------------------------------


def test_a_step_may_name_a_campaign_by_id_and_says_so_in_words():
    clean, errors = rules.clean_steps(
        [
            {"title": "Ask how it went", "due_days": 0, "survey_campaign": "7"},
            {"title": "Call", "due_days": 2, "survey_campaign": None},
            {"title": "Review", "due_days": 3, "survey_campaign": "seven"},
        ]
    )
    assert errors == ["step 3: the survey campaign 'seven' is not a campaign id"]
    assert clean[:2] == [
        {"title": "Ask how it went", "due_days": 0, "survey_campaign": 7},
        {"title": "Call", "due_days": 2},
    ]
    assert rules.step_survey_words(clean[:2], {7: "Onboarding CSAT"}) == [
        "step 1 sends survey 'Onboarding CSAT'"
    ]
    assert rules.step_survey_words(clean[:1], {}) == ["step 1 sends survey campaign 7"]
    assert rules.step_campaigns(clean + [{"title": "x", "survey_campaign": 7}]) == [7]


# --- the editor -------------------------------------------------------------------------------


def _errors(page: str) -> dict[str, list[str]]:
    return {
        name: [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", items)]
        for name, items in re.findall(
            r'<ul class="field-error" id="id_(\w+)_error">(.*?)</ul>', page, re.S
        )
    }


@pytest.mark.django_db
def test_the_editor_offers_only_startable_campaigns_and_refuses_others_by_step(client, admin_user):
    good = step_campaign()
    one_off = make_campaign("nps", name="Yearly NPS")  # active, but on its own schedule
    draft = step_campaign("Draft CSAT", status=Campaign.Status.DRAFT)
    client.force_login(admin_user)
    page = client.get(reverse("playbooks:create")).content.decode()
    assert f'<option value="{good.pk}">Onboarding CSAT</option>' in page
    assert "Yearly NPS" not in page and "Draft CSAT" not in page
    form = {
        "name": "Onboarding check", "trigger": "ticket_escalated", "trigger_params": "",
        "cta_title": "Check in", "cta_type": "lifecycle", "priority": "medium",
        "steps": "0 | Ask how onboarding went\n2 | Call\n5 | Review",
        "step_survey_1": str(one_off.pk), "step_survey_2": str(draft.pk),
        "step_survey_5": str(good.pk), "owner_rule": "account_csm", "success": "touched",
        "success_params": "", "success_days": "30", "cooldown_days": "30", "enabled": "on",
    }  # fmt: skip
    r = client.post(reverse("playbooks:create"), form)
    assert r.status_code == 200 and not Playbook.objects.exists()
    errors = _errors(r.content.decode())
    assert errors["steps"] == [
        f"step 1: campaign {one_off.pk} is not an active survey campaign started by a "
        "playbook step",
        f"step 2: campaign {draft.pk} is not an active survey campaign started by a playbook step",
    ]
    assert errors["step_survey_5"] == ["there is no step 5: add it to the steps first"]

    good_form = {**form, "step_survey_1": str(good.pk), "step_survey_2": "", "step_survey_5": ""}
    r = client.post(reverse("playbooks:create"), good_form)
    assert r.status_code == 302
    playbook = Playbook.objects.get()
    assert playbook.steps == [
        {"title": "Ask how onboarding went", "due_days": 0, "survey_campaign": good.pk},
        {"title": "Call", "due_days": 2},
        {"title": "Review", "due_days": 5},
    ]
    page = client.get(reverse("playbooks:edit", args=[playbook.pk])).content.decode()
    assert f'<option value="{good.pk}" selected>Onboarding CSAT</option>' in page
    listed = html.unescape(client.get(reverse("playbooks:list")).content.decode())
    assert "Step 1 sends survey 'Onboarding CSAT'" in listed

    # the campaign closes: an unrelated edit still saves, and the editor says it sends nothing
    Campaign.objects.filter(pk=good.pk).update(status=Campaign.Status.CLOSED)
    page = client.get(reverse("playbooks:edit", args=[playbook.pk])).content.decode()
    assert "Onboarding CSAT (not active or not started by a playbook step: sends nothing)" in (
        html.unescape(page)
    )
    r = client.post(reverse("playbooks:edit", args=[playbook.pk]), {**good_form, "name": "Renamed"})
    assert r.status_code == 302
    playbook.refresh_from_db()
    assert playbook.name == "Renamed" and playbook.steps[0]["survey_campaign"] == good.pk


@pytest.mark.django_db
def test_a_step_inserted_above_in_the_same_save_does_not_take_the_survey(client, admin_user):
    """The survey choices go by step number under a text box: a line inserted above step 1
    in the same save would hand step 1's survey to the new line. The page posts the title
    each choice was shown beside, and a changed one is refused until seen."""
    good = step_campaign()
    playbook = make_playbook(
        "ticket_escalated",
        steps=[{"title": "Ask how onboarding went", "due_days": 0, "survey_campaign": good.pk}],
    )
    client.force_login(admin_user)
    page = client.get(reverse("playbooks:edit", args=[playbook.pk])).content.decode()
    assert 'name="step_title_1" value="Ask how onboarding went"' in page
    form = {
        "name": playbook.name, "trigger": "ticket_escalated", "trigger_params": "",
        "cta_title": "Check in", "cta_type": "lifecycle", "priority": "medium",
        "steps": "0 | Call first\n1 | Ask how onboarding went",
        "step_survey_1": str(good.pk), "step_title_1": "Ask how onboarding went",
        "step_title_2": "", "owner_rule": "account_csm", "success": "touched",
        "success_params": "", "success_days": "30", "cooldown_days": "30", "enabled": "on",
    }  # fmt: skip
    r = client.post(reverse("playbooks:edit", args=[playbook.pk]), form)
    assert r.status_code == 200
    assert _errors(r.content.decode())["step_survey_1"] == [
        "step 1 is now “Call first”, it was “Ask how onboarding went” when this page was "
        "shown: check that this survey belongs to it, then save again"
    ]
    # shown again beside the steps as they are now: moving the choice to step 2 saves
    assert 'name="step_title_1" value="Call first"' in r.content.decode()
    moved = {**form, "step_survey_1": "", "step_survey_2": str(good.pk),
             "step_title_1": "Call first", "step_title_2": "Ask how onboarding went"}  # fmt: skip
    assert client.post(reverse("playbooks:edit", args=[playbook.pk]), moved).status_code == 302
    playbook.refresh_from_db()
    assert [s.get("survey_campaign") for s in playbook.steps] == [None, good.pk]


@pytest.mark.django_db
def test_the_services_refuse_a_campaign_a_step_may_not_start():
    other = make_campaign("nps", name="Yearly NPS")
    with pytest.raises(ValidationError) as info:
        make_playbook(
            "ticket_escalated",
            steps=[{"title": "Call", "due_days": 0}, {"title": "Ask", "survey_campaign": other.pk}],
        )
    assert info.value.message_dict["steps"] == [
        f"step 2: campaign {other.pk} is not an active survey campaign started by a playbook step"
    ]
    missing = other.pk + 1000
    assert services.playbook_config_errors(
        config={"steps": [{"title": "Ask", "survey_campaign": missing}]}
    )["steps"] == [
        f"step 1: campaign {missing} is not an active survey campaign started by a playbook step"
    ]


# --- the engine -------------------------------------------------------------------------------


@pytest.fixture
def surveyed(db, csm):
    """An account with an escalated ticket, its champion (in the campaign's audience) and a
    billing contact (not), and a playbook whose first step sends the campaign."""
    campaign = step_campaign(roles=[Stakeholder.Role.CHAMPION])
    account = AccountFactory(owner=csm, name="Acme")
    champion = StakeholderFactory(
        account=account, role=Stakeholder.Role.CHAMPION, email="Champ@Acme.example"
    )
    StakeholderFactory(account=account, role=Stakeholder.Role.BILLING)
    playbook = make_playbook(
        "ticket_escalated",
        steps=[
            {"title": "Ask how support went", "due_days": 0, "survey_campaign": campaign.pk},
            {"title": "Call", "due_days": 2},
        ],
    )
    return campaign, account, champion, playbook


@pytest.mark.django_db
def test_a_cta_opened_by_the_night_sends_the_survey_once(
    client, csm, surveyed, day, celery_eager, django_capture_on_commit_callbacks
):
    campaign, account, champion, playbook = surveyed
    TicketFactory(account=account, opened_at=at(day - DAYS(1)), escalated=True)
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.playbooks_evaluate_all(as_of=day)
    assert counts["opened"] == 1
    cta = Cta.objects.get(playbook=playbook, account=account)
    invitation = Invitation.objects.get()
    assert (invitation.campaign, invitation.stakeholder, invitation.round) == (
        campaign,
        champion,
        f"playbook:cta:{cta.pk}",
    )
    assert [m.to for m in mail.outbox] == [["champ@acme.example"]]
    first, second = cta.steps.order_by("position")
    assert first.title == "Ask how support went (sends survey 'Onboarding CSAT')"
    assert first.done_at is not None and first.done_by is None and second.done_at is None
    assert list(cta.comments.values_list("body", flat=True)) == [
        "Step 1 done automatically: survey 'Onboarding CSAT' sent to 1 person."
    ]
    # on the timeline as done automatically: not a CSM's follow-up of an unhappy answer
    # (settings.SURVEY_FOLLOW_UP_FACT_KINDS)
    kinds = set(TimelineEntry.objects.filter(account=account).values_list("kind", flat=True))
    assert "cta_step_automatic" in kinds and "cta_step_done" not in kinds

    # the night again (the CTA is open: nothing new), and the task run twice
    with django_capture_on_commit_callbacks(execute=True):
        services.playbooks_evaluate_all(as_of=day)
        tasks.start_step_surveys.delay([[first.pk, campaign.pk]])
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1
    assert cta.comments.count() == 1
    # even a step un-ticked and started again surveys nobody twice for this CTA
    CtaStep.objects.filter(pk=first.pk).update(done_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        note = services.cta_step_survey_start(step_id=first.pk, campaign_id=campaign.pk)
    assert note == (
        "Step 1 done automatically: survey 'Onboarding CSAT' sent to nobody; "
        "1 left out: 1 already invited in this round."
    )
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1

    client.force_login(csm)
    page = html.unescape(
        client.get(reverse("playbooks:cta-detail", args=[cta.pk])).content.decode()
    )
    assert "<s>Ask how support went (sends survey 'Onboarding CSAT')</s>" in page
    assert "survey 'Onboarding CSAT' sent to 1 person." in page


@pytest.mark.django_db
def test_a_closed_campaign_sends_nothing_and_the_cta_says_so(
    surveyed, celery_eager, django_capture_on_commit_callbacks
):
    campaign, account, _, playbook = surveyed
    with django_capture_on_commit_callbacks() as callbacks:
        cta = services.cta_open(playbook=playbook, account=account, evidence="by hand")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
        tasks.start_step_surveys.delay([[cta.steps.get(position=1).pk, campaign.pk]])  # again
    assert not Invitation.objects.exists() and not mail.outbox
    assert not cta.steps.filter(done_at__isnull=False).exists()
    assert list(CtaComment.objects.filter(cta=cta).values_list("body", flat=True)) == [
        "Survey 'Onboarding CSAT' was not sent: the campaign is closed."
    ]


@pytest.mark.django_db
def test_a_campaign_past_its_closing_time_sends_nothing_and_the_cta_says_so(
    surveyed, celery_eager, django_capture_on_commit_callbacks
):
    """Still "active", but its closing time has come: its links would expire at once."""
    campaign, account, _, playbook = surveyed
    closed_at = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)
    Campaign.objects.filter(pk=campaign.pk).update(closes_at=closed_at)
    assert campaign.pk not in {c.pk for c in selectors.step_survey_campaigns()}
    with django_capture_on_commit_callbacks(execute=True):
        cta = services.cta_open(playbook=playbook, account=account, evidence="by hand")
    assert not Invitation.objects.exists() and not mail.outbox
    assert list(CtaComment.objects.filter(cta=cta).values_list("body", flat=True)) == [
        "Survey 'Onboarding CSAT' was not sent: the campaign is closed since 5 Jan 2026 09:30 UTC."
    ]


@pytest.mark.django_db
def test_ctas_of_playbooks_without_survey_steps_send_no_task(
    csm, day, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        tasks.start_step_surveys, "apply_async", lambda args, **kw: sent.append(args)
    )
    plain = make_playbook("ticket_escalated")
    campaign = step_campaign()
    surveying = make_playbook(
        "ticket_escalated", steps=[{"title": "Ask", "due_days": 0, "survey_campaign": campaign.pk}]
    )
    for _ in range(3):
        TicketFactory(
            account=AccountFactory(owner=csm), opened_at=at(day - DAYS(1)), escalated=True
        )
    with django_capture_on_commit_callbacks(execute=True):
        Playbook.objects.filter(pk=surveying.pk).update(enabled=False)
        assert services.playbooks_evaluate_all(as_of=day)["opened"] == 3
    assert sent == []  # three CTAs, no survey step: no task
    Playbook.objects.filter(pk=plain.pk).update(enabled=False)
    Playbook.objects.filter(pk=surveying.pk).update(enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.playbooks_evaluate_all(as_of=day)["opened"] == 3
    steps = CtaStep.objects.filter(cta__playbook=surveying).order_by("pk")
    assert sent == [([[s.pk, campaign.pk] for s in steps],)]  # one task for the batch


def test_one_failing_survey_step_leaves_the_others_to_run(monkeypatch, caplog):
    """A step that fails for its own reasons is logged; the task goes on with the rest."""
    ran = []

    def start(*, step_id, campaign_id):
        ran.append(step_id)
        if step_id == 1:
            raise ValueError("the mail refused an address")
        return "sent"

    monkeypatch.setattr(services, "cta_step_survey_start", start)
    tasks.start_step_surveys([[1, 7], [2, 7]])
    assert ran == [1, 2]
    assert "step 1: survey 7 not started" in caplog.text
    assert "1 of 2 survey steps failed" in caplog.text
