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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import CharField, Count, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat

from accounts.intake import partitions
from accounts.models import Account, UsageDaily, UsageEvent, UsagePresence

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


@dataclass
class UsageInputs:
    """What ``adoption_kpis`` reads from the events and rollups, per account (and feature
    users per (segment, owner) cell), for the 30-day window ending with ``end``: read once,
    it serves any number of scopes made of those accounts (the nightly KPI snapshots: the
    book, each segment, each owner). Every figure is a sum over accounts, because a user is a
    user *within an account* (the same user id in two accounts is two users)."""

    end: dt.date
    # account id → known, active, previous_active, events, previous_events, weeks (distinct
    # users in each of the last WEEKS weeks), daily_users (Σ UsageDaily.active_users over
    # the window), key_used (key features used in the window)
    per_account: dict[int, dict]
    # (segment, owner id) → event → users who sent it in the window
    features: dict[tuple[str, int | None], dict[str, int]]
    # account id → (segment, owner id), for the accounts in ``per_account``
    cells: dict[int, tuple[str, int | None]]

    def restricted(self, keep: Callable[[str, int | None], bool]) -> UsageInputs:
        """The inputs of the accounts whose (segment, owner id) ``keep`` accepts."""
        return UsageInputs(
            end=self.end,
            per_account={a: row for a, row in self.per_account.items() if keep(*self.cells[a])},
            features={cell: users for cell, users in self.features.items() if keep(*cell)},
            cells={a: cell for a, cell in self.cells.items() if keep(*cell)},
        )


