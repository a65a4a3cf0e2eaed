"""Reads over survey answers: the voice-of-the-customer figures of ``docs/metrics.md`` for any
set of accounts and period (the KPI engine in ``metrics.kpis.support`` calls these too), the
comments list, detractor follow-up times. Set-based: a fixed handful of queries per call.

Which answers count: the current answer of each invitation (a changed answer replaces it), and
of a person's answers to one campaign only the latest (metrics.md: "Only the latest response of
a person per campaign counts"). Imported answers (no campaign) each count. Periods are
half-open ``[start, end)`` on ``answered_at``; an answer given after ``end`` does not replace
one given before it (as-of rule).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet, Subquery

from accounts.models import Account, Activity, TimelineEntry

from . import scoring
from .models import Campaign, Invitation, Response


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def counted_responses(
    accounts: QuerySet[Account] | None = None,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    campaign_id: int | None = None,
) -> QuerySet[Response]:
    """The answers that count (see the module docstring), lazily. With ``end``, the answers
    in force at its start: an answer changed on or after ``end`` counts as given before the
    change (``is_current`` says what is current now, so it is not read then), and of a
    person's answers to a campaign the latest given before ``end``."""
    later = Response.objects.filter(
        campaign=OuterRef("campaign"),
        stakeholder=OuterRef("stakeholder"),
        answered_at__gt=OuterRef("answered_at"),
    )
    if end is None:
        qs = Response.objects.filter(is_current=True)
        later = later.filter(is_current=True)
    else:
        t1 = midnight(end)
        # as of t1 the answer of an invitation is its last one before t1, whatever replaced
        # it since: a person who changes a 10 into a 0 on day D+1 was a promoter on day D
        changed = Response.objects.filter(
            invitation=OuterRef("invitation"),
            answered_at__gt=OuterRef("answered_at"),
            answered_at__lt=t1,
        )
        qs = Response.objects.filter(answered_at__lt=t1).exclude(Exists(changed))
        later = later.filter(answered_at__lt=t1)
    if accounts is not None and accounts.query.has_filters():  # else: every account
        qs = qs.filter(account__in=accounts.values("id"))
    if start is not None:
        qs = qs.filter(answered_at__gte=midnight(start))
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    return qs.exclude(Exists(later))


def kind_figures(responses: QuerySet[Response]) -> dict[str, scoring.KindFigures]:
    """NPS, CSAT and CES over ``responses``: one grouped query."""
    counts: dict[str, dict[int, int]] = {"nps": {}, "csat": {}, "ces": {}}
    for kind, score, n in (
        responses.order_by()
        .values("kind", "score")
        .annotate(n=Count("id"))
        .values_list("kind", "score", "n")
    ):
        counts[kind][score] = n
    return {kind: scoring.figures(kind, c) for kind, c in counts.items()}


def invitation_counts(
    accounts: QuerySet[Account] | None = None,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    campaign_id: int | None = None,
) -> dict[str, Any]:
    """Invitations delivered (their email handed to the outbox) in the period, how many of
    them were answered before ``end``, and the response rate. One query."""
    qs = Invitation.objects.filter(sent_at__isnull=False)
    answered = Q(responded_at__isnull=False)
    if accounts is not None and accounts.query.has_filters():  # else: every account
        qs = qs.filter(account__in=accounts.values("id"))
    if start is not None:
        qs = qs.filter(sent_at__gte=midnight(start))
    if end is not None:
        qs = qs.filter(sent_at__lt=midnight(end))
        answered &= Q(responded_at__lt=midnight(end))
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    agg = qs.aggregate(delivered=Count("id"), responded=Count("id", filter=answered))
    agg["rate"] = scoring.response_rate(agg["responded"], agg["delivered"])
    return agg


def unhappy_q() -> Q:
    return (
        Q(kind="nps", score__lte=scoring.UNHAPPY_AT_MOST["nps"])
        | Q(kind="csat", score__lte=scoring.UNHAPPY_AT_MOST["csat"])
        | Q(kind="ces", score__lte=scoring.UNHAPPY_AT_MOST["ces"])
    )


def with_first_action(responses: QuerySet[Response]) -> QuerySet[Response]:
    """Annotate ``first_activity_at`` and ``first_fact_at``: the first CSM activity on the
    account at or after the answer, and the first follow-up fact (a CTA step done …, kinds
    in ``settings.SURVEY_FOLLOW_UP_FACT_KINDS``) at or after it."""
    activity = (
        Activity.objects.filter(
            account=OuterRef("account"), occurred_at__gte=OuterRef("answered_at")
        )
        .order_by()
        .values("account")
        .annotate(first=Min("occurred_at"))
        .values("first")
    )
    fact = (
        TimelineEntry.objects.filter(
            account=OuterRef("account"),
            kind__in=list(settings.SURVEY_FOLLOW_UP_FACT_KINDS),
            occurred_at__gte=OuterRef("answered_at"),
        )
        .order_by()
        .values("account")
        .annotate(first=Min("occurred_at"))
        .values("first")
    )
    return responses.annotate(first_activity_at=Subquery(activity), first_fact_at=Subquery(fact))


