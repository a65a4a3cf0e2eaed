"""Adoption and engagement from usage events, as of the last day of a period.

The 30-day window ends with the period: for ``[start, end)`` it is the UTC days
``end - 30 … end - 1``, i.e. events with ``end - 30 days <= occurred_at < end``. Active users
are distinct non-empty ``user_id`` values per account; an event without a user id counts as
an event but not as a user. Distinct users over several days come from the raw events (the
daily rollups only hold per-day counts); daily active users come from ``UsageDaily``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.db.models import CharField, Count, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat

from accounts.models import Account, UsageDaily, UsageEvent

from .common import ZERO, in_scope, kpi, median, midnight, month_start, pct
from .revenue import AccountFacts

WINDOW_DAYS = 30
WEEKS = 4  # WAU: the mean over the last four whole weeks of the window (28 days)


def _user_key():
    """``"<account id>:<user id>"``: one value per (account, user), so a distinct count over
    the whole scope is one aggregate (the same user id in two accounts is two users)."""
    return Concat(Cast("account_id", CharField()), Value(":"), "user_id", output_field=CharField())


HAS_USER = ~Q(user_id="")


def _windows(accounts: QuerySet[Account], *, end: dt.date) -> tuple[QuerySet, Q, Q]:
    """Events of the scope before ``end``; the 30-day window ending with ``end`` and the 30
    days before it, as filters."""
    window_start = midnight(end - dt.timedelta(days=WINDOW_DAYS))
    previous_start = midnight(end - dt.timedelta(days=2 * WINDOW_DAYS))
    events = in_scope(UsageEvent.objects.all(), accounts).filter(occurred_at__lt=midnight(end))
    in_window = Q(occurred_at__gte=window_start)
    in_previous = Q(occurred_at__gte=previous_start, occurred_at__lt=window_start)
    return events, in_window, in_previous


def usage_by_account(
    accounts: QuerySet[Account], *, end: dt.date, with_known: bool = True
) -> dict[int, dict]:
    """One query: per account with events before ``end``, known users (ever), active users
    and events in the 30-day window ending with ``end`` (``active``, ``events``) and in the
    30 days before it (``previous_active``, ``previous_events``).

    ``with_known=False`` (health needs no "known users") reads only those 60 days instead
    of every event the accounts ever sent, and leaves out accounts without events in them."""
    events, in_window, in_previous = _windows(accounts, end=end)
    counts = {
        "active": Count("user_id", distinct=True, filter=HAS_USER & in_window),
        "previous_active": Count("user_id", distinct=True, filter=HAS_USER & in_previous),
        "events": Count("pk", filter=in_window),
        "previous_events": Count("pk", filter=in_previous),
    }
    if with_known:
        counts["known"] = Count("user_id", distinct=True, filter=HAS_USER)
    else:
        events = events.filter(in_window | in_previous)
    return {
        row["account_id"]: row for row in events.values("account_id").order_by().annotate(**counts)
    }


def key_features_used(accounts: QuerySet[Account], *, end: dt.date) -> dict[int, int]:
    """One query (none without KEY_FEATURES): per account, how many of the KEY_FEATURES it
    used in the 30-day window ending with ``end``."""
    key_features = list(settings.KEY_FEATURES)
    if not key_features:
        return {}
    events, in_window, _ = _windows(accounts, end=end)
    return dict(
        events.filter(in_window, event__in=key_features)
        .values("account_id")
        .order_by()
        .annotate(n=Count("event", distinct=True))
        .values_list("account_id", "n")
    )


def adoption_kpis(
    accounts: QuerySet[Account],
    *,
    end: dt.date,
    facts: Sequence[AccountFacts],
) -> dict[str, dict]:
    """Seat utilisation, DAU %, WAU %, stickiness, feature adoption, key-feature adoption and
    usage trend as of ``end - 1 day``. ``facts`` must carry MRR on ``end - 1`` and seats on
    that day (see ``contract_facts``). Five queries (four without KEY_FEATURES)."""
    as_of = end - dt.timedelta(days=1)
    events, in_window, _ = _windows(accounts, end=end)

    # 1. per account: known users, active users and events in the window and the one before
    per_account = usage_by_account(accounts, end=end)
    known = sum(row["known"] for row in per_account.values())
    mau = sum(row["active"] for row in per_account.values())
    previous_mau = sum(row["previous_active"] for row in per_account.values())
    events_now = sum(row["events"] for row in per_account.values())
    events_before = sum(row["previous_events"] for row in per_account.values())

    # 2. DAU: the mean over the window's days of the daily active users (days without events
    #    count as 0), from the rollup
    daily_sum = (
        in_scope(UsageDaily.objects.all(), accounts)
        .filter(day__gt=as_of - dt.timedelta(days=WINDOW_DAYS), day__lte=as_of)
        .aggregate(users=Sum("active_users", default=0))["users"]
    )
    dau = Decimal(daily_sum) / WINDOW_DAYS

    # 3. WAU: distinct (account, user) pairs per week over the last four weeks, averaged
    week_starts = [midnight(end - dt.timedelta(days=7 * (k + 1))) for k in range(WEEKS)]
    weekly = events.filter(HAS_USER, occurred_at__gte=week_starts[-1]).aggregate(
        **{
            f"w{k}": Count(
                _user_key(),
                distinct=True,
                filter=Q(occurred_at__gte=ws, occurred_at__lt=ws + dt.timedelta(days=7)),
            )
            for k, ws in enumerate(week_starts)
        }
    )
    wau = Decimal(sum(weekly.values())) / WEEKS

    # seat utilisation: accounts with licensed seats on the as-of day
    seated = [f for f in facts if f.seats > 0]
    seats = sum(f.seats for f in seated)
    seated_active = sum(per_account.get(f.id, {}).get("active", 0) for f in seated)

    # 4. feature adoption per event name, over the window
    features = [
        {
            "event": row["event"],
            "users": row["users"],
            "adoption": pct(row["users"], mau),
        }
        for row in events.filter(in_window, HAS_USER)
        .values("event")
        .order_by()
        .annotate(users=Count(_user_key(), distinct=True))
        .order_by("-users", "event")
    ]

    return {
        "seat_utilisation": kpi(
            pct(seated_active, seats),
            "%",
            active_users_30d=seated_active,
            licensed_seats=seats,
            accounts_with_seats=len(seated),
            as_of=as_of,
        ),
        "dau_pct": kpi(pct(dau, known), "%", dau=dau, known_users=known),
        "wau_pct": kpi(pct(wau, known), "%", wau=wau, known_users=known),
        "stickiness": kpi(pct(dau, mau), "%", dau=dau, mau=mau),
        "feature_adoption": kpi(
            {row["event"]: row["adoption"] for row in features},
            "% per feature",
            active_users_30d=mau,
            users={row["event"]: row["users"] for row in features},
        ),
        "key_feature_adoption": _key_feature_adoption(accounts, facts, end=end),
        "usage_trend_events": kpi(
            pct(events_now - events_before, events_before),
            "%",
            events_30d=events_now,
            events_previous_30d=events_before,
        ),
        "usage_trend_active_users": kpi(
            pct(mau - previous_mau, previous_mau),
            "%",
            active_users_30d=mau,
            active_users_previous_30d=previous_mau,
        ),
    }


def _key_feature_adoption(accounts, facts, *, end: dt.date) -> dict:
    """Per account: key features used in 30 days / key features defined × 100; the value is
    the mean over the accounts that are customers on the as-of day. None without
    KEY_FEATURES or without customers."""
    as_of = end - dt.timedelta(days=1)
    key_features = list(settings.KEY_FEATURES)
    customers = [f for f in facts if f.customer_on(as_of)]
    if not key_features or not customers:
        return kpi(None, "%", key_features=key_features, customers=len(customers))
    used = key_features_used(accounts, end=end)
    shares = [pct(used.get(f.id, 0), len(key_features)) for f in customers]
    return kpi(
        sum(shares, ZERO) / len(shares),
        "%",
        key_features=key_features,
        customers=len(customers),
        customers_using_all=sum(used.get(f.id, 0) == len(key_features) for f in customers),
    )


def ttfv(accounts: QuerySet[Account], *, start: dt.date, end: dt.date) -> dict:
    """Time to first value for the accounts whose ``customer_since`` is in ``[start, end)``:
    whole days from ``customer_since`` to the UTC day of their first FIRST_VALUE_EVENT before
    ``end`` (0 when it came first, e.g. during a trial). Medians overall, per segment and per
    cohort month; accounts without it yet are listed with the days elapsed by ``end``. One
    query."""
    event = settings.FIRST_VALUE_EVENT
    if not event:
        return kpi(None, "days", note="FIRST_VALUE_EVENT is not set")
    first = (
        UsageEvent.objects.filter(
            account=OuterRef("pk"), event=event, occurred_at__lt=midnight(end)
        )
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    rows = (
        accounts.filter(customer_since__gte=start, customer_since__lt=end)
        .annotate(first_value=Subquery(first))
        .values("id", "external_id", "name", "segment", "customer_since", "first_value")
        .order_by("customer_since", "id")
    )
    reached, not_yet = [], []
    by_segment, by_cohort = defaultdict(list), defaultdict(list)
    for row in rows:
        if row["first_value"] is None:
            days = (end - row["customer_since"]).days
            not_yet.append(
                {
                    "id": row["id"],
                    "external_id": row["external_id"],
                    "name": row["name"],
                    "days": days,
                    "label": f"not yet ({days} days)",
                }
            )
            continue
        reached_on = row["first_value"].astimezone(dt.UTC).date()
        days = max(0, (reached_on - row["customer_since"]).days)
        reached.append(days)
        by_segment[row["segment"]].append(days)
        by_cohort[month_start(row["customer_since"]).strftime("%Y-%m")].append(days)
    return kpi(
        median(reached),
        "days",
        first_value_event=event,
        reached=len(reached),
        not_yet=not_yet,
        median_by_segment={segment: median(v) for segment, v in sorted(by_segment.items())},
        median_by_cohort={cohort: median(v) for cohort, v in sorted(by_cohort.items())},
    )
