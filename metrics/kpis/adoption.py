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
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum

from accounts.models import Account, Milestone, UsageDaily, UsageFeatureDaily, UsagePresence
from accounts.money import count_text
from config.db import beside_or_now, threads_possible

from .common import ZERO, in_scope, kpi, median, month_start, pct
from .revenue import AccountFacts, AsOf

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


# --- stored usage windows --------------------------------------------------------------------
#
# The direct read above is a pass over 60 days of presences: ~1 s per 10,000 accounts. The
# night stores its result per account (``metrics.UsageWindow``, ``UsageWindowFeature``) for
# the window ending the day after the night's as-of day, and ``usage_inputs`` sums those rows.
# Triggers delete an account's rows as soon as a usage day inside its window (or before it:
# known users) changes, so a row that is there equals the direct read; the accounts without
# one are read directly, and merged.

KEEP_WINDOW_ENDS = 3  # window ends whose rows a refresh keeps (older ones are deleted)
DIRECT_BY_ID = 2000  # up to this many accounts without a row: read them directly by id


def key_features_label() -> str:
    """The ``KEY_FEATURES`` a stored window's ``key_used`` counted, as stored."""
    return "\n".join(sorted(set(settings.KEY_FEATURES)))


_WINDOW_FIGURES = (
    "known",
    "active",
    "previous_active",
    "events",
    "previous_events",
    "week0",
    "week1",
    "week2",
    "week3",
    "daily_users",
    "key_used",
)


def usage_inputs(
    accounts: QuerySet[Account], *, end: dt.date, known: bool = True, features: bool = True
) -> UsageInputs:
    """The ``UsageInputs`` of ``accounts`` for the window ending with ``end``: equal to
    ``usage_inputs_direct``, read from the stored windows of ``end`` where the night wrote
    them (and no usage changed since), directly for the other accounts.

    Queries: one over the accounts of the scope and their stored rows, one for the feature
    users (none without ``features``), then ``usage_inputs_direct``'s for the accounts
    without a row, if any (all of them before the first night, or for an ``end`` no night
    stored)."""
    from metrics.models import UsageWindow, UsageWindowDay, UsageWindowFeature  # noqa: PLC0415

    figures = ", ".join(f"w.{name}" for name in _WINDOW_FIGURES)
    scope_sql, features_scope, scope_params = "", "", []
    if accounts.query.has_filters():
        try:
            inner, scope_params = accounts.values("pk").query.sql_with_params()
        except EmptyResultSet:
            return UsageInputs(end=end, per_account={}, features={}, cells={})
        scope_sql, features_scope = f"WHERE a.id IN ({inner})", f"AND f.account_id IN ({inner})"
    window, day = UsageWindow._meta.db_table, UsageWindowDay._meta.db_table
    # an account whose row is missing comes back with NULLs; a row of zeros (listed false)
    # is an account the direct read would not list: left out
    sql = (
        f"SELECT a.id, a.segment, a.owner_id, w.account_id, {figures} "  # noqa: S608
        f"FROM {Account._meta.db_table} a LEFT JOIN {window} w ON w.account_id = a.id "
        f"AND w.end_day = %s AND w.end_day IN (SELECT end_day FROM {day} "
        f"WHERE end_day = %s AND key_features = %s) {scope_sql}"
    )
    if scope_sql:
        sql += " AND (w.account_id IS NULL OR w.listed)"
    else:
        sql += " WHERE w.account_id IS NULL OR w.listed"
    with connection.cursor() as cursor:
        cursor.execute(sql, [end, end, key_features_label(), *scope_params])
        rows = cursor.fetchall()
    per_account: dict[int, dict] = {}
    cells: dict[int, tuple[str, int | None]] = {}
    missing: list[int] = []
    for account_id, segment, owner_id, stored, *values in rows:
        if stored is None:
            missing.append(account_id)
            continue
        (n_known, active, prev, events, prev_events, w0, w1, w2, w3, daily, key_used) = values
        if not known:
            n_known = 0
            if not any(values[1:]):  # listed for its known users only
                continue
        cells[account_id] = (segment, owner_id)
        per_account[account_id] = {
            "known": n_known,
            "active": active,
            "previous_active": prev,
            "events": events,
            "previous_events": prev_events,
            "weeks": [w0, w1, w2, w3],
            "daily_users": daily,
            "key_used": key_used,
        }
    if len(missing) == len(rows):  # nothing stored for this scope and end
        return usage_inputs_direct(accounts, end=end, known=known, features=features)

    by_cell: dict[tuple[str, int | None], dict[str, int]] = defaultdict(dict)
    if features and per_account:
        sql = (
            f"SELECT a.segment, a.owner_id, f.event, SUM(f.users) "  # noqa: S608
            f"FROM {UsageWindowFeature._meta.db_table} f JOIN {Account._meta.db_table} a "
            f"ON a.id = f.account_id WHERE f.end_day = %s "
            f"{features_scope} GROUP BY 1, 2, 3"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [end, *scope_params])
            for segment, owner_id, event, n in cursor.fetchall():
                by_cell[(segment, owner_id)][event] = int(n)
    if missing:
        if len(missing) <= DIRECT_BY_ID:
            rest = Account.objects.filter(pk__in=missing)
        else:
            rest = accounts.exclude(
                pk__in=UsageWindow.objects.filter(end_day=end).values("account_id")
            )
        extra = usage_inputs_direct(rest, end=end, known=known, features=features)
        per_account.update(extra.per_account)
        cells.update(extra.cells)
        for cell, users in extra.features.items():
            into = by_cell[cell]
            for event, n in users.items():
                into[event] = into.get(event, 0) + n
    return UsageInputs(end=end, per_account=per_account, features=dict(by_cell), cells=cells)


