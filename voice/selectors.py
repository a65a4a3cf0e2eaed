"""Reads of the voice of the customer. Set-based: a fixed handful of queries per call,
whatever the number of accounts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.apps import apps
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum

from accounts.models import (
    Account,
    Activity,
    Contract,
    Stakeholder,
    Ticket,
    TimelineEntry,
    User,
)
from accounts.money import count_text

from . import relationship, sentiment
from .models import AccountVoiceScore, NorthStar, NorthStarWeek, TextSentiment, Theme, ThemeRun

SENTIMENT_WINDOW_DAYS = 90
TWO_WAY_KINDS = (Activity.Kind.CALL, Activity.Kind.MEETING)  # the customer spoke too


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _scope(queryset: QuerySet, accounts: QuerySet[Account]) -> QuerySet:
    if not accounts.query.has_filters():
        return queryset
    return queryset.filter(account__in=accounts.values("pk"))


def replaced_survey_comment(end: dt.datetime | None = None) -> Q:
    """``TextSentiment`` rows of survey comments whose answer was replaced (a changed answer
    is a new row, the old one kept as history): by ``end`` when given (the as-of rule: on a
    day before the change the old comment still spoke for the person), else by now. An
    empty condition while the surveys app has no answers."""
    try:
        response = apps.get_model("surveys", "Response")
    except LookupError:
        return Q(pk__in=[])
    if end is None:
        replaced = response.objects.filter(pk=OuterRef("source_id"), is_current=False)
    else:
        later = response.objects.filter(
            invitation=OuterRef("invitation"),
            answered_at__gt=OuterRef("answered_at"),
            answered_at__lt=end,
        )
        replaced = response.objects.filter(pk=OuterRef("source_id")).filter(Exists(later))
    return Q(source=TextSentiment.Source.SURVEY) & Q(Exists(replaced))


# --- per-account scores as of a day ----------------------------------------------------------


def account_sentiments(accounts: QuerySet[Account], *, as_of: dt.date) -> dict[int, dict]:
    """``{account_id: {"sentiment": −100..100, "texts": n}}`` for the accounts with scored
    texts in the 90 days ending with ``as_of`` (recency-weighted, ``sentiment.
    account_sentiment``). Accounts without such texts are absent: no data. One query."""
    end = _midnight(as_of + dt.timedelta(days=1))
    start = end - dt.timedelta(days=SENTIMENT_WINDOW_DAYS)
    per_account: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for account_id, at, value in (
        _scope(TextSentiment.objects.all(), accounts)
        .filter(occurred_at__gte=start, occurred_at__lt=end, score__isnull=False)
        .exclude(replaced_survey_comment(end))
        .values_list("account_id", "occurred_at", "score")
        .order_by()
    ):
        per_account[account_id].append(((as_of - at.astimezone(dt.UTC).date()).days, value))
    out = {}
    for account_id, scores in per_account.items():
        value = sentiment.account_sentiment(scores, window_days=SENTIMENT_WINDOW_DAYS)
        if value is not None:
            out[account_id] = {"sentiment": value, "texts": len(scores)}
    return out


def account_relationships(
    accounts: QuerySet[Account], *, as_of: dt.date, known_at: dt.datetime | None = None
) -> dict[int, relationship.Relationship]:
    """The relationship of every account of ``accounts`` that has stakeholders known by the
    end of ``as_of``; the others are absent (no data). Two queries: the people with their
    last two-way contact (a call or meeting naming them, before the end of the day), and the
    champions recorded when first imported (the "stakeholder added" timeline facts).
    ``known_at``: count the people known by then instead (the account page, live: people
    imported today are listed beside the card, so the card counts them too; their last
    contact still counts up to the end of ``as_of``)."""
    end = _midnight(as_of + dt.timedelta(days=1))
    known = known_at if known_at is not None else end
    people: dict[int, list[relationship.Person]] = defaultdict(list)
    current: dict[int, dict[str, str]] = defaultdict(dict)  # external_id → role now
    for s in (
        _scope(Stakeholder.objects.all(), accounts)
        .filter(created_at__lt=known)
        .annotate(
            last_contact=Max(
                "activities__occurred_at",
                filter=Q(activities__kind__in=TWO_WAY_KINDS, activities__occurred_at__lt=end),
            )
        )
        .values("account_id", "external_id", "name", "email", "role", "last_contact")
        .order_by()
    ):
        last = s["last_contact"]
        days = None if last is None else (as_of - last.astimezone(dt.UTC).date()).days
        people[s["account_id"]].append(
            relationship.Person(s["name"] or s["email"] or s["external_id"], s["role"], days)
        )
        current[s["account_id"]][s["external_id"]] = s["role"]
    left: dict[int, list[str]] = defaultdict(list)
    for account_id, data, title in (
        _scope(TimelineEntry.objects.all(), accounts)
        .filter(kind=TimelineEntry.Kind.STAKEHOLDER_ADDED, occurred_at__lt=known)
        .values_list("account_id", "data", "title")
        .order_by()
    ):
        if (data or {}).get("role") != "champion":
            continue
        if current[account_id].get(data.get("stakeholder")) != "champion":
            left[account_id].append(title.split(" added as ")[0])
    return {
        account_id: relationship.score(ps, champions_left=sorted(left.get(account_id, [])))
        for account_id, ps in people.items()
    }


def health_measures(accounts: QuerySet[Account], *, as_of: dt.date) -> dict[int, dict[str, Any]]:
    """The voice measures health models can use (``metrics.health.MEASURES``):
    ``text_sentiment`` (−100..100) with ``text_sentiment_texts``, and ``relationship_score``
    (0..100) with ``relationship_engaged``; absent = no data. Three queries."""
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    for account_id, s in account_sentiments(accounts, as_of=as_of).items():
        out[account_id]["text_sentiment"] = s["sentiment"]
        out[account_id]["text_sentiment_texts"] = s["texts"]
    for account_id, r in account_relationships(accounts, as_of=as_of).items():
        if r.score is not None:
            out[account_id]["relationship_score"] = r.score
            out[account_id]["relationship_engaged"] = r.engaged_people
    return dict(out)


# --- the account page ------------------------------------------------------------------------


def account_voice(
    *, account: Account, as_of: dt.date, known_at: dt.datetime | None = None
) -> dict[str, Any]:
    """Everything the account's voice fragment shows: today's sentiment (live, None = no
    texts in 90 days) and its recorded history, the relationship with its reasons (the
    people known by ``known_at``, default the end of ``as_of``), the latest texts with their
    scores, the themes the account's texts fall in, and its north-star weeks. A fixed number
    of queries (9)."""
    one = Account.objects.filter(pk=account.pk)
    sent = account_sentiments(one, as_of=as_of).get(account.pk)
    rel = account_relationships(one, as_of=as_of, known_at=known_at).get(account.pk)
    history = list(
        AccountVoiceScore.objects.filter(account=account)
        .order_by("-day")
        .values("day", "sentiment", "relationship")[:30]
    )
    texts = list(
        TextSentiment.objects.filter(account=account)
        .exclude(replaced_survey_comment())
        .order_by("-occurred_at", "-id")[:10]
    )
    run = latest_theme_run()
    themes = []
    if run is not None:
        themes = list(
            Theme.objects.filter(run=run, members__account=account)
            .annotate(mentions=Count("members"))
            .order_by("-mentions", "rank")
        )
    return {
        "sentiment": sent,
        "relationship": rel,
        "history": history[::-1],
        "texts": texts,
        "themes": themes,
        "north_star": north_star_for(account=account, as_of=as_of),
    }


# --- themes ----------------------------------------------------------------------------------


def latest_theme_run() -> ThemeRun | None:
    return ThemeRun.objects.filter(status=ThemeRun.Status.SUCCEEDED).order_by("-id").first()


def theme_list(*, user: User) -> dict[str, Any]:
    """The themes of the latest successful run, each with how many of the user's visible
    accounts mention it. Two or three queries."""
    run = latest_theme_run()
    running = ThemeRun.objects.filter(status=ThemeRun.Status.RUNNING).exists()
    if run is None:
        return {"run": None, "themes": [], "running": running}
    visible = Account.objects.visible_to(user)
    themes = list(
        Theme.objects.filter(run=run)
        .annotate(
            my_accounts=Count(
                "members__account",
                filter=Q(members__account__in=visible.values("pk")),
                distinct=True,
            )
        )
        .order_by("rank")
    )
    return {"run": run, "themes": themes, "running": running}


def theme_detail(*, theme: Theme, user: User, quotes: int = 30, accounts: int = 200) -> dict:
    """A theme's quotes and accounts, only from the accounts the user may see: the accounts
    (most mentions first, at most ``accounts``) with their mentions, ARR and owner; the
    latest ``quotes`` texts; the three most typical phrasings. Six queries."""
    members = theme.members.filter(account__in=Account.objects.visible_to(user).values("pk"))
    mentions = dict(
        members.values("account_id")
        .order_by()
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    top = sorted(mentions, key=lambda a: (-mentions[a], a))[:accounts]
    rows = list(Account.objects.filter(pk__in=top).select_related("owner"))
    arr = account_arr(top, day=dt.datetime.now(dt.UTC).date())
    for a in rows:
        a.mentions = mentions[a.pk]
        a.arr = arr.get(a.pk, 0.0)
    rows.sort(key=lambda a: (-a.mentions, a.name))
    texts = list(
        TextSentiment.objects.filter(pk__in=members.values("text_id"))
        .select_related("account")
        .order_by("-occurred_at", "-id")[:quotes]
    )
    # the most typical phrasings (nearest the theme's centre) the user may see, each with
    # how often it was written and its latest example
    phrasings = list(
        members.values("text__text")
        .order_by()
        .annotate(best=Max("similarity"), n=Count("id"), example=Max("text_id"))
        .order_by("-best", "-n")[:3]
    )
    examples = TextSentiment.objects.select_related("account").in_bulk(
        [p["example"] for p in phrasings]
    )
    typical = []
    for p in phrasings:
        text = examples[p["example"]]
        text.times = p["n"]
        typical.append(text)
    return {
        "quotes": typical,
        "accounts": rows,
        "accounts_total": len(mentions),
        "texts": texts,
        "mentions_total": sum(mentions.values()),
    }


def account_arr(account_ids: list[int], *, day: dt.date) -> dict[int, float]:
    """ARR (12 × MRR of the contracts covering ``day``) per account; absent = 0. One query."""
    covering = Q(start_date__lte=day) & (Q(end_date__isnull=True) | Q(end_date__gte=day))
    return {
        account_id: float(mrr or 0) * 12
        for account_id, mrr in Contract.objects.filter(covering, account_id__in=account_ids)
        .values("account_id")
        .order_by()
        .annotate(mrr=Sum("mrr"))
        .values_list("account_id", "mrr")
    }


# --- north star ------------------------------------------------------------------------------


def north_star() -> NorthStar | None:
    return NorthStar.objects.filter(pk=1).first()


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _weeks(as_of: dt.date, count: int) -> list[dt.date]:
    """The ``count`` weeks (Mondays) ending with the week that contains ``as_of``."""
    last = week_start(as_of)
    return [last - dt.timedelta(weeks=count - 1 - i) for i in range(count)]


def _series(values: dict[dt.date, float], weeks: list[dt.date]) -> dict[str, Any]:
    series = [{"week": w, "value": values.get(w, 0.0)} for w in weeks]
    top = max((p["value"] for p in series), default=0) or 1
    for p in series:
        p["height"] = round(100 * p["value"] / top)
    # trend: the last complete week against the one before (the current week is partial)
    last, before = series[-2]["value"], series[-3]["value"]
    change = None if not before else round(100 * (last - before) / before, 1)
    return {"series": series, "last_week": last, "week_before": before, "change": change}


def north_star_for(*, account: Account, as_of: dt.date, weeks: int = 12) -> dict | None:
    """The account's north-star weeks (12, the last one partial) with the trend; None when
    no north star is set. One or two queries."""
    star = north_star()
    if star is None:
        return None
    ws = _weeks(as_of, weeks)
    values = dict(
        NorthStarWeek.objects.filter(account=account, week__gte=ws[0]).values_list("week", "value")
    )
    return {"star": star, **_series(values, ws)}


def north_star_total(*, user: User, as_of: dt.date, weeks: int = 12) -> dict | None:
    """The north star of the accounts the user may see, per week, with the trend and the
    accounts that moved most between the last two complete weeks; None when not set."""
    star = north_star()
    if star is None:
        return None
    ws = _weeks(as_of, weeks)
    rows = NorthStarWeek.objects.filter(
        week__gte=ws[0], account__in=Account.objects.visible_to(user).values("pk")
    )
    values = dict(rows.values("week").order_by().annotate(v=Sum("value")).values_list("week", "v"))
    return {"star": star, **_series(values, ws)}


# --- for playbook triggers -------------------------------------------------------------------


def sentiment_fell_below(
    *, threshold: float, as_of: dt.date, account_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Accounts whose recorded sentiment on ``as_of`` is below ``threshold`` while the day
    before it was at or above it, or had no data: the day it *fell below*, once. One query.
    ``{account_id: {"sentiment", "before", "evidence"}}``."""
    day_before = as_of - dt.timedelta(days=1)
    rows = AccountVoiceScore.objects.filter(day__in=[as_of, day_before])
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    days: dict[int, dict[dt.date, int | None]] = defaultdict(dict)
    for account_id, day, value in rows.values_list("account_id", "day", "sentiment"):
        days[account_id][day] = value
    out = {}
    for account_id, values in days.items():
        now, before = values.get(as_of), values.get(day_before)
        if now is not None and now < threshold and (before is None or before >= threshold):
            was = "no data" if before is None else f"{before:+d}"
            out[account_id] = {
                "sentiment": now,
                "before": before,
                "evidence": f"sentiment {now:+d} on {as_of} (below {threshold:g}; was {was})",
            }
    return out


