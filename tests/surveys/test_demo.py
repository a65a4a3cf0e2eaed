"""seed_demo's survey answers: three past campaigns, answers recorded by the public page's
service (one timeline fact each), scores that follow the account's fate, the same for the
same seed, and the dashboard's NPS/CSAT/CES figures have data."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from accounts import demo as accounts_demo
from accounts.models import Account, Stakeholder, TimelineEntry
from surveys import selectors
from surveys.models import Campaign, Invitation, Response

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 6, 30)
ARGS = ["--accounts", "40", "--days", "60", "--seed", "3", "--today", TODAY.isoformat()]
ARGS += ["--events-per-day-scale", "0.05"]


def _seed(*extra: str) -> str:
    out = StringIO()
    call_command("seed_demo", *ARGS, *extra, stdout=out)
    return out.getvalue()


def _answers() -> list[tuple]:
    return list(
        Response.objects.order_by("stakeholder__external_id").values_list(
            "stakeholder__external_id", "kind", "score", "comment", "answered_at"
        )
    )


def test_seed_demo_records_answers_for_every_kind_through_the_service():
    out = _seed()

    campaigns = Campaign.objects.order_by("id")
    assert [c.survey.kind for c in campaigns] == ["nps", "csat", "ces"]
    assert {c.status for c in campaigns} == {"closed"}  # answered while open, closed since
    invitations = Invitation.objects.count()
    answers = Response.objects.count()
    assert f"{invitations:,} survey invitations, {answers:,} answers" in out
    assert 0.25 * invitations < answers < 0.55 * invitations  # ~40 % answer
    # one survey per person (the fatigue rule), one answer per invitation
    assert not Invitation.objects.values("email").annotate(n=Count("id")).filter(n__gt=1)
    assert Response.objects.filter(is_current=True).count() == answers
    # each answer has its timeline fact and its invitation's first-answer time
    facts = TimelineEntry.objects.filter(kind="survey_answer")
    assert sorted(f.data["response_id"] for f in facts) == sorted(
        Response.objects.values_list("id", flat=True)
    )
    assert not Invitation.objects.filter(responses__isnull=False, responded_at__isnull=True)
    # answered in the trailing month: the dashboard's tiles have figures for every kind
    start = TODAY - dt.timedelta(days=30)
    figures = selectors.voice_of_customer(
        Account.objects.all(), start=start, end=TODAY + dt.timedelta(days=1)
    )["kinds"]
    assert all(figures[kind].responses > 0 for kind in ("nps", "csat", "ces"))
    assert all(figures[kind].value is not None for kind in ("nps", "csat", "ces"))
    # some people are left unsurveyed: a campaign made to try the product reaches someone
    # inside the fatigue window (the shares add up to 85 %)
    people = Stakeholder.objects.exclude(email="").count()
    assert 0.05 * people < people - invitations < 0.3 * people


def test_scores_follow_the_accounts_fate():
    _seed()
    cfg = accounts_demo.DemoConfig(accounts=40, days=60, seed=3, today=TODAY)
    fates = {
        accounts_demo.account_external_id(i): accounts_demo.plan_account(cfg, i).fate
        for i in range(1, 41)
    }
    nps = Response.objects.filter(kind="nps").values_list("account__external_id", "score")
    troubled = [s for a, s in nps if fates[a] in ("at_risk", "churned")]
    fine = [s for a, s in nps if fates[a] not in ("at_risk", "churned")]
    assert troubled and fine
    assert sum(fine) / len(fine) > sum(troubled) / len(troubled) + 1.5


def test_same_seed_gives_the_same_answers_and_a_rerun_adds_none():
    _seed()
    first = _answers()
    assert first
    _seed()  # the book and its answers exist: nothing new
    assert _answers() == first
    Account.objects.all().delete()  # cascades to invitations and answers

    _seed()

    assert _answers() == first


def test_answers_span_the_history_inside_each_accounts_customer_life():
    """Monthly rounds over the seeded history, not only the last weeks: the dashboard's
    month before and a backtest over history have survey answers. Each is given while its
    account was a customer (from its first day to its last day of service)."""
    _seed()
    cfg = accounts_demo.DemoConfig(accounts=40, days=60, seed=3, today=TODAY)
    plans = {
        accounts_demo.account_external_id(i): accounts_demo.plan_account(cfg, i)
        for i in range(1, 41)
    }
    answers = list(
        Response.objects.values_list(
            "account__external_id", "account__customer_since", "answered_at"
        )
    )
    months = {answered.date().replace(day=1) for _, _, answered in answers}
    assert len(months) > 1
    assert min(answered.date() for _, _, answered in answers) < TODAY - dt.timedelta(days=31)
    for account, since, answered in answers:
        churned = plans[account].churn_date
        assert since <= answered.date(), (account, since, answered)
        assert churned is None or answered.date() <= churned, (account, churned, answered)
    # every invitation is one of its campaign's monthly rounds: one send time per round,
    # later rounds later, a month apart
    for campaign in Campaign.objects.all():
        sends = sorted(
            {(int(n), at) for n, at in campaign.invitations.values_list("round", "sent_at")}
        )
        assert len({n for n, _ in sends}) == len(sends) and sends[-1][0] <= campaign.runs
        gaps = [(b - a).days for (_, a), (_, b) in zip(sends, sends[1:], strict=False)]
        assert all(gap >= 28 for gap in gaps) and sends == sorted(sends, key=lambda s: s[1])


def test_a_long_history_has_answers_every_month():
    call_command(
        "seed_demo",
        *["--accounts", "60", "--days", "200", "--seed", "5", "--today", TODAY.isoformat()],
        *["--events-per-day-scale", "0.02"],
        stdout=StringIO(),
    )
    per_month = Counter(
        answered.date().replace(day=1)
        for answered in Response.objects.values_list("answered_at", flat=True)
    )
    first = (TODAY - dt.timedelta(days=200)).replace(day=1)
    months = sorted(m for m in per_month if m > first)  # the first month is partly seeded
    assert len(months) >= 6
    assert all(per_month[m] >= 3 for m in months), per_month


def test_surveys_can_be_left_out():
    out = _seed("--surveys", "no")
    assert "survey" not in out.split("In the database now:")[0]
    assert not Invitation.objects.exists()


CALLS: list[list[int]] = []


def record_facts(ids):  # a TIMELINE_FACT_HOOKS listener, as playbooks' task is
    CALLS.append(sorted(ids))


def test_the_playbooks_hear_of_all_answers_in_one_call(
    settings, django_capture_on_commit_callbacks
):
    CALLS.clear()
    settings.TIMELINE_FACT_HOOKS = ["tests.surveys.test_demo.record_facts"]
    with django_capture_on_commit_callbacks(execute=True):
        _seed()
    survey_facts = sorted(
        TimelineEntry.objects.filter(kind="survey_answer").values_list("id", flat=True)
    )
    assert survey_facts and survey_facts in CALLS  # one call with every answer's fact
    assert not [c for c in CALLS if c != survey_facts and set(c) & set(survey_facts)]


def test_a_few_unhappy_answers_on_the_data_day_open_the_detractor_follow_up(
    django_capture_on_commit_callbacks, settings
):
    """The "Detractor follow-up" playbook looks back 2 days (its rule is not changed for the
    demo): a few unhappy answers of different accounts are given on the data day (yesterday),
    so the first nightly run after seeding opens its CTAs."""
    from playbooks.models import Cta, Playbook
    from surveys.scoring import is_unhappy

    playbook = Playbook.objects.get(starter="detractor-follow-up")
    assert playbook.trigger_params["within_days"] == 2
    _seed()
    data_day = TODAY - dt.timedelta(days=1)
    recent = [
        (account, kind, score)
        for account, kind, score, answered in Response.objects.values_list(
            "account_id", "kind", "score", "answered_at"
        )
        if answered.date() == data_day
    ]
    assert len(recent) == 3
    assert len({account for account, _, _ in recent}) == 3
    assert all(is_unhappy(kind, score) for _, kind, score in recent)
    assert not Response.objects.filter(answered_at__date__gt=data_day).exists()
    settings.PIPELINE_FINAL_HOOKS = ["playbooks.services.playbooks_evaluate_all"]  # as deployed
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_pipeline", "--as-of", data_day.isoformat(), stdout=StringIO())
    opened = set(Cta.objects.filter(playbook=playbook).values_list("account_id", flat=True))
    assert {account for account, _, _ in recent} <= opened
