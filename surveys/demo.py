"""Demo survey answers for ``manage.py seed_demo``: three monthly campaigns over the book's
history, their last sends in the last weeks (a relationship NPS to over half the people, a
CSAT and a CES to a few others: one survey per person, as the fatigue rule wants, each asked
in one monthly round of the account's customer life, and some 15 % left unsurveyed, so that a
campaign made to try the product reaches someone inside the fatigue window): a steady trickle
of answers every month, so the dashboard's month before and a backtest over history have
survey figures. Answers are recorded through ``services.response_record``, the public page's
own service, so each has its timeline fact; the playbooks hear of them all in one call
(health and text sentiment come from the nightly run, as for the rest of the demo book).
Deterministic for a seed and a day.

Scores follow the account's fate in the demo book (``accounts.demo``): growing and steady
customers are mostly promoters, accounts at risk mostly detractors; about 40 % answer, a few
days after the send, but for a few unhappy answers to the last sends still open, given on the
demo's data day (yesterday), which the "Detractor follow-up" playbook (looking back 2 days)
follows up. No email is sent:
the invitations are written as already sent."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from django.db import transaction

from accounts import demo
from accounts.models import Account, Stakeholder, TimelineEntry
from accounts.services import timeline_facts_recorded

from . import scoring, services
from .models import Campaign, Invitation, Survey

# (kind, name, question, days before today of its last monthly send, share of the people asked)
CAMPAIGNS = (
    ("nps", "Relationship NPS (demo)",
     "How likely are you to recommend {company} to a friend or colleague?", 21, 0.55),
    ("csat", "Support satisfaction (demo)",
     "How satisfied are you with the support you received from {company}?", 14, 0.15),
    ("ces", "Onboarding effort (demo)",
     "How easy was it to get started with {company}?", 10, 0.15),
)  # fmt: skip
ANSWER_RATE = 0.4
ANSWER_WITHIN = 5  # days after the send, at most
INVITATION_DAYS = 14  # an invitation's link works for as long
# unhappy answers given on the demo's data day (yesterday), each of another account still a
# customer: the "Detractor follow-up" playbook looks back 2 days, so `make run` opens its CTAs
RECENT_UNHAPPY = 3
# score weights per fate: a happy book with its trouble spots
SCORES = {
    "nps": {
        "happy": {10: 5, 9: 5, 8: 3, 7: 2, 6: 1, 5: 1},
        "unhappy": {9: 1, 8: 1, 7: 2, 6: 3, 5: 3, 4: 2, 3: 2, 2: 1, 1: 1, 0: 1},
    },
    "csat": {"happy": {5: 5, 4: 4, 3: 1}, "unhappy": {4: 1, 3: 2, 2: 3, 1: 2}},
    "ces": {"happy": {7: 4, 6: 4, 5: 2, 4: 1}, "unhappy": {5: 1, 4: 2, 3: 3, 2: 2, 1: 1}},
}
COMMENTS = {
    "happy": ("", "", "Great support team.", "The new reports save us hours every week."),
    "unhappy": ("", "Too many outages lately.", "Support takes days to answer.",
                "Hard to find anything in the new interface."),
}  # fmt: skip


@dataclass
class DemoSurveys:
    invitations: int = 0
    answers: int = 0


def demo_surveys_seed(cfg: demo.DemoConfig) -> DemoSurveys:
    """The demo campaigns, invitations and answers for the book ``cfg`` describes (already
    loaded). Re-running it changes nothing while its invitations exist; campaigns left empty
    (the accounts were deleted) are made again."""
    summary = DemoSurveys()
    existing = Campaign.objects.filter(name__in=[c[1] for c in CAMPAIGNS])
    if Invitation.objects.filter(campaign__in=existing).exists():
        return summary
    surveys = list(existing.values_list("survey_id", flat=True))
    existing.delete()
    Survey.objects.filter(pk__in=surveys).delete()
    today = dt.datetime.combine(cfg.end, dt.time(9), tzinfo=dt.UTC)
    data_day = today - dt.timedelta(days=1)  # 09:00 on the day the pipeline scores
    # each campaign's monthly sends inside the history, oldest first (round "1")
    sends = [_monthly_sends(today - dt.timedelta(days=c[3]), cfg.start) for c in CAMPAIGNS]
    plans = {}
    for index in range(1, cfg.accounts + 1):
        plan = demo.plan_account(cfg, index)
        plans[plan.external_id] = plan
    accounts = dict(
        Account.objects.filter(external_id__in=list(plans)).values_list("id", "external_id")
    )
    people = list(
        Stakeholder.objects.filter(account_id__in=list(accounts))
        .exclude(email="")
        .order_by("id")
        .values_list("id", "account_id", "email")
    )
    rng = random.Random(f"demo-surveys:{cfg.seed}")
    with transaction.atomic():
        campaigns = []
        for (kind, name, question, _days_ago, _share), rounds in zip(CAMPAIGNS, sends, strict=True):
            survey = Survey.objects.create(name=name, kind=kind, question=question)
            campaigns.append(
                Campaign.objects.create(
                    name=name,
                    survey=survey,
                    status=Campaign.Status.ACTIVE,
                    trigger=Campaign.Trigger.RECURRING,
                    recurrence_months=1,
                    runs=len(rounds),
                    expires_after_days=INVITATION_DAYS,
                )
            )
        # per person: the campaign, the round (one of the account's customer life) and the
        # answer if any, drawn in one pass, then written
        invitations, planned = [], []
        recent: set[int] = set()
        for person_id, account_id, email in people:
            draw, share_below, chosen = rng.random(), 0.0, None
            for n, (_kind, _name, _q, _days_ago, share) in enumerate(CAMPAIGNS):
                share_below += share
                if draw < share_below:
                    chosen = n
                    break
            if chosen is None:
                continue
            kind, plan = CAMPAIGNS[chosen][0], plans[accounts[account_id]]
            rounds = [
                (number, sent)
                for number, sent in enumerate(sends[chosen], start=1)
                if _customer_then(plan, sent)
            ]
            if not rounds:  # a customer since the last send, or gone before the first
                continue
            number, sent = rng.choice(rounds)
            answer = None
            if rng.random() < ANSWER_RATE:
                mood = "unhappy" if plan.fate in ("at_risk", "churned") else "happy"
                if rng.random() < 0.15:  # nobody is all one thing
                    mood = "happy" if mood == "unhappy" else "unhappy"
                weights = SCORES[kind][mood]
                score = rng.choices(list(weights), weights=list(weights.values()))[0]
                answered = sent + dt.timedelta(hours=rng.randint(1, 24 * ANSWER_WITHIN))
                last = sends[chosen][-1]
                if (
                    len(recent) < RECENT_UNHAPPY
                    and account_id not in recent
                    and plan.fate != "churned"  # playbooks leave churned accounts alone
                    and scoring.is_unhappy(kind, score)
                    and rounds[-1][1] == last
                    and last + dt.timedelta(days=INVITATION_DAYS) > data_day
                ):
                    # asked in the last round, still open: answered on the data day
                    number, sent = rounds[-1]
                    answered = data_day + dt.timedelta(hours=len(recent))
                    recent.add(account_id)
                answer = (score, rng.choice(COMMENTS[mood]), answered)
            invitations.append(
                Invitation(
                    campaign=campaigns[chosen],
                    round=str(number),
                    stakeholder_id=person_id,
                    account_id=account_id,
                    email=email.lower(),
                    token=services.new_token(),
                    sent_at=sent,
                    expires_at=sent + dt.timedelta(days=INVITATION_DAYS),
                )
            )
            planned.append(answer)
        Invitation.objects.bulk_create(invitations)
        summary.invitations = len(invitations)
        answers = []
        for invitation, answer in zip(invitations, planned, strict=True):
            if answer is None:
                continue
            score, comment, answered = answer
            answers.append(
                services.response_record(
                    invitation_id=invitation.pk,
                    score=score,
                    comment=comment,
                    now=answered,
                    announce=False,  # below, once for all: playbooks and health in one go
                )
            )
        summary.answers = len(answers)
        # the playbooks hear of every answer in one call (detractors open CTAs); health and
        # text sentiment are left to the nightly run, as for the rest of the demo book
        # (`make run` runs it right after)
        keys = [f"survey-response:{r.pk}" for r in answers]
        facts = TimelineEntry.objects.filter(kind=services.FACT_KIND, key__in=keys)
        timeline_facts_recorded(facts.values_list("id", flat=True))
        # answered while open; closed since (the answers stay, nobody can add more)
        Campaign.objects.filter(pk__in=[c.pk for c in campaigns]).update(
            status=Campaign.Status.CLOSED
        )
    return summary


def _monthly_sends(last: dt.datetime, first_day: dt.date) -> list[dt.datetime]:
    """A monthly campaign's sends on or after ``first_day``, the last at ``last``, oldest
    first."""
    sends, months = [], 0
    while (day := demo.add_months(last.date(), -months)) >= first_day:
        sends.append(dt.datetime.combine(day, last.timetz()))
        months += 1
    return sends[::-1]


def _customer_then(plan: demo.AccountPlan, sent: dt.datetime) -> bool:
    """Whether the account is a customer from the day of the send to the last day its
    answer may come (``ANSWER_WITHIN``)."""
    if sent.date() < plan.customer_since:
        return False
    last_answer = sent.date() + dt.timedelta(days=ANSWER_WITHIN)
    return plan.churn_date is None or last_answer <= plan.churn_date