def usage_inputs(accounts: QuerySet[Account], *, end: dt.date) -> UsageInputs:
    """Read the ``UsageInputs`` of ``accounts`` for the window ending with ``end``. Four
    queries (three without KEY_FEATURES):

    1. one pass over the events before ``end``: grouped by (account, user) first, counting
       each pair's events in the window, the 30 days before and each of the last four weeks,
       then by account (known users, active users, events, weekly users): one sort of the
       events instead of one per distinct count;
    2. daily active users summed over the window, per account, from ``UsageDaily``;
    3. feature users in the window per (segment, owner, event);
    4. key features used per account (``key_features_used``)."""
    events, in_window, in_previous = _windows(accounts, end=end)
    week_starts = [midnight(end - dt.timedelta(days=7 * (k + 1))) for k in range(WEEKS)]
    weeks = {
        f"w{k}": Count("pk", filter=Q(occurred_at__gte=ws, occurred_at__lt=ws + dt.timedelta(7)))
        for k, ws in enumerate(week_starts)
    }
    pairs = (
        events.values("account_id", "user_id")
        .order_by()
        .annotate(
            n_now=Count("pk", filter=in_window), n_prev=Count("pk", filter=in_previous), **weeks
        )
    )
    try:
        inner, params = pairs.query.sql_with_params()
    except EmptyResultSet:  # an empty scope (accounts.none(): a caller who sees nothing)
        return UsageInputs(end=end, per_account={}, features={}, cells={})

    def users(condition: str) -> str:
        return f"SUM(CASE WHEN user_id <> '' AND {condition} THEN 1 ELSE 0 END)"

    sql = (
        "SELECT p.account_id, a.segment, a.owner_id, "
        f"{users('1 = 1')}, {users('n_now > 0')}, {users('n_prev > 0')}, "
        "SUM(n_now), SUM(n_prev), "
        + ", ".join(users(f"w{k} > 0") for k in range(WEEKS))
        + f" FROM ({inner}) p JOIN {Account._meta.db_table} a ON a.id = p.account_id"
        " GROUP BY p.account_id, a.segment, a.owner_id"
    )
    per_account: dict[int, dict] = {}
    cells: dict[int, tuple[str, int | None]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for account_id, segment, owner_id, known, active, prev, n_now, n_prev, *wk in cursor:
            cells[account_id] = (segment, owner_id)
            per_account[account_id] = {
                "known": int(known),
                "active": int(active),
                "previous_active": int(prev),
                "events": int(n_now),
                "previous_events": int(n_prev),
                "weeks": [int(w) for w in wk],
                "daily_users": 0,
                "key_used": 0,
            }
    as_of = end - dt.timedelta(days=1)
    daily = (
        in_scope(UsageDaily.objects.all(), accounts)
        .filter(day__gt=as_of - dt.timedelta(days=WINDOW_DAYS), day__lte=as_of)
        .values("account_id")
        .order_by()
        .annotate(users=Sum("active_users"))
        .values_list("account_id", "users")
    )
    for account_id, n in daily:
        if account_id in per_account:  # a rollup row without its events is not counted
            per_account[account_id]["daily_users"] = n
    # feature users: the distinct (account, user, event) triples of the window, counted per
    # (segment, owner, event)
    triples = events.filter(in_window, HAS_USER).values("account_id", "user_id", "event")
    inner, params = triples.order_by().distinct().query.sql_with_params()
    features: dict[tuple[str, int | None], dict[str, int]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.segment, a.owner_id, t.event, count(*) FROM ({inner}) t "
            f"JOIN {Account._meta.db_table} a ON a.id = t.account_id GROUP BY 1, 2, 3",
            params,
        )
        for segment, owner_id, event, n in cursor:
            features[(segment, owner_id)][event] = n
    for account_id, n in key_features_used(accounts, end=end).items():
        per_account[account_id]["key_used"] = n
    if partitions.raw_events_since() is not None:
        _known_users_from_presences(accounts, end=end, per_account=per_account, cells=cells)
    return UsageInputs(end=end, per_account=per_account, features=dict(features), cells=cells)


def _known_users_from_presences(
    accounts: QuerySet[Account], *, end: dt.date, per_account: dict, cells: dict
) -> None:
    """With a raw-event retention, "known users" (ever, before ``end``) come from the daily
    presences, which are kept for ever, instead of the raw events, which are not: the same
    users (one presence per user, day and event), whatever the retention dropped. An account
    whose raw events are all gone still counts its users. One query."""
    rows = (
        in_scope(UsagePresence.objects.all(), accounts)
        .filter(day__lt=end)
        .values_list("account_id", "account__segment", "account__owner_id")
        .order_by()
        .annotate(n=Count("user_id", distinct=True))
    )
    for row in per_account.values():
        row["known"] = 0
    for account_id, segment, owner_id, n in rows:
        if account_id not in per_account:
            cells[account_id] = (segment, owner_id)
            per_account[account_id] = {
                "known": 0,
                "active": 0,
                "previous_active": 0,
                "events": 0,
                "previous_events": 0,
                "weeks": [0] * WEEKS,
                "daily_users": 0,
                "key_used": 0,
            }
        per_account[account_id]["known"] = n


def adoption_kpis(
    accounts: QuerySet[Account],
    *,
    end: dt.date,
    facts: Sequence[AccountFacts],
    usage: UsageInputs | None = None,
) -> dict[str, dict]:
    """Seat utilisation, DAU %, WAU %, stickiness, feature adoption, key-feature adoption and
    usage trend as of ``end - 1 day``. ``facts`` must carry MRR on ``end - 1`` and seats on
    that day (see ``contract_facts``). ``usage``: the scope's ``UsageInputs`` when already
    read (for several scopes at once); otherwise read here (``usage_inputs``: four queries,
    three without KEY_FEATURES)."""
    as_of = end - dt.timedelta(days=1)
    if usage is None:
        usage = usage_inputs(accounts, end=end)
    rows = usage.per_account.values()
    known = sum(row["known"] for row in rows)
    mau = sum(row["active"] for row in rows)
    previous_mau = sum(row["previous_active"] for row in rows)
    events_now = sum(row["events"] for row in rows)
    events_before = sum(row["previous_events"] for row in rows)

    # DAU: the mean over the window's days of the daily active users (days without events
    # count as 0), from the rollup
    dau = Decimal(sum(row["daily_users"] for row in rows)) / WINDOW_DAYS
    # WAU: distinct (account, user) pairs per week over the last four weeks, averaged
    wau = Decimal(sum(sum(row["weeks"]) for row in rows)) / WEEKS

    # seat utilisation: accounts with licensed seats on the as-of day
    seated = [f for f in facts if f.seats > 0]
    seats = sum(f.seats for f in seated)
    seated_active = sum(usage.per_account.get(f.id, {}).get("active", 0) for f in seated)

    # feature adoption per event name, over the window
    per_event: dict[str, int] = defaultdict(int)
    for users in usage.features.values():
        for event, n in users.items():
            per_event[event] += n
    features = [
        {"event": event, "users": n, "adoption": pct(n, mau)}
        for event, n in sorted(per_event.items(), key=lambda item: (-item[1], item[0]))
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
        "key_feature_adoption": _key_feature_adoption(usage, facts, end=end),
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


def _key_feature_adoption(usage: UsageInputs, facts, *, end: dt.date) -> dict:
    """Per account: key features used in 30 days / key features defined × 100; the value is
    the mean over the accounts that are customers on the as-of day. None without
    KEY_FEATURES or without customers."""
    as_of = end - dt.timedelta(days=1)
    key_features = list(settings.KEY_FEATURES)
    customers = [f for f in facts if f.customer_on(as_of)]
    if not key_features or not customers:
        return kpi(None, "%", key_features=key_features, customers=len(customers))
    used = {a: row["key_used"] for a, row in usage.per_account.items()}
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