@dataclass
class UsageTotals:
    """What ``adoption_kpis`` reads, summed over the accounts of a scope: the usage figures
    of ``UsageInputs`` and, from the contracts on the as-of day, the licensed seats and the
    customers. ``UsageTotals.of`` sums them from per-account inputs; ``usage_totals`` has
    the database sum them from the stored usage windows."""

    known: int = 0
    active: int = 0
    previous_active: int = 0
    events: int = 0
    previous_events: int = 0
    daily_users: int = 0  # Σ UsageDaily.active_users over the window
    week_users: int = 0  # Σ over the last WEEKS weeks of each week's distinct users
    seats: int = 0  # licensed seats on the as-of day (accounts with seats)
    seated_accounts: int = 0  # accounts with licensed seats then
    seated_active: int = 0  # active users of those accounts
    # customers on the as-of day, by how many key features they used in the window
    key_used: dict[int, int] = field(default_factory=dict)
    features: dict[str, int] = field(default_factory=dict)  # event → users in the window

    @property
    def customers(self) -> int:
        return sum(self.key_used.values())

    def add_account(self, row: dict | None, *, seats: int, customer: bool) -> None:
        """Add one account: its ``UsageInputs.per_account`` row (None: no usage) and its
        seats and customer state on the as-of day."""
        row = row or _new_row()
        self.known += row["known"]
        self.active += row["active"]
        self.previous_active += row["previous_active"]
        self.events += row["events"]
        self.previous_events += row["previous_events"]
        self.daily_users += row["daily_users"]
        self.week_users += sum(row["weeks"])
        if seats > 0:
            self.seats += seats
            self.seated_accounts += 1
            self.seated_active += row["active"]
        if customer:
            self.key_used[row["key_used"]] = self.key_used.get(row["key_used"], 0) + 1

    def add_features(self, features: dict[tuple[str, int | None], dict[str, int]]) -> None:
        for users in features.values():
            for event, n in users.items():
                self.features[event] = self.features.get(event, 0) + n

    @classmethod
    def of(cls, usage: UsageInputs, on_day: AsOf) -> UsageTotals:
        """The totals of per-account ``usage`` and contracts ``on_day``."""
        totals = cls()
        customers = set(on_day.customers)
        for account_id in usage.per_account.keys() | on_day.seats.keys() | customers:
            totals.add_account(
                usage.per_account.get(account_id),
                seats=on_day.seats.get(account_id, 0),
                customer=account_id in customers,
            )
        totals.add_features(usage.features)
        return totals