def first_action_at(response: Response) -> dt.datetime | None:
    """The earlier of the two annotations of ``with_first_action``."""
    found = [t for t in (response.first_activity_at, response.first_fact_at) if t is not None]
    return min(found) if found else None


def follow_up(responses: QuerySet[Response]) -> dict[str, Any]:
    """Detractor follow-up time (docs/metrics.md): hours from each unhappy answer given
    through a survey link to the first CSM action on its account after it; the median over
    the answers followed up, and how many wait. Imported answers are left out: they were
    followed up in the tool they came from. One query."""
    hours = []
    waiting = 0
    unhappy = responses.filter(unhappy_q(), source=Response.Source.LINK)
    for r in with_first_action(unhappy).only("id", "answered_at"):
        first = first_action_at(r)
        if first is None:
            waiting += 1
        else:
            hours.append((first - r.answered_at).total_seconds() / 3600)
    return {"median_hours": scoring.median(hours), "followed_up": len(hours), "waiting": waiting}


def voice_of_customer(
    accounts: QuerySet[Account] | None = None,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    campaign_id: int | None = None,
) -> dict[str, Any]:
    """Every survey figure for a scope and period: per kind, response rate, follow-up. Three
    queries."""
    responses = counted_responses(accounts, start=start, end=end, campaign_id=campaign_id)
    return {
        "kinds": kind_figures(responses),
        "invitations": invitation_counts(accounts, start=start, end=end, campaign_id=campaign_id),
        "follow_up": follow_up(responses),
    }


SENTIMENT_DAYS = 365


def account_sentiment(accounts: QuerySet[Account], *, as_of: dt.date) -> dict[int, dict[str, Any]]:
    """Per account with answers, the health model's sentiment measures as of the end of day
    ``as_of``: the account's NPS, CSAT (%) and CES (mean) over the answers that count given in
    the 365 days up to that day (each person's latest per campaign), and how many answers
    each rests on. Kinds without answers are absent (no data). One query."""
    end = as_of + dt.timedelta(days=1)
    counts: dict[int, dict[str, dict[int, int]]] = {}
    for account_id, kind, score, n in (
        counted_responses(accounts, start=end - dt.timedelta(days=SENTIMENT_DAYS), end=end)
        .order_by()
        .values("account_id", "kind", "score")
        .annotate(n=Count("id"))
        .values_list("account_id", "kind", "score", "n")
    ):
        counts.setdefault(account_id, {}).setdefault(kind, {})[score] = n
    out: dict[int, dict[str, Any]] = {}
    for account_id, kinds in counts.items():
        row = out.setdefault(account_id, {})
        for kind, by_score in kinds.items():
            f = scoring.figures(kind, by_score)
            row[kind] = round(f.value, 2)
            row[f"{kind}_responses"] = f.responses
    return out


def comments(
    responses: QuerySet[Response], *, kind: str = "", group: str = ""
) -> QuerySet[Response]:
    """Answers with a comment (``answers_of``), newest first, with the account and person for
    display."""
    return (
        answers_of(responses, kind=kind, group=group)
        .exclude(comment="")
        .select_related("account", "stakeholder", "campaign")
        .order_by("-answered_at", "-id")
    )


def answers_of(responses: QuerySet[Response], *, kind: str = "", group: str = "") -> QuerySet:
    """The answers of one ``kind`` (nps, csat, ces) and ``group`` ("unhappy" | "happy"),
    each filter left out when empty: the results page's comment filters, which its CSV
    export follows too."""
    if kind:
        responses = responses.filter(kind=kind)
    if group == "unhappy":
        responses = responses.filter(unhappy_q())
    elif group == "happy":
        responses = responses.exclude(unhappy_q())
    return responses


def campaign_list(accounts: QuerySet[Account]) -> QuerySet[Campaign]:
    """Every campaign with its survey, and its delivery counts over ``accounts`` (those the
    user may see: ``Account.objects.visible_to``)."""
    seen = Q(invitations__account__in=accounts.values("pk"))
    return Campaign.objects.select_related("survey").annotate(
        delivered=Count("invitations", filter=seen & Q(invitations__sent_at__isnull=False)),
        responded=Count("invitations", filter=seen & Q(invitations__responded_at__isnull=False)),
    )
