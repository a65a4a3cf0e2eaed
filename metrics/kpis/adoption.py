"""Adoption and engagement from usage, as of the last day of a period.

The 30-day window ends with the period: for ``[start, end)`` it is the UTC days
``end - 30 … end - 1``, i.e. events with ``end - 30 days <= occurred_at < end``. Active users
are distinct non-empty ``user_id`` values per account; an event without a user id counts as
an event but not as a user.

Nothing here reads the raw events: the intake keeps, per UTC day, the events of each account
(``UsageDaily``), of each feature (``UsageFeatureDaily``) and which users used which feature
(``UsagePresence``, one row per account, day, user and event name), all equal to what the
events say (the nightly reconcile checks them), and the first day of each user
(``metrics.UsageUser``, from the presences). Every figure below is an exact count over
those: a user was active in a window of whole UTC days iff they have a presence on one of
its days; a user is known by ``end`` iff their first day is before it.
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
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum

from accounts.models import Account, UsageDaily, UsageFeatureDaily, UsagePresence

from .common import ZERO, in_scope, kpi, median, month_start, pct
from .revenue import AccountFacts

WINDOW_DAYS = 30
WEEKS = 4  # WAU: the mean over the last four whole weeks of the window (28 days)


@dataclass(frozen=True)
class Days:
    """The UTC days a usage read looks at, for a window ending with ``end`` (exclusive):
    the window ``[window, end)``, the 30 days before it ``[previous, window)`` and the
    starts of the last ``WEEKS`` whole weeks (``weeks[k]``: ``[weeks[k], weeks[k] + 7)``,
    most recent first)."""

    end: dt.date
    window: dt.date
    previous: dt.date
    weeks: tuple[dt.date, ...]

    @classmethod
    def ending(cls, end: dt.date) -> Days:
        return cls(
            end=end,
            window=end - dt.timedelta(days=WINDOW_DAYS),
            previous=end - dt.timedelta(days=2 * WINDOW_DAYS),
            weeks=tuple(end - dt.timedelta(days=7 * (k + 1)) for k in range(WEEKS)),
        )


def key_features_used(accounts: QuerySet[Account], *, end: dt.date) -> dict[int, int]:
    """One query (none without KEY_FEATURES): per account, how many of the KEY_FEATURES it
    sent in the 30-day window ending with ``end`` (from ``UsageFeatureDaily``, which counts
    events with and without a user id, like the events themselves)."""
    key_features = list(settings.KEY_FEATURES)
    if not key_features:
        return {}
    days = Days.ending(end)
    return dict(
        in_scope(UsageFeatureDaily.objects.all(), accounts)
        .filter(day__gte=days.window, day__lt=end, event__in=key_features, events__gt=0)
        .values("account_id")
        .order_by()
        .annotate(n=Count("event", distinct=True))
        .values_list("account_id", "n")
    )


@dataclass
class UsageInputs:
    """What ``adoption_kpis`` reads from the usage rollups, per account (and feature users
    per (segment, owner) cell), for the 30-day window ending with ``end``: read once, it
    serves any number of scopes made of those accounts (the nightly KPI snapshots: the book,
    each segment, each owner). Every figure is a sum over accounts, because a user is a user
    *within an account* (the same user id in two accounts is two users)."""

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


def _rows(queryset: QuerySet, select: str, group: str) -> list[tuple]:
    """``SELECT {select} FROM (queryset) q JOIN accounts_account a ON a.id = q.account_id
    GROUP BY {group}``: one grouped pass over the (already grouped) rows of ``queryset``,
    with each account's segment and owner. [] for an empty scope."""
    try:
        inner, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # an empty scope (accounts.none(): a caller who sees nothing)
        return []
    sql = (
        f"SELECT {select} FROM ({inner}) q JOIN {Account._meta.db_table} a "
        f"ON a.id = q.account_id GROUP BY {group}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _new_row() -> dict:
    return {
        "known": 0,
        "active": 0,
        "previous_active": 0,
        "events": 0,
        "previous_events": 0,
        "weeks": [0] * WEEKS,
        "daily_users": 0,
        "key_used": 0,
    }


def usage_inputs(
    accounts: QuerySet[Account], *, end: dt.date, known: bool = True, features: bool = True
) -> UsageInputs:
    """Read the ``UsageInputs`` of ``accounts`` for the window ending with ``end``, from the
    rollups (no raw events). Five queries (one less without KEY_FEATURES, one less each
    without ``known`` or ``features``, which health scoring does not use: their figures are
    then 0 and ``features`` empty):

    1. per account, its distinct users in the window, the 30 days before it and each of the
       last four weeks, from ``UsagePresence``: one pass over the presences of 60 days;
    2. per account, events in the window and the 30 days before, and daily active users
       summed over the window, from ``UsageDaily``;
    3. known users per account: users whose first day is before ``end`` (``UsageUser``);
    4. feature users in the window per (segment, owner, event): the distinct (account, user,
       event) presences of the window;
    5. key features used per account (``key_features_used``)."""
    days = Days.ending(end)
    per_account: dict[int, dict] = {}
    cells: dict[int, tuple[str, int | None]] = {}

    def row(account_id: int, segment: str, owner_id: int | None) -> dict:
        found = per_account.get(account_id)
        if found is None:
            cells[account_id] = (segment, owner_id)
            found = per_account[account_id] = _new_row()
        return found

    def users(since: dt.date, until: dt.date) -> Count:
        return Count("user_id", distinct=True, filter=Q(day__gte=since, day__lt=until))

    # grouped by account in the order of the presences' primary key (account, day, …): an
    # index-only scan, and each distinct count sorts one account's few rows, where grouping
    # by (account, user) first needed a hash table of every user of the book
    weeks = {f"w{k}": users(w, w + dt.timedelta(days=7)) for k, w in enumerate(days.weeks)}
    present = (
        in_scope(UsagePresence.objects.all(), accounts)
        .filter(day__gte=days.previous, day__lt=end)
        .values("account_id")
        .order_by()
        .annotate(
            active=users(days.window, end), previous=users(days.previous, days.window), **weeks
        )
    )
    group = "q.account_id, a.segment, a.owner_id"
    select = f"{group}, SUM(active), SUM(previous), " + ", ".join(
        f"SUM(w{k})" for k in range(WEEKS)
    )
    for account_id, segment, owner_id, active, prev, *wk in _rows(present, select, group):
        r = row(account_id, segment, owner_id)
        r["active"], r["previous_active"] = int(active), int(prev)
        r["weeks"] = [int(w) for w in wk]

    in_days = (
        in_scope(UsageDaily.objects.all(), accounts)
        .filter(day__gte=days.previous, day__lt=end)
        .values("account_id")
        .order_by()
        .annotate(
            n_now=Sum("events", filter=Q(day__gte=days.window), default=0),
            n_prev=Sum("events", filter=Q(day__lt=days.window), default=0),
            u_now=Sum("active_users", filter=Q(day__gte=days.window), default=0),
        )
    )
    select = f"{group}, SUM(n_now), SUM(n_prev), SUM(u_now)"
    for account_id, segment, owner_id, n_now, n_prev, u_now in _rows(in_days, select, group):
        r = row(account_id, segment, owner_id)
        r["events"], r["previous_events"] = int(n_now), int(n_prev)
        r["daily_users"] = int(u_now)

    if known:
        from metrics.models import UsageUser  # the kpis package does not import models

        ever = (
            in_scope(UsageUser.objects.all(), accounts)
            .filter(first_day__lt=end)
            .values("account_id")
            .order_by()
            .annotate(n=Count("user_id"))
        )
        for account_id, segment, owner_id, n in _rows(ever, f"{group}, SUM(n)", group):
            row(account_id, segment, owner_id)["known"] = int(n)

    by_cell: dict[tuple[str, int | None], dict[str, int]] = defaultdict(dict)
    if features:
        triples = (
            in_scope(UsagePresence.objects.all(), accounts)
            .filter(day__gte=days.window, day__lt=end)
            .values("account_id", "user_id", "event")
            .order_by()
            .distinct()
        )
        select = "a.segment, a.owner_id, q.event, count(*)"
        for segment, owner_id, event, n in _rows(triples, select, "1, 2, 3"):
            by_cell[(segment, owner_id)][event] = n
    for account_id, n in key_features_used(accounts, end=end).items():
        if account_id in per_account:  # it has events in the window, so it has a row
            per_account[account_id]["key_used"] = n
    return UsageInputs(end=end, per_account=per_account, features=dict(by_cell), cells=cells)


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
    # the first UTC day with such an event (with or without a user id): the feature rollup
    first = (
        UsageFeatureDaily.objects.filter(account=OuterRef("pk"), event=event, day__lt=end)
        .order_by("day")
        .values("day")[:1]
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
        reached_on = row["first_value"]
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