def usage_totals(accounts: QuerySet[Account], *, end: dt.date, as_of: dt.date) -> UsageTotals:
    """The ``UsageTotals`` of ``accounts`` for the window ending with ``end`` and the
    contracts on ``as_of``: equal to ``UsageTotals.of(usage_inputs(...), <contracts on
    as_of>)``, but summed by the database where the night stored the accounts' windows, so
    no Python object per account.

    Queries: one over the scope's accounts, their stored window rows and their contracts
    covering ``as_of``, summed per (customer, key features used) and, for each account
    without a stored row, on a row of its own; one for the stored feature users (none if
    no account has a row); then ``usage_inputs_direct``'s for the accounts without a row,
    if any (all of them before the first night, or for an ``end`` no night stored)."""
    from metrics.models import UsageWindow, UsageWindowDay, UsageWindowFeature  # noqa: PLC0415

    from .revenue import contracts_on  # noqa: PLC0415

    totals = UsageTotals()
    scope_sql, features_scope, scope_params = "", "", []
    if accounts.query.has_filters():
        try:
            inner, scope_params = accounts.values("pk").query.sql_with_params()
        except EmptyResultSet:  # an empty scope (accounts.none(): a caller who sees nothing)
            return totals
        scope_sql, features_scope = f"WHERE a.id IN ({inner})", f"AND f.account_id IN ({inner})"
    contracts_sql, contracts_params = contracts_on(accounts, as_of).query.sql_with_params()
    window, day = UsageWindow._meta.db_table, UsageWindowDay._meta.db_table
    sums = ", ".join(
        f"SUM(w.{name})"
        for name in ("known", "active", "previous_active", "events", "previous_events")
    )
    # an account without a (valid) stored row comes back on a row of its own (``missing``),
    # with its seats and MRR, and is read directly below
    sql = (
        "SELECT CASE WHEN w.account_id IS NULL THEN a.id END AS missing, "  # noqa: S608
        "CASE WHEN s.mrr > 0 THEN 1 ELSE 0 END AS customer, "
        "COALESCE(w.key_used, 0) AS key_used, "
        "COUNT(w.account_id), "
        f"{sums}, SUM(w.daily_users), SUM(w.week0 + w.week1 + w.week2 + w.week3), "
        "SUM(CASE WHEN s.seats > 0 THEN s.seats ELSE 0 END), "
        "SUM(CASE WHEN s.seats > 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN s.seats > 0 THEN w.active ELSE 0 END) "
        f"FROM {Account._meta.db_table} a LEFT JOIN {window} w ON w.account_id = a.id "
        f"AND w.end_day = %s AND w.end_day IN (SELECT end_day FROM {day} "
        f"WHERE end_day = %s AND key_features = %s) "
        f"LEFT JOIN ({contracts_sql}) s ON s.account_id = a.id {scope_sql} "
        "GROUP BY 1, 2, 3"
    )
    params = [end, end, key_features_label(), *contracts_params, *scope_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    missing: dict[int, tuple[int, bool]] = {}  # account id → (seats, customer)
    stored = 0
    for missing_id, customer, key_used, n, *values in rows:
        known, active, prev, events, prev_events, daily, weekly, seats, seated, seated_active = (
            int(value or 0) for value in values
        )
        if missing_id is not None:
            missing[missing_id] = (seats, bool(customer))
            continue
        stored += n
        totals.known += known
        totals.active += active
        totals.previous_active += prev
        totals.events += events
        totals.previous_events += prev_events
        totals.daily_users += daily
        totals.week_users += weekly
        totals.seats += seats
        totals.seated_accounts += seated
        totals.seated_active += seated_active
        if customer:
            totals.key_used[key_used] = totals.key_used.get(key_used, 0) + n

    if stored:
        sql = (
            f"SELECT f.event, SUM(f.users) FROM {UsageWindowFeature._meta.db_table} f "  # noqa: S608
            f"WHERE f.end_day = %s {features_scope} GROUP BY f.event"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [end, *scope_params])
            totals.features = {event: int(n) for event, n in cursor.fetchall()}
    if missing:
        if not stored:  # nothing stored for this scope and end
            rest = accounts
        elif len(missing) <= DIRECT_BY_ID:
            rest = Account.objects.filter(pk__in=list(missing))
        else:
            rest = accounts.exclude(
                pk__in=UsageWindow.objects.filter(end_day=end).values("account_id")
            )
        usage = usage_inputs_direct(rest, end=end)
        for account_id, (seats, customer) in missing.items():
            totals.add_account(usage.per_account.get(account_id), seats=seats, customer=customer)
        totals.add_features(usage.features)
    return totals


def _feature_triples(accounts: QuerySet[Account], days: Days) -> QuerySet:
    """The distinct (account, user, event) presences of the window."""
    return (
        in_scope(UsagePresence.objects.all(), accounts)
        .filter(day__gte=days.window, day__lt=days.end)
        .values("account_id", "user_id", "event")
        .order_by()
        .distinct()
    )


def usage_inputs_direct(
    accounts: QuerySet[Account],
    *,
    end: dt.date,
    known: bool = True,
    features: bool = True,
) -> UsageInputs:
    """Read the ``UsageInputs`` of ``accounts`` for the window ending with ``end``, from the
    rollups and presences (no raw events, no stored windows). Five queries (one less without
    KEY_FEATURES, one less each without ``known`` or ``features``, which health scoring does
    not use: their figures are then 0 and ``features`` empty):

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
        select = "a.segment, a.owner_id, q.event, count(*)"
        for segment, owner_id, event, n in _rows(
            _feature_triples(accounts, days), select, "1, 2, 3"
        ):
            by_cell[(segment, owner_id)][event] = n
    for account_id, n in key_features_used(accounts, end=end).items():
        if account_id in per_account:  # it has events in the window, so it has a row
            per_account[account_id]["key_used"] = n
    return UsageInputs(end=end, per_account=per_account, features=dict(by_cell), cells=cells)


def usage_windows_refresh(*, end: dt.date) -> dict[str, int]:
    """Store the usage windows ending with ``end`` (``metrics.UsageWindow`` and
    ``UsageWindowFeature``) for every account that has none yet: a row per account (zeros
    for an account without usage), from ``usage_inputs_direct``. The rows of other window
    ends but the last ``KEEP_WINDOW_ENDS`` are deleted; rows counted with other
    ``KEY_FEATURES`` are replaced. One transaction under every rollup lock, so no load
    changes usage between the read and the write (a load after it deletes the rows it makes
    stale, by trigger). The night calls it before the health step."""
    from accounts.intake import events as intake_events  # noqa: PLC0415
    from metrics.models import UsageWindow, UsageWindowDay, UsageWindowFeature  # noqa: PLC0415

    label = key_features_label()
    # the direct read is reads only: on PostgreSQL, when this transaction is the outermost
    # (its own writes, old window ends, are nothing the read looks at), it runs on a second
    # connection while this one counts and writes the feature users (beside_or_now)
    aside = threads_possible()
    with transaction.atomic():
        intake_events.lock_all_rollups()
        ends = dict(UsageWindowDay.objects.values_list("end_day", "key_features"))
        valid = ends.get(end) == label
        kept = sorted((day for day in ends if day != end), reverse=True)[: KEEP_WINDOW_ENDS - 1]
        drop = [day for day in ends if day not in kept and not (day == end and valid)]
        if drop:
            UsageWindow.objects.filter(end_day__in=drop).delete()
            UsageWindowFeature.objects.filter(end_day__in=drop).delete()
            UsageWindowDay.objects.filter(end_day__in=drop).delete()
        if valid:  # rows of this end were stored before: add the accounts without one
            stored = UsageWindow.objects.filter(end_day=end).values("account_id")
            scope = Account.objects.exclude(pk__in=stored)
        else:
            UsageWindowDay.objects.create(end_day=end, key_features=label)
            scope = Account.objects.all()
        ids = list(scope.order_by("pk").values_list("pk", flat=True))  # the key's order
        if not ids:
            return {"end_day": end.isoformat(), "accounts": 0, "features": 0}
        # the direct read, ~5 s of PostgreSQL at 100,000 accounts, beside the feature users'
        # INSERT, ~4.5 s, on a 2-core machine
        read = beside_or_now(
            lambda: usage_inputs_direct(scope, end=end, features=False), aside, name="usage-read"
        )
        day = end.isoformat()  # COPY's text and SQLite's storage of a date
        # the feature users per account, counted and written by the database in one statement
        # (before the windows below are written: ``scope`` is the accounts without one). Counted
        # as count(DISTINCT user) per (account, event), not as a DISTINCT of the (account,
        # user, event) triples grouped again: PostgreSQL then reads the presences in their key
        # order and sorts one account's few rows at a time, where the triples needed a hash
        # table of every triple of the book (2.4M at 100k accounts, spilled to disk), and the
        # rows come out in the target's key order (docs/benchmarks.md: 8.2 → 4.4 s of CPU)
        window = Days.ending(end).window
        users, params = (
            in_scope(UsagePresence.objects.all(), scope)
            .filter(day__gte=window, day__lt=end)
            .values("account_id", "event")
            .order_by()
            .annotate(n=Count("user_id", distinct=True))
            .query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {UsageWindowFeature._meta.db_table} "  # noqa: S608
                "(account_id, end_day, event, users) "
                f"SELECT q.account_id, %s, q.event, q.n FROM ({users}) q",
                [day, *params],
            )
            features = cursor.rowcount
        usage = read()  # the rows' figures: the direct read, done by now or waited for
        zeros = [0] * len(_WINDOW_FIGURES)
        rows = []
        for account_id in ids:
            r = usage.per_account.get(account_id)
            if r is None:
                rows.append((account_id, day, False, *zeros))
                continue
            rows.append(
                (
                    account_id,
                    day,
                    True,
                    r["known"],
                    r["active"],
                    r["previous_active"],
                    r["events"],
                    r["previous_events"],
                    *r["weeks"],
                    r["daily_users"],
                    r["key_used"],
                )
            )
        _insert(
            UsageWindow._meta.db_table, ["account_id", "end_day", "listed", *_WINDOW_FIGURES], rows
        )
        if connection.vendor == "postgresql":  # fresh statistics for the first reads
            with connection.cursor() as cursor:
                cursor.execute(
                    f"ANALYZE {UsageWindow._meta.db_table}, {UsageWindowFeature._meta.db_table}"
                )
    return {"end_day": end.isoformat(), "accounts": len(rows), "features": features}


def _insert(table: str, columns: list[str], rows: list[tuple]) -> None:
    """Append ``rows`` to ``table``: ``COPY`` on PostgreSQL, ``executemany`` elsewhere."""
    if not rows:
        return
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608


def adoption_kpis(
    accounts: QuerySet[Account],
    *,
    end: dt.date,
    facts: Sequence[AccountFacts] | AsOf | None = None,
    usage: UsageInputs | None = None,
    totals: UsageTotals | None = None,
) -> dict[str, dict]:
    """Seat utilisation, DAU %, WAU %, stickiness, feature adoption, key-feature adoption and
    usage trend as of ``end - 1 day``, from the scope's ``totals`` (``usage_totals``) when
    given. Otherwise from per-account inputs: ``facts`` must carry MRR on ``end - 1`` and
    seats on that day (see ``contract_facts``); ``usage``: the scope's ``UsageInputs`` when
    already read (for several scopes at once), else read here (``usage_inputs``)."""
    as_of = end - dt.timedelta(days=1)
    if totals is None:
        if facts is None:
            raise TypeError("adoption_kpis needs totals, or facts on the as-of day")
        if usage is None:
            usage = usage_inputs(accounts, end=end)
        totals = UsageTotals.of(usage, AsOf.of(facts, as_of))
    known, mau, previous_mau = totals.known, totals.active, totals.previous_active
    events_now, events_before = totals.events, totals.previous_events

    # DAU: the mean over the window's days of the daily active users (days without events
    # count as 0), from the rollup
    dau = Decimal(totals.daily_users) / WINDOW_DAYS
    # WAU: distinct (account, user) pairs per week over the last four weeks, averaged
    wau = Decimal(totals.week_users) / WEEKS

    # seat utilisation: accounts with licensed seats on the as-of day
    seats, seated_active = totals.seats, totals.seated_active

    # feature adoption per event name, over the window
    features = [
        {"event": event, "users": n, "adoption": pct(n, mau)}
        for event, n in sorted(totals.features.items(), key=lambda item: (-item[1], item[0]))
    ]

    return {
        "seat_utilisation": kpi(
            pct(seated_active, seats),
            "%",
            active_users_30d=seated_active,
            licensed_seats=seats,
            accounts_with_seats=totals.seated_accounts,
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
        "key_feature_adoption": _key_feature_adoption(totals.key_used),
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


def _key_feature_adoption(key_used: dict[int, int]) -> dict:
    """Per account: key features used in 30 days / key features defined × 100; the value is
    the mean over the accounts that are customers on the as-of day (``key_used``: how many
    of them used n key features, for each n). The shares are added one customer at a time
    in ascending order, so the last digit does not depend on the order the accounts came
    in. None without KEY_FEATURES or without customers."""
    key_features = list(settings.KEY_FEATURES)
    customers = sum(key_used.values())
    if not key_features or not customers:
        return kpi(None, "%", key_features=key_features, customers=customers)
    total = ZERO
    for n in sorted(key_used):
        share = pct(n, len(key_features))
        for _ in range(key_used[n]):
            total += share
    return kpi(
        total / customers,
        "%",
        key_features=key_features,
        customers=customers,
        customers_using_all=key_used.get(len(key_features), 0),
    )


def ttfv(accounts: QuerySet[Account], *, start: dt.date, end: dt.date) -> dict:
    """Time to first value for the accounts whose ``customer_since`` is in ``[start, end)``:
    whole days from ``customer_since`` to the first value before ``end`` (0 when it came
    first, e.g. during a trial). The first value is the earlier of the UTC day of the first
    FIRST_VALUE_EVENT and the day a CSM recorded as reached (``Milestone`` of kind
    ``first_value``, only one dated before ``end``). Without FIRST_VALUE_EVENT the
    milestones alone count; when there is neither (no event configured and no milestone on
    any of these accounts) the value is None with a note saying so. Medians overall, per
    segment and per cohort month; ``reached_by`` counts which source gave each account its
    day (on the same day: the event); accounts without it yet are listed with the days
    elapsed by ``end``. One query."""
    event = settings.FIRST_VALUE_EVENT
    # the day a CSM recorded: one row per account at most (unique account and kind)
    milestone = Milestone.objects.filter(
        account=OuterRef("pk"), kind=Milestone.Kind.FIRST_VALUE, reached_on__lt=end
    ).values("reached_on")[:1]
    annotations = {"milestone_on": Subquery(milestone)}
    if event:
        # the first UTC day with such an event (with or without a user id): the feature rollup
        annotations["event_on"] = Subquery(
            UsageFeatureDaily.objects.filter(account=OuterRef("pk"), event=event, day__lt=end)
            .order_by("day")
            .values("day")[:1]
        )
    rows = (
        accounts.filter(customer_since__gte=start, customer_since__lt=end)
        .annotate(**annotations)
        .values("id", "external_id", "name", "segment", "customer_since", *annotations)
        .order_by("customer_since", "id")
    )
    reached, not_yet = [], []
    reached_by = {"event": 0, "milestone": 0}
    by_segment, by_cohort = defaultdict(list), defaultdict(list)
    for row in rows:
        event_on, milestone_on = row.get("event_on"), row["milestone_on"]
        if event_on is None and milestone_on is None:
            days = (end - row["customer_since"]).days
            not_yet.append(
                {
                    "id": row["id"],
                    "external_id": row["external_id"],
                    "name": row["name"],
                    "days": days,
                    "label": f"not yet ({count_text(days, 'day')})",
                }
            )
            continue
        if milestone_on is not None and (event_on is None or milestone_on < event_on):
            reached_on, source = milestone_on, "milestone"
        else:
            reached_on, source = event_on, "event"
        reached_by[source] += 1
        days = max(0, (reached_on - row["customer_since"]).days)
        reached.append(days)
        by_segment[row["segment"]].append(days)
        by_cohort[month_start(row["customer_since"]).strftime("%Y-%m")].append(days)
    if not event and not reached:
        # nothing measures first value here: listing every account as "not yet" would
        # blame the customers for a missing setting
        return kpi(
            None,
            "days",
            # read by CSMs on the dashboard: words, not the setting's name (``first_value_event``
            # None tells an admin which setting; docs/metrics.md names it)
            note=(
                "no first-value event chosen, and no account that became a customer in "
                "the period has a first value recorded"
            ),
            first_value_event=None,
            reached=0,
            reached_by=reached_by,
            not_yet=[],
        )
    return kpi(
        median(reached),
        "days",
        first_value_event=event or None,
        reached=len(reached),
        reached_by=reached_by,
        not_yet=not_yet,
        median_by_segment={segment: median(v) for segment, v in sorted(by_segment.items())},
        median_by_cohort={cohort: median(v) for cohort, v in sorted(by_cohort.items())},
    )