def relationship_dropped(
    *, points: int, days: int, as_of: dt.date, account_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Accounts whose recorded relationship score on ``as_of`` is at least ``points`` lower
    than ``days`` days before. One query. ``{account_id: {"score", "before", "reasons",
    "evidence"}}`` (the reasons of today's score say why)."""
    then = as_of - dt.timedelta(days=days)
    rows = AccountVoiceScore.objects.filter(day__in=[as_of, then], relationship__isnull=False)
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    by_account: dict[int, dict[dt.date, tuple[int, list]]] = defaultdict(dict)
    for account_id, day, value, reasons in rows.values_list(
        "account_id", "day", "relationship", "relationship_reasons"
    ):
        by_account[account_id][day] = (value, reasons)
    out = {}
    for account_id, values in by_account.items():
        if as_of in values and then in values:
            (now, reasons), (before, _) = values[as_of], values[then]
            if before - now >= points:
                out[account_id] = {
                    "score": now,
                    "before": before,
                    "reasons": reasons,
                    "evidence": (
                        f"stakeholder coverage {before} → {now} in {count_text(days, 'day')}"
                    ),
                }
    return out


def timeline_sentiments(entries: list[TimelineEntry]) -> dict[int, int | None]:
    """The sentiment of the text behind each timeline entry that has one, for the timeline
    (``{entry.pk: score}``; None = not scored): ticket facts (``data["ticket"]``, the
    ticket's external id) and CSM activity facts (``data["activity"]``, its id). Three
    queries at most, whatever the number of entries."""
    tickets = {e.pk: e.data.get("ticket") for e in entries if (e.data or {}).get("ticket")}
    activities = {e.pk: e.data.get("activity") for e in entries if (e.data or {}).get("activity")}
    out: dict[int, int | None] = {}
    if tickets:
        ext_to_pk = dict(
            Ticket.objects.filter(external_id__in=set(tickets.values())).values_list(
                "external_id", "pk"
            )
        )
        scores = dict(
            TextSentiment.objects.filter(
                source=TextSentiment.Source.TICKET, source_id__in=list(ext_to_pk.values())
            ).values_list("source_id", "score")
        )
        for entry_pk, ext in tickets.items():
            pk = ext_to_pk.get(ext)
            if pk in scores:
                out[entry_pk] = scores[pk]
    if activities:
        scores = dict(
            TextSentiment.objects.filter(
                source=TextSentiment.Source.ACTIVITY, source_id__in=set(activities.values())
            ).values_list("source_id", "score")
        )
        for entry_pk, activity_id in activities.items():
            if activity_id in scores:
                out[entry_pk] = scores[activity_id]
    return out
