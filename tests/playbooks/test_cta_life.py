"""The life of a CTA: steps, snooze, reassignment, close, comments, escalation of overdue
CTAs, outcomes, effectiveness figures, versions; everything lands on the timeline."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import TimelineEntry
from playbooks import selectors, services
from playbooks.models import Cta, CtaStatus, Notification, Outcome, PlaybookVersion
from tests.factories import AccountFactory, UserFactory

from .helpers import activity, at, make_playbook, snapshot

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


@pytest.fixture
def cta(csm, day):
    account = AccountFactory(owner=csm)
    playbook = make_playbook("ticket_escalated", priority="medium")
    return services.cta_open(playbook=playbook, account=account, evidence="1 open escalation")


def _timeline(cta):
    return list(
        TimelineEntry.objects.filter(account=cta.account, key__startswith=f"cta:{cta.pk}:")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def test_steps_snooze_reassign_comment_and_close_land_on_the_timeline(cta, csm, manager):
    assert cta.status == CtaStatus.OPEN
    # due with its last step (7 days after the opening day), by the end of that day
    opened = cta.opened_at.astimezone(dt.UTC).date()
    last_step = dt.datetime.combine(opened + DAYS(8), dt.time(), tzinfo=dt.UTC)
    assert cta.due_at == last_step
    first = cta.steps.get(position=1)
    services.cta_step_complete(cta=cta, step=first, user=csm)
    services.cta_step_complete(cta=cta, step=first, user=csm)  # twice: once
    cta.refresh_from_db()
    assert (
        cta.status == CtaStatus.IN_PROGRESS and cta.steps.filter(done_at__isnull=False).count() == 1
    )

    until = timezone.now().date() + DAYS(3)
    services.cta_snooze(cta=cta, until=until, user=csm)
    cta.refresh_from_db()
    assert cta.snoozed_until == until
    # due 48 h after the snooze ends (medium) would be sooner than its last step: it stays
    assert cta.due_at == last_step
    later = timezone.now().date() + DAYS(10)
    services.cta_snooze(cta=cta, until=later, user=csm)
    cta.refresh_from_db()
    assert cta.due_at == dt.datetime.combine(later, dt.time(), tzinfo=dt.UTC) + DAYS(hours=48)
    with pytest.raises(ValidationError) as info:
        services.cta_snooze(cta=cta, until=timezone.now().date(), user=csm)
    assert "snoozed_until" in info.value.message_dict

    services.cta_reassign(cta=cta, owner=manager, user=csm)
    outsider = UserFactory()
    with pytest.raises(ValidationError) as info:
        services.cta_reassign(cta=cta, owner=outsider, user=csm)
    assert "cannot see this account" in info.value.message_dict["owner"][0]
    services.cta_comment_add(cta=cta, body="Spoke to Dana", user=csm)
    services.cta_close(cta=cta, status=CtaStatus.DONE, note="plan agreed", user=manager)
    cta.refresh_from_db()
    assert cta.status == CtaStatus.DONE and cta.closed_at and cta.owner == manager
    with pytest.raises(ValidationError):
        services.cta_close(cta=cta, status=CtaStatus.CANCELLED)
    assert _timeline(cta) == [
        "cta_opened", "cta_step_done", "cta_snoozed", "cta_reassigned", "cta_comment", "cta_closed",
    ]  # fmt: skip


def test_the_queue_standing_follows_the_ctas_of_its_account(
    cta, csm, django_capture_on_commit_callbacks
):
    """Opening, snoozing and closing a CTA rebuild its account's standing (the queue's CTA
    counts and priority) once the write commits, not at the next night."""
    from metrics.models import AccountStanding
    from metrics.standings import account_standings_refresh

    def counts():
        s = AccountStanding.objects.get(account=cta.account)
        return s.open_ctas, s.overdue_ctas

    # the fixture opened the CTA outside a captured commit: as the night before left it
    AccountStanding.objects.filter(account=cta.account).delete()
    account_standings_refresh(account_ids=[cta.account_id])
    assert counts() == (1, 0)
    Cta.objects.filter(pk=cta.pk).update(due_at=timezone.now() - DAYS(days=1))
    account_standings_refresh(account_ids=[cta.account_id])
    assert counts() == (1, 1)  # overdue since yesterday

    with django_capture_on_commit_callbacks(execute=True):
        services.cta_snooze(cta=cta, until=timezone.now().date() + DAYS(3), user=csm)
    assert counts() == (1, 0)  # due again after the snooze
    with django_capture_on_commit_callbacks(execute=True):
        services.cta_close(cta=cta, status=CtaStatus.DONE, user=csm)
    assert counts() == (0, 0)
    with django_capture_on_commit_callbacks(execute=True):
        again = services.cta_open(
            playbook=cta.playbook, account=cta.account, evidence="1 open escalation"
        )
    assert again is not None and counts() == (1, 0)


def test_a_cta_is_due_with_its_last_step_and_one_without_steps_by_urgency(settings, csm):
    """The one rule of a CTA's due date: by the end of its last step's day, whatever its
    priority; a CTA without steps is due by its urgency (``PLAYBOOK_DUE_HOURS``)."""
    account = AccountFactory(owner=csm)
    steps = [{"title": "Call", "due_days": 0}, {"title": "Plan", "due_days": 3}]
    due, bare = {}, {}
    for priority in ("high", "medium", "low"):
        cta = services.cta_open(
            playbook=make_playbook("ticket_escalated", priority=priority, steps=steps),
            account=account,
            evidence="x",
        )
        opened = cta.opened_at.astimezone(dt.UTC).date()
        last = cta.steps.order_by("position").last().due_on
        assert last == opened + DAYS(3)
        due[priority] = cta.due_at
        assert cta.due_at == dt.datetime.combine(last + DAYS(1), dt.time(), tzinfo=dt.UTC)
        none = make_playbook("ticket_escalated", priority=priority, steps=steps)
        none.steps = []  # no steps (a playbook saved before steps were required)
        none.save(update_fields=["steps"])
        cta = services.cta_open(playbook=none, account=account, evidence="x")
        bare[priority] = cta.due_at - cta.opened_at
        if priority == "high":  # red: by the end of the same (UTC) day
            tomorrow = cta.opened_at.astimezone(dt.UTC).date() + DAYS(1)
            assert cta.due_at == dt.datetime.combine(tomorrow, dt.time(), tzinfo=dt.UTC)
    assert len(set(due.values())) == 1
    assert bare["medium"] == DAYS(hours=48) and bare["low"] == DAYS(days=7)


def test_overdue_ctas_escalate_once_to_the_owners_manager(
    cta, manager, celery_eager, django_capture_on_commit_callbacks, mailoutbox, settings
):
    settings.SITE_URL = "https://cs.example.com/"
    Cta.objects.filter(pk=cta.pk).update(due_at=timezone.now() - DAYS(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 0  # a second sweep: nothing more
    cta.refresh_from_db()
    assert cta.escalated_at and cta.escalated_to == manager
    note = Notification.objects.get()
    assert note.user == manager and cta.title in note.text and note.link == f"/ctas/{cta.pk}/"
    assert [m.to for m in mailoutbox] == [[manager.email]]
    assert mailoutbox[0].subject == f"Escalated: {cta.title} ({cta.account.name})"
    assert f"https://cs.example.com/ctas/{cta.pk}/" in mailoutbox[0].body  # SITE_URL's link
    assert "cta_escalated" in _timeline(cta)


def test_a_manager_hears_once_about_many_escalated_ctas(
    manager, csm, celery_eager, django_capture_on_commit_callbacks, mailoutbox, client, settings
):
    """Three overdue CTAs of a manager's team and one of a CSM without a manager: each CTA is
    flagged with its timeline fact, but the manager gets one notification and one email that
    lists all three (not three of each), and the link opens the CTAs escalated to them."""
    settings.SITE_URL = "https://cs.example.com"
    alone = UserFactory(email="solo@example.com", manager=None)
    playbook = make_playbook("ticket_escalated", priority="medium")
    team = [
        services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence=f"e{i}")
        for i in range(3)
    ]
    other = services.cta_open(
        playbook=playbook, account=AccountFactory(owner=alone), evidence="solo"
    )
    Cta.objects.update(due_at=timezone.now() - DAYS(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 4
    assert [c.escalated_to for c in Cta.objects.order_by("pk")] == [manager] * 3 + [None]
    for cta in (*team, other):
        assert "cta_escalated" in _timeline(cta)
    note = Notification.objects.get()
    assert (note.user, note.link) == (manager, "/ctas/?status=active&escalated=me")
    assert note.text.startswith("3 overdue CTAs escalated to you, the first: ")
    (mail,) = mailoutbox
    assert (mail.to, mail.subject) == ([manager.email], "Escalated: 3 overdue CTAs")
    for cta in team:
        assert f"https://cs.example.com/ctas/{cta.pk}/" in mail.body
    assert "solo" not in mail.body
    assert "https://cs.example.com/ctas/?status=active&escalated=me" in mail.body

    client.force_login(manager)
    page = client.get(note.link).content.decode()
    assert "CTAs escalated to you" in page
    assert all(f'id="cta-{c.pk}"' in page for c in team)
    assert f'id="cta-{other.pk}"' not in page


def test_a_long_escalation_email_lists_the_first_ctas_and_counts_the_rest(
    manager, csm, celery_eager, django_capture_on_commit_callbacks, mailoutbox, monkeypatch
):
    monkeypatch.setattr(services, "ESCALATION_MAIL_LINES", 2)
    playbook = make_playbook("ticket_escalated", priority="medium")
    ctas = [
        services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")
        for _ in range(3)
    ]
    Cta.objects.update(due_at=timezone.now() - DAYS(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 3
    (mail,) = mailoutbox
    assert mail.subject == "Escalated: 3 overdue CTAs"
    # 3 escalated, 2 listed: the third is counted, behind the link to them all
    assert [f"/ctas/{c.pk}/" in mail.body for c in ctas] == [True, True, False]
    assert "… and 1 more." in mail.body and "escalated=me" in mail.body


def test_an_account_name_with_a_line_break_makes_a_one_line_subject(
    cta, manager, celery_eager, django_capture_on_commit_callbacks, mailoutbox
):
    """An imported name may hold a line break; an email subject may not: without the
    flattening the message is refused and the whole batch of escalations with it."""
    type(cta.account).objects.filter(pk=cta.account_id).update(name="Acme\nCorp")
    Cta.objects.filter(pk=cta.pk).update(due_at=timezone.now() - DAYS(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.ctas_escalate_overdue() == 1
    assert [m.subject for m in mailoutbox] == [f"Escalated: {cta.title} (Acme Corp)"]


def test_a_snoozed_cta_does_not_escalate(cta):
    services.cta_snooze(cta=cta, until=timezone.now().date() + DAYS(2))
    Cta.objects.filter(pk=cta.pk).update(due_at=timezone.now() - DAYS(hours=1))
    assert services.ctas_escalate_overdue() == 0


def test_outcomes_success_closes_and_deadline_fails(day, csm):
    playbook = make_playbook("ticket_escalated", success="touched", success_days=7)
    won, lost = AccountFactory(owner=csm), AccountFactory(owner=csm)
    a = services.cta_open(playbook=playbook, account=won, evidence="x", as_of=day - DAYS(3))
    b = services.cta_open(playbook=playbook, account=lost, evidence="x", as_of=day - DAYS(9))
    activity(won, at(day - DAYS(1)))  # a CSM touch after opening: success
    activity(lost, at(day - DAYS(20)))  # before opening: does not count
    result = services.playbooks_evaluate_all(as_of=day)
    assert (result["successes"], result["failures"]) == (1, 1)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.outcome == Outcome.SUCCESS and a.status == CtaStatus.DONE
    assert a.outcome_detail == f"CSM activity logged on {day - DAYS(1):%-d %b %Y}"
    # deadline: opened day - 9 + 7 days = day - 2, passed
    assert b.outcome == Outcome.FAILURE and b.status == CtaStatus.OPEN
    assert b.outcome_detail == f"success condition not met by {day - DAYS(2):%-d %b %Y}"
    assert services.playbooks_evaluate_all(as_of=day)["successes"] == 0  # recorded once


def test_effectiveness_figures_by_hand(day, csm):
    playbook = make_playbook("ticket_escalated")
    accounts = [AccountFactory(owner=csm) for _ in range(4)]
    opened_on = day - DAYS(40)
    ctas = [
        services.cta_open(playbook=playbook, account=a, evidence="x", as_of=opened_on)
        for a in accounts
    ]
    t0 = timezone.now() - DAYS(days=40)
    # closed after 2 h, 4 h and 10 h; the 4th stays open
    for cta, hours, outcome in zip(
        ctas[:3], (2, 4, 10), (Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE), strict=True
    ):
        Cta.objects.filter(pk=cta.pk).update(
            status=CtaStatus.DONE, opened_at=t0, closed_at=t0 + DAYS(hours=hours), outcome=outcome
        )
    # health at open 40 and 50, 30 days later 70 and 80 (the other two have no snapshot)
    for cta, at_open, later in ((ctas[0], 40, 70), (ctas[1], 50, 80)):
        Cta.objects.filter(pk=cta.pk).update(health_at_open=at_open)
        snapshot(cta.account, opened_on + DAYS(30), score=later, band="green")
    stats = selectors.playbook_effectiveness([playbook.pk])[playbook.pk]
    assert stats["opened"] == 4 and stats["closed"] == 3 and stats["open"] == 1
    assert stats["success_rate"] == 66.7  # 2 of 3 outcomes
    assert stats["median_hours_to_close"] == 4.0  # median of 2, 4, 10
    assert (stats["health_at_open"], stats["health_after_30d"]) == (45.0, 75.0)
    assert stats["health_compared"] == 2


def test_playbook_versions_and_field_errors(admin_user):
    playbook = make_playbook("no_activity", {"days": 30})
    assert playbook.version == 1 and playbook.versions.count() == 1
    updated = services.playbook_update(
        playbook=playbook, config={"trigger_params": {"days": 45}}, updated_by=admin_user
    )
    assert updated.version == 2 and updated.trigger_params == {"days": 45}
    v1 = PlaybookVersion.objects.get(playbook=playbook, version=1)
    assert v1.config["trigger_params"] == {"days": 30}
    same = services.playbook_update(playbook=updated, config={"trigger_params": {"days": 45}})
    assert same.version == 2  # no change, no version
    with pytest.raises(ValidationError) as info:
        services.playbook_update(
            playbook=updated,
            config={"trigger_params": {"days": -3, "weeks": 2}, "steps": [{"title": ""}]},
        )
    errors = info.value.message_dict
    assert any("unknown parameter 'weeks'" in e for e in errors["trigger_params"])
    assert any("must not be negative, got -3" in e for e in errors["trigger_params"])
    assert errors["steps"] == ["step 1: a title is required"]
    updated.refresh_from_db()
    assert updated.version == 2 and updated.trigger_params == {"days": 45}  # nothing written


def test_starters_load_once_and_stay_editable():
    from playbooks.starters import STARTERS

    created = services.starter_playbooks_load()
    assert {p.starter for p in created} == set(STARTERS)
    assert services.starter_playbooks_load() == []  # idempotent
    onboarding = next(p for p in created if p.starter == "onboarding")
    services.playbook_update(playbook=onboarding, config={"name": "Our onboarding"})
    assert services.starter_playbooks_load() == []


def test_the_data_migration_loads_the_starters():
    import importlib

    from django.apps import apps

    from playbooks.models import Playbook

    migration = importlib.import_module("playbooks.migrations.0002_starter_playbooks")
    migration.load(apps, None)
    migration.load(apps, None)
    assert Playbook.objects.count() == 6 and PlaybookVersion.objects.count() == 6


def _due_days(cta) -> list[int]:
    """Each step's due day as days after the CTA's opening day (UTC)."""
    opened = cta.opened_at.astimezone(dt.UTC).date()
    return [(s.due_on - opened).days for s in cta.steps.order_by("position")]


def test_steps_are_due_from_the_day_the_cta_opens_and_renewals_back_from_the_end(csm, day):
    """The night's run opens CTAs the day after the data day (``day``): a step due "0 days"
    after opening is due that day, not the data day. A renewal playbook's steps are days
    into its window (90 days before the contract end): due that many days after the window
    opened, never before the CTA opens nor after the contract's last day; the CTA is due
    with its last step."""
    from tests.factories import ContractFactory, TicketFactory

    escalated, renewing = AccountFactory(owner=csm), AccountFactory(owner=csm)
    early = AccountFactory(owner=csm)
    TicketFactory(account=escalated, opened_at=at(day - DAYS(1)), escalated=True)
    ContractFactory(account=renewing, start_date=day - DAYS(300), end_date=day + DAYS(37))
    ContractFactory(account=early, start_date=day - DAYS(300), end_date=day + DAYS(80))
    risk = make_playbook("ticket_escalated", priority="medium")
    renewal = make_playbook(
        "renewal_within",
        {"days": 90},
        priority="medium",
        steps=[
            {"title": "Review health", "due_days": 7},
            {"title": "Renewal call", "due_days": 30},
            {"title": "Send the renewal proposal", "due_days": 45},
        ],
    )
    services.playbooks_evaluate(as_of=day, playbooks=[risk, renewal])
    first = Cta.objects.get(playbook=risk)
    opened = first.opened_at.astimezone(dt.UTC).date()
    assert first.opened_on == day and opened == day + DAYS(1)  # the data day, then today
    assert _due_days(first) == [0, 7]  # the helper's steps: 0 and 7 days after opening
    assert first.steps.order_by("position").first().due_on == opened  # not the data day

    def ends_on(cta):  # the end of its last step's day
        last = cta.steps.order_by("position").last().due_on
        return dt.datetime.combine(last + DAYS(1), dt.time(), tzinfo=dt.UTC)

    assert first.due_at == ends_on(first)
    late = Cta.objects.get(playbook=renewal, account=renewing)
    # the contract ends day + 37 = opening day + 36: the window opened 53 days before the
    # CTA, so its steps (window days 7, 30, 45 = end - 83, - 60, - 45) are all late: today
    assert _due_days(late) == [0, 0, 0]
    assert late.due_at == ends_on(late) and late.due_at.date() == opened + DAYS(1)
    second = Cta.objects.get(playbook=renewal, account=early)
    # ends day + 80 = opening day + 79: end - 83 is past (today), end - 60 = opening + 19,
    # end - 45 = opening + 34
    assert _due_days(second) == [0, 19, 34]
    assert second.due_at == ends_on(second)
    assert second.due_at.date() < day + DAYS(80)


def test_a_renewal_step_is_never_due_before_the_cta_opens(csm, day):
    """A contract whose last day is the data day: the CTA opens the day after, and its
    steps are due on the opening day (the cap can not move a step before it)."""
    from tests.factories import ContractFactory

    account = AccountFactory(owner=csm)
    ContractFactory(account=account, start_date=day - DAYS(300), end_date=day)
    renewal = make_playbook("renewal_within", {"days": 90}, priority="medium")
    services.playbooks_evaluate(as_of=day, playbooks=[renewal])
    cta = Cta.objects.get(playbook=renewal)
    assert cta.evidence_data["renewal_on"] == day.isoformat()
    assert _due_days(cta) == [0, 0]  # 0 and 7 days, both capped to the end, then to opening
