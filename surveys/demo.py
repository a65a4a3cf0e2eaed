"""Demo survey answers for ``manage.py seed_demo``: three campaigns sent in the last weeks
(a relationship NPS to over half the people, a CSAT and a CES to a few others: one survey per
person, as the fatigue rule wants, and some 15 % left unsurveyed, so that a campaign made to
try the product reaches someone inside the fatigue window), and answers recorded through
``services.response_record``, the public page's own service, so each has its timeline fact;
the playbooks hear of them all in one call (health and text sentiment come from the nightly
run, as for the rest of the demo book). Deterministic for a seed and a day.

Scores follow the account's fate in the demo book (``accounts.demo``): growing and steady
customers are mostly promoters, accounts at risk mostly detractors; about 40 % answer, a few
days after the send, but for a few unhappy answers given on the demo's data day (yesterday),
which the "Detractor follow-up" playbook (looking back 2 days) follows up. No email is sent:
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

# (kind, name, question, days before today it was sent, share of the people asked)
CAMPAIGNS = (
    ("nps", "Relationship NPS (demo)",
     "How likely are you to recommend {company} to a friend or colleague?", 21, 0.55),
    ("csat", "Support satisfaction (demo)",
     "How satisfied are you with the support you received from {company}?", 14, 0.15),
    ("ces", "Onboarding effort (demo)",
     "How easy was it to get started with {company}?", 10, 0.15),
)  # fmt: skip
ANSWER_RATE = 0.4
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
    fates = {}
    for index in range(1, cfg.accounts + 1):
        plan = demo.plan_account(cfg, index)
        # a churned account that left before the sends is not asked
        if plan.churn_date is None or plan.churn_date > cfg.end - dt.timedelta(days=21):
            fates[plan.external_id] = plan.fate
    accounts = dict(
        Account.objects.filter(external_id__in=list(fates)).values_list("id", "external_id")
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
        for kind, name, question, _days_ago, _share in CAMPAIGNS:
            survey = Survey.objects.create(name=name, kind=kind, question=question)
            campaigns.append(
                Campaign.objects.create(
                    name=name, survey=survey, status=Campaign.Status.ACTIVE, runs=1
                )
            )
        invitations = []
        for person_id, account_id, email in people:
            draw, share_below = rng.random(), 0.0
            for campaign, (_kind, _name, _q, days_ago, share) in zip(
                campaigns, CAMPAIGNS, strict=True
            ):
                share_below += share
                if draw < share_below:
                    sent = today - dt.timedelta(days=days_ago)
                    invitations.append(
                        Invitation(
                            campaign=campaign,
                            stakeholder_id=person_id,
                            account_id=account_id,
                            email=email.lower(),
                            token=services.new_token(),
                            sent_at=sent,
                            expires_at=sent + dt.timedelta(days=14),
                        )
                    )
                    break
        Invitation.objects.bulk_create(invitations)
        summary.invitations = len(invitations)
        answers = []
        data_day = today - dt.timedelta(days=1)  # 09:00 on the day the pipeline scores
        recent: set[int] = set()
        for invitation in invitations:
            if rng.random() >= ANSWER_RATE:
                continue
            fate = fates[accounts[invitation.account_id]]
            mood = "unhappy" if fate in ("at_risk", "churned") else "happy"
            if rng.random() < 0.15:  # nobody is all one thing
                mood = "happy" if mood == "unhappy" else "unhappy"
            weights = SCORES[invitation.campaign.survey.kind][mood]
            score = rng.choices(list(weights), weights=list(weights.values()))[0]
            answered = invitation.sent_at + dt.timedelta(hours=rng.randint(1, 24 * 5))
            if (
                len(recent) < RECENT_UNHAPPY
                and invitation.account_id not in recent
                and fate != "churned"  # playbooks leave churned accounts alone
                and scoring.is_unhappy(invitation.campaign.survey.kind, score)
                and invitation.expires_at > data_day
            ):
                answered = data_day + dt.timedelta(hours=len(recent))
                recent.add(invitation.account_id)
            answers.append(
                services.response_record(
                    invitation_id=invitation.pk,
                    score=score,
                    comment=rng.choice(COMMENTS[mood]),
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
