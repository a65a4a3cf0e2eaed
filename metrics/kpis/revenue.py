"""Revenue and retention: MRR on a day, MRR movements, retention rates, lifetime and CLV,
renewal rate and the cohort retention table.

Everything starts from one aggregate query over contracts (``contract_facts``): per account,
the MRR on each day we need, licensed seats on one day, and the first day it paid. The
classification into movements then runs in Python over those rows, which is linear in the
number of accounts but never issues a query per account.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    DateField,
    Exists,
    ExpressionWrapper,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)

from accounts.models import Account, Contract

from .common import (
    ZERO,
    add_months,
    covers,
    exact,
    in_scope,
    kpi,
    money,
    month_start,
    pct,
    ratio,
)

MOVEMENTS = ("new", "reactivation", "expansion", "contraction", "churn")
BITMASK_DAYS = 62  # up to this many days, PostgreSQL keeps an account's daily flags in a bigint


@dataclass
class AccountFacts:
    """What the contracts say about one account (accounts without contracts are absent)."""

    id: int
    external_id: str
    name: str
    segment: str
    mrr: dict[dt.date, Decimal]  # MRR on each requested day
    seats: int  # licensed seats on ``seats_day``
    first_paid: dt.date | None  # first day it was a customer (a contract with mrr > 0)
    paid_between: bool = False  # a customer on some day of ``paid_between`` (if asked)

    def customer_on(self, day: dt.date) -> bool:
        return self.mrr[day] > 0


def contract_facts(
    accounts: QuerySet[Account],
    *,
    days: Iterable[dt.date],
    seats_day: dt.date | None = None,
    paid_between: tuple[dt.date, dt.date] | None = None,
) -> list[AccountFacts]:
    """One query: per account with contracts, MRR on each of ``days`` (a conditional sum
    per day), seats on ``seats_day``, the first paid day and whether it was a customer on
    some day of ``[paid_between[0], paid_between[1])``."""
    days = sorted(set(days))
    aggregates = {
        f"mrr_{i}": Sum("mrr", filter=covers(day), default=ZERO) for i, day in enumerate(days)
    }
    if seats_day is not None:
        aggregates["seats"] = Sum("quantity", filter=covers(seats_day), default=0)
    aggregates["first_paid"] = Min("start_date", filter=Q(mrr__gt=0))
    if paid_between is not None:
        first, following = paid_between
        aggregates["paid_contracts"] = Count(
            "id",
            filter=Q(mrr__gt=0, start_date__lt=following)
            & (Q(end_date__isnull=True) | Q(end_date__gte=first)),
        )
    names = list(aggregates)
    query = (
        in_scope(Contract.objects.all(), accounts)
        .values("account_id", "account__external_id", "account__name", "account__segment")
        .order_by()
        .annotate(**aggregates)
        .values_list(
            "account_id", "account__external_id", "account__name", "account__segment", *names
        )
    )
    # read with a plain cursor: one row per account, and Django's per-value converters cost
    # more than the query at 100,000 accounts (docs/benchmarks.md)
    try:
        sql, params = query.query.sql_with_params()
    except EmptyResultSet:  # an empty scope
        return []
    at = {name: 4 + i for i, name in enumerate(names)}
    mrr_at = [(day, at[f"mrr_{i}"]) for i, day in enumerate(days)]
    seats_at, paid_at = at.get("seats"), at.get("paid_contracts")
    first_at = at["first_paid"]
    # PostgreSQL sums numeric(…, 2) exactly; SQLite sums as floats (``money``)
    exact = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    facts = []
    for row in rows:
        first_paid = row[first_at]
        if first_paid is not None and not isinstance(first_paid, dt.date):
            first_paid = dt.date.fromisoformat(first_paid)  # SQLite: ISO text
        facts.append(
            AccountFacts(
                id=row[0],
                external_id=row[1],
                name=row[2],
                segment=row[3],
                mrr={day: row[i] if exact else money(row[i]) for day, i in mrr_at},
                seats=(row[seats_at] or 0) if seats_at is not None else 0,
                first_paid=first_paid,
                paid_between=bool(row[paid_at]) if paid_at is not None else False,
            )
        )
    return facts


def mrr_on(accounts: QuerySet[Account], day: dt.date) -> dict[str, Decimal | int]:
    """MRR, ARR and customers (accounts with MRR > 0) on ``day``."""
    facts = contract_facts(accounts, days=[day])
    mrr = sum((f.mrr[day] for f in facts), ZERO)
    return {"mrr": mrr, "arr": 12 * mrr, "customers": sum(f.customer_on(day) for f in facts)}


@dataclass
class Movements:
    """MRR movements between ``start`` and ``end``, with the accounts behind each."""

    start: dt.date
    end: dt.date
    start_mrr: Decimal = ZERO
    end_mrr: Decimal = ZERO
    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MOVEMENTS, ZERO))
    accounts: dict[str, list[dict]] = field(default_factory=lambda: {m: [] for m in MOVEMENTS})
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOVEMENTS, 0))
    customers_start: int = 0  # S: customers on start
    customers_end: int = 0  # E: customers on end
    churned_logos: int = 0  # customers on start that are not on end
    gained_logos: int = 0  # N: customers on end that were not on start (new + reactivated)


def classify(facts: Sequence[AccountFacts], *, start: dt.date, end: dt.date) -> Movements:
    """Classify each account's (m0, m1) pair into at most one movement.

    ``was a customer before start`` means a contract with mrr > 0 started before ``start``:
    such a contract covered its own start day, so the account paid on a day before ``start``.
    """
    result = Movements(start=start, end=end)
    for f in facts:
        m0, m1 = f.mrr[start], f.mrr[end]
        result.start_mrr += m0
        result.end_mrr += m1
        result.customers_start += m0 > 0
        result.customers_end += m1 > 0
        if m0 == 0 and m1 > 0:
            kind = "reactivation" if f.first_paid and f.first_paid < start else "new"
            amount = m1
            result.gained_logos += 1
        elif m0 > 0 and m1 > m0:
            kind, amount = "expansion", m1 - m0
        elif m0 > 0 and m1 == 0:
            kind, amount = "churn", m0
            result.churned_logos += 1
        elif m0 > 0 and m1 < m0:
            kind, amount = "contraction", m0 - m1
        else:
            continue  # unchanged, or never a customer on either day
        result.amounts[kind] += amount
        result.counts[kind] += 1
        result.accounts[kind].append(
            {
                "id": f.id,
                "external_id": f.external_id,
                "name": f.name,
                "segment": f.segment,
                "m0": m0,
                "m1": m1,
                "amount": amount,
            }
        )
    for rows in result.accounts.values():
        rows.sort(key=lambda row: (-row["amount"], row["name"], row["id"]))
    return result


def mrr_movements(accounts: QuerySet[Account], *, start: dt.date, end: dt.date) -> Movements:
    """New, reactivation, expansion, contraction and churn for ``[start, end)`` (one query)."""
    return classify(contract_facts(accounts, days=[start, end]), start=start, end=end)


@dataclass
class AsOf:
    """What the adoption and support KPIs read from the contracts on one day (the period's
    last): licensed seats per account (accounts with seats) and the accounts that are
    customers then (MRR > 0)."""

    day: dt.date
    seats: dict[int, int]
    customers: list[int]

    @property
    def seats_total(self) -> int:
        return sum(self.seats.values())

    @classmethod
    def of(cls, facts: Sequence[AccountFacts] | AsOf, day: dt.date) -> AsOf:
        """``facts`` as an ``AsOf`` (they must carry MRR on ``day`` and seats on it)."""
        if isinstance(facts, AsOf):
            return facts
        return cls(
            day=day,
            seats={f.id: f.seats for f in facts if f.seats},
            customers=[f.id for f in facts if f.customer_on(day)],
        )


@dataclass
class BookSummary:
    """The contracts of a scope over a period, summed over its accounts by the database
    (``book_summary``): everything ``kpi_report`` reads from contracts, without a Python
    object per account."""

    accounts: int  # accounts with contracts (ever)
    movements: Movements  # amounts and counts (no account lists)
    customers_in_period: int  # customers on some day of the period
    at_start: list[int]  # per whole month of the period: customers at its start …
    lost: list[int]  # … and how many of them are not customers at its end
    cohorts: dict[dt.date, CohortSums]  # cohort month → its sums
    as_of: AsOf | None  # None when not asked for
    accounts_in_force: int = 0  # with a contract in force on some day from start through end


def book_summary(
    accounts: QuerySet[Account], *, start: dt.date, end: dt.date, as_of: dt.date | None
) -> BookSummary:
    """The figures of ``classify`` (amounts and counts), ``lifetime_kpis``, ``cohort_table``,
    the customers of the period and the contracts on ``as_of``, for ``[start, end)``: equal
    to computing them from ``contract_facts``, but summed by the database. Two queries:

    1. one statement over the scope's contracts: per account, its MRR on ``start`` and
       ``end``, its first paid day, whether it paid in the period and, on each day the
       lifetime and the cohorts look at, whether it was a customer, and its movement by the
       rules of ``classify``; then summed per (first paid day inside the period or none,
       movement): accounts, MRR on ``start`` and ``end`` (each movement's amount follows),
       customers on each day, customers lost over each whole month; and, per first paid
       day inside the period, the cohort's MRR on
       each cohort day, summed straight from the contracts of its accounts;
    2. per account with a contract covering ``as_of``: its seats and MRR then (none
       without ``as_of``: ``kpi_report`` reads them with the usage, ``adoption.usage_totals``).

    Contracts have MRR >= 0 (a database constraint), so an account is a customer on a day
    iff a contract with MRR > 0 covers it: a flag per day (``MAX``) where the per-account
    facts sum the MRR of every day, which is what made them slow."""
    sqlite = connection.vendor != "postgresql"
    edges = month_boundaries(start, end)
    cohort_on = cohort_days(start, end)
    days = sorted({start, end, *edges, *cohort_on})
    at = {day: i for i, day in enumerate(days)}
    as_of_facts = _as_of(accounts, as_of, sqlite=sqlite) if as_of is not None else None
    months = len(edges) - 1
    empty = BookSummary(
        0, Movements(start=start, end=end), 0, [0] * months, [0] * months, {}, as_of_facts
    )
    contracts = in_scope(Contract.objects.all(), accounts).values_list(
        "account_id", "start_date", "end_date", "mrr"
    )
    try:
        contracts_sql, params = contracts.query.sql_with_params()
    except EmptyResultSet:
        return empty

    def lit(day: dt.date) -> str:
        return f"'{day.isoformat()}'"  # our own dates: ISO literals, compared as dates/text

    def covers_sql(day: dt.date) -> str:
        return f"c.start_date <= {lit(day)} AND (c.end_date IS NULL OR c.end_date >= {lit(day)})"

    def rounded(expr: str) -> str:
        # SQLite sums as floats: round each account's MRR to cents like ``money``
        return f"ROUND({expr}, 2)" if sqlite else expr

    per_account = [
        f"{rounded(f'SUM(CASE WHEN {covers_sql(start)} THEN c.mrr ELSE 0 END)')} AS m0",
        f"{rounded(f'SUM(CASE WHEN {covers_sql(end)} THEN c.mrr ELSE 0 END)')} AS m1",
        "MIN(CASE WHEN c.mrr > 0 THEN c.start_date END) AS first_paid",
        f"MAX(CASE WHEN c.mrr > 0 AND c.start_date < {lit(end)} AND (c.end_date IS NULL "
        f"OR c.end_date >= {lit(start)}) THEN 1 ELSE 0 END) AS paid",
        # a contract (paid or not) in force on some day from start through end: the days
        # the report looks at (one starting on end is new MRR of the period, docs/metrics.md)
        f"MAX(CASE WHEN c.start_date <= {lit(end)} AND (c.end_date IS NULL "
        f"OR c.end_date >= {lit(start)}) THEN 1 ELSE 0 END) AS in_force",
    ]
    bits = not sqlite and len(days) <= BITMASK_DAYS
    if not bits:
        # one flag per day: customer then (a paying contract covers it)
        per_account += [
            f"MAX(CASE WHEN c.mrr > 0 AND {covers_sql(day)} THEN 1 ELSE 0 END) AS p{i}"
            for i, day in enumerate(days)
        ]

        def paying(i: int) -> str:
            return f"a.p{i}"

    else:
        # PostgreSQL: the same flags as the bits of one bigint, OR-ed over the paying
        # contracts; a contract covers the days from the first on or after its start
        # (``width_bucket``: how many days are before it) to the last on or before its end
        listed = "ARRAY[" + ", ".join(lit(day) for day in days) + "]::date[]"
        first = f"width_bucket(c.start_date - 1, {listed})"
        after = f"COALESCE(width_bucket(c.end_date, {listed}), {len(days)})"
        # bits first … after − 1; none when it covers no listed day (after <= first)
        mask = f"GREATEST((1::bigint << {after}) - (1::bigint << {first}), 0)"
        per_account.append(f"COALESCE(bit_or(CASE WHEN c.mrr > 0 THEN {mask} END), 0) AS flags")

        def paying(i: int) -> str:
            return f"((a.flags >> {i}) & 1)"

    in_period = f"a.first_paid >= {lit(start)} AND a.first_paid < {lit(end)}"
    cohort_key = f"CASE WHEN {in_period} THEN a.first_paid END"

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    # each account's movement by the rules of ``classify``, as its index in MOVEMENTS (NULL:
    # unchanged, or never a customer on either day); the rows are grouped by it too, and
    # each movement's amount is a difference of the group's MRR sums (new and reactivation
    # m1, expansion m1 − m0, contraction m0 − m1, churn m0)
    kind = (
        f"CASE WHEN a.m0 = 0 AND a.m1 > 0 THEN CASE WHEN a.first_paid < {lit(start)} "
        f"THEN {MOVEMENTS.index('reactivation')} ELSE {MOVEMENTS.index('new')} END "
        f"WHEN a.m0 > 0 AND a.m1 > a.m0 THEN {MOVEMENTS.index('expansion')} "
        f"WHEN a.m0 > 0 AND a.m1 = 0 THEN {MOVEMENTS.index('churn')} "
        f"WHEN a.m0 > 0 AND a.m1 < a.m0 THEN {MOVEMENTS.index('contraction')} END"
    )
    summed = ["COUNT(*)", "SUM(a.paid)", "SUM(a.in_force)", "SUM(a.m0)", "SUM(a.m1)"]
    if not bits:  # with the bits, grouped by them: Python reads the days off each group's
        summed += [f"SUM({paying(i)})" for i in range(len(days))]
        summed += [
            count(f"{paying(at[x])} = 1 AND {paying(at[y])} = 0")
            for x, y in zip(edges, edges[1:], strict=False)
        ]
    cohort_mrr = [f"SUM(CASE WHEN {covers_sql(day)} THEN c.mrr ELSE 0 END)" for day in cohort_on]
    accounts_sql = (
        f"SELECT c.account_id, {', '.join(per_account)} FROM ({contracts_sql}) c "  # noqa: S608
        "GROUP BY c.account_id"
    )
    # the cohorts' accounts need only their first paid day
    first_paid_sql = (
        "SELECT c.account_id, MIN(CASE WHEN c.mrr > 0 THEN c.start_date END) AS first_paid "
        f"FROM ({contracts_sql}) c GROUP BY c.account_id"  # noqa: S608
    )
    group = f"{cohort_key} AS cohort, {kind} AS kind" + (", a.flags" if bits else "")
    sql = (
        f"SELECT {group}, {', '.join(summed)} FROM ({accounts_sql}) a "
        f"GROUP BY {'1, 2, 3' if bits else '1, 2'}"
    )
    queries = [*params]
    if cohort_on:  # each cohort's MRR on each cohort day, from its accounts' contracts
        sql = (
            f"SELECT s.*, {', '.join(f'm.c{i}' for i in range(len(cohort_on)))} FROM ({sql}) s "
            "LEFT JOIN (SELECT a.first_paid AS cohort, "
            + ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(cohort_mrr))
            + f" FROM ({first_paid_sql}) a JOIN ({contracts_sql}) c "
            f"ON c.account_id = a.account_id WHERE {in_period} GROUP BY 1) m "
            "ON m.cohort = s.cohort"
        )
        queries += [*params, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, queries)
        rows = cursor.fetchall()

    def to_money(value) -> Decimal:
        return money(value) if sqlite else (value if value is not None else ZERO)

    n_accounts = customers_in_period = in_force_in_period = 0
    mv = Movements(start=start, end=end)
    customers_on = dict.fromkeys(days, 0)
    lost = [0] * months
    cohorts: dict[dt.date, CohortSums] = {}
    cohort_seen: set = set()  # with the bits, a cohort's MRR comes on each of its rows
    for row in rows:
        if bits:
            first_paid, kind_index, flags, n, paid, in_force, m0, m1, *rest = row
            on = [n if flags >> i & 1 else 0 for i in range(len(days))]
            moved = [
                n if flags >> at[x] & 1 and not flags >> at[y] & 1 else 0
                for x, y in zip(edges, edges[1:], strict=False)
            ]
            rest = [*on, *moved, *rest]
        else:
            first_paid, kind_index, n, paid, in_force, m0, m1, *rest = row
        n_accounts += n
        customers_in_period += paid or 0
        in_force_in_period += in_force or 0
        m0, m1 = to_money(m0), to_money(m1)
        mv.start_mrr += m0
        mv.end_mrr += m1
        if kind_index is not None:
            name = MOVEMENTS[kind_index]
            mv.counts[name] += n
            mv.amounts[name] += {
                "new": m1,
                "reactivation": m1,
                "expansion": m1 - m0,
                "contraction": m0 - m1,
                "churn": m0,
            }[name]
        on_day = dict(zip(days, (k or 0 for k in rest[: len(days)]), strict=True))
        rest = rest[len(days) :]
        for i in range(months):
            lost[i] += rest[i] or 0
        for day in days:
            customers_on[day] += on_day[day]
        if first_paid is None:
            continue
        if not isinstance(first_paid, dt.date):
            first_paid = dt.date.fromisoformat(first_paid)  # SQLite: ISO text
        cohort = month_start(first_paid)
        sums = cohorts.setdefault(cohort, CohortSums())
        sums.size += n
        first_row = first_paid not in cohort_seen
        cohort_seen.add(first_paid)
        for day, value in zip(cohort_on, rest[months:], strict=True):
            if day > cohort:
                sums.customers[day] = sums.customers.get(day, 0) + on_day[day]
                added = to_money(value) if first_row else ZERO
                sums.mrr[day] = sums.mrr.get(day, ZERO) + added
    mv.customers_start, mv.customers_end = customers_on[start], customers_on[end]
    mv.churned_logos = mv.counts["churn"]
    mv.gained_logos = mv.counts["new"] + mv.counts["reactivation"]
    return BookSummary(
        accounts=n_accounts,
        accounts_in_force=in_force_in_period,
        movements=mv,
        customers_in_period=customers_in_period,
        at_start=[customers_on[day] for day in edges[:-1]],
        lost=lost,
        cohorts=cohorts,
        as_of=as_of_facts,
    )


def contracts_on(accounts: QuerySet[Account], day: dt.date) -> QuerySet:
    """Per account with a contract covering ``day``: ``(account_id, seats, mrr)``, the sums
    of ``quantity`` (None when no contract has one) and of ``mrr`` over those contracts."""
    return (
        in_scope(Contract.objects.filter(covers(day)), accounts)
        .values("account_id")
        .order_by()
        .annotate(seats=Sum("quantity"), mrr=Sum("mrr"))
        .values_list("account_id", "seats", "mrr")
    )


def _as_of(accounts: QuerySet[Account], day: dt.date, *, sqlite: bool) -> AsOf:
    """Seats and customers on ``day``, from the contracts covering it (one query)."""
    query = contracts_on(accounts, day)
    try:
        sql, params = query.query.sql_with_params()
    except EmptyResultSet:
        return AsOf(day=day, seats={}, customers=[])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    seats, customers = {}, []
    for account_id, n, mrr in rows:
        if n:
            seats[account_id] = n
        if (money(mrr) if sqlite else mrr) > 0:
            customers.append(account_id)
    return AsOf(day=day, seats=seats, customers=customers)


def retention_kpis(mv: Movements) -> dict[str, dict]:
    """NRR, GRR, revenue churn, expansion rate/share, quick ratio, logo churn, CRR and ARPA
    from the movements; each as ``{"value", "unit", "inputs"}``. None when the denominator
    is 0."""
    a = mv.amounts
    retained = mv.start_mrr + a["expansion"] - a["contraction"] - a["churn"]
    gross = mv.start_mrr - a["contraction"] - a["churn"]
    gained = a["new"] + a["reactivation"] + a["expansion"]
    lost = a["contraction"] + a["churn"]
    s, e, n = mv.customers_start, mv.customers_end, mv.gained_logos
    return {
        "nrr": kpi(
            pct(retained, mv.start_mrr),
            "%",
            start_mrr=mv.start_mrr,
            expansion=a["expansion"],
            contraction=a["contraction"],
            churn=a["churn"],
        ),
        "grr": kpi(
            pct(gross, mv.start_mrr),
            "%",
            start_mrr=mv.start_mrr,
            contraction=a["contraction"],
            churn=a["churn"],
        ),
        "revenue_churn_rate": kpi(
            pct(lost, mv.start_mrr),
            "%",
            start_mrr=mv.start_mrr,
            contraction=a["contraction"],
            churn=a["churn"],
        ),
        "expansion_rate": kpi(
            pct(a["expansion"], mv.start_mrr), "%", start_mrr=mv.start_mrr, expansion=a["expansion"]
        ),
        "expansion_share": kpi(
            pct(a["expansion"], gained),
            "%",
            new=a["new"],
            reactivation=a["reactivation"],
            expansion=a["expansion"],
        ),
        "quick_ratio": kpi(ratio(gained, lost), "ratio", gained=gained, lost=lost),
        "logo_churn_rate": kpi(
            pct(mv.churned_logos, s), "%", customers_start=s, churned_customers=mv.churned_logos
        ),
        "customer_retention_rate": kpi(
            pct(e - n, s), "%", customers_start=s, customers_end=e, new_customers=n
        ),
        "arpa": kpi(
            ratio(mv.start_mrr, s), settings.CURRENCY, start_mrr=mv.start_mrr, customers_start=s
        ),
    }


def month_boundaries(start: dt.date, end: dt.date) -> list[dt.date]:
    """``start``, ``start`` + 1 month, … up to ``end``: the edges of the whole months that fit
    in the period (a remainder shorter than a month is left out)."""
    edges = [start]
    while (following := add_months(start, len(edges))) <= end:
        edges.append(following)
    return edges


def lifetime_kpis(
    facts: Sequence[AccountFacts], *, start: dt.date, end: dt.date, arpa: Decimal | None
) -> dict[str, dict]:
    """Customer lifetime (months) = 1 / monthly logo churn rate, and CLV = ARPA × margin ×
    lifetime. The monthly rate is the mean of the logo churn rates of the whole months in the
    period (months without customers at their start are skipped); a period shorter than one
    month has no monthly rate, so both are None."""
    edges = month_boundaries(start, end)
    # per account, whether it was a customer on each edge: read each MRR once
    paying = [[f.mrr[day] > 0 for day in edges] for f in facts]
    at_start, lost = [], []
    for i in range(len(edges) - 1):
        staying = [on for on in paying if on[i]]
        at_start.append(len(staying))
        lost.append(sum(not on[i + 1] for on in staying))
    return lifetime_from_counts(at_start, lost, arpa=arpa, start=start)


def lifetime_from_counts(
    at_start: Sequence[int], lost: Sequence[int], *, arpa: Decimal | None, start: dt.date
) -> dict[str, dict]:
    """``lifetime_kpis`` from, per whole month of the period (the first from ``start``), the
    customers at its start and how many of them were not customers at its end.

    The mean monthly rate is 100 / k × Σ lostᵢ / customersᵢ over the k months that began
    with customers, so the lifetime is 100 / mean = k / Σ lostᵢ / customersᵢ months: summed
    as exact fractions and divided once, a lifetime of 7 months (1 of 7 customers lost in a
    month) comes out 7, not 100 / 14.2857… = 6.999…998, and any other is correctly rounded
    to the 28 significant digits of the other ratios. CLV likewise (ARPA × margin × that
    fraction). The inputs say which months counted and which were skipped, and why."""
    monthly: list[Decimal | None] = [pct(n, s) for n, s in zip(lost, at_start, strict=True)]
    month_starts = [add_months(start, i) for i in range(len(monthly))]
    shares = [Fraction(n, s) for n, s in zip(lost, at_start, strict=True) if s]
    skipped = [
        {"month_start": day, "why": f"no customers on {day}, its first day"}
        for day, s in zip(month_starts, at_start, strict=True)
        if not s
    ]
    churned = sum(shares, Fraction(0))
    lifetime = Fraction(len(shares)) / churned if churned else None  # None: no churn
    margin = Decimal(str(settings.GROSS_MARGIN))
    clv = (
        Fraction(arpa) * Fraction(margin) * lifetime
        if arpa is not None and lifetime is not None
        else None
    )
    return {
        "customer_lifetime_months": kpi(
            exact(lifetime),
            "months",
            month_starts=month_starts,
            monthly_logo_churn_rates=monthly,
            mean_monthly_logo_churn_rate=exact(100 * churned / len(shares)) if shares else None,
            months=len(shares),  # the months the mean is over
            months_skipped=skipped,
        ),
        "clv": kpi(
            exact(clv),
            settings.CURRENCY,
            arpa=arpa,
            gross_margin=margin,
            lifetime_months=exact(lifetime),
        ),
    }


def renewal_rate(
    accounts: QuerySet[Account],
    *,
    start: dt.date,
    end: dt.date,
    known_on: dt.date | None = None,
) -> dict:
    """Contracts whose last day falls in ``[start, end)`` that are followed by a contract of the
    same account starting 1..RENEWAL_GRACE_DAYS days after that last day, in %. One query
    (an EXISTS per ending contract, counted by the database).

    ``known_on`` (the as-of day of a snapshot): only what is known by the end of that day
    counts, so a follower must have started on or before it; an ending contract whose grace
    days are still running then, with no follower yet, counts as not renewed (yet) and is
    also counted in ``awaiting_renewal``. Without it, followers are read up to the end of the
    grace days, whenever that is."""
    grace = settings.RENEWAL_GRACE_DAYS
    # a follower of an ending contract: a contract of the same account (so in the scope
    # too) that starts 1..grace days after its last day, and by ``known_on`` if given
    followers = Contract.objects.filter(
        account_id=OuterRef("account_id"),
        start_date__gt=OuterRef("end_date"),
        start_date__lte=ExpressionWrapper(
            OuterRef("end_date") + dt.timedelta(days=grace), output_field=DateField()
        ),
    )
    if known_on is not None:
        followers = followers.filter(start_date__lte=known_on)
    # grouped by (has a follower, grace days still running on ``known_on``): the EXISTS is
    # evaluated once per ending contract (counts with a filter on it repeated it per count)
    running_after = (known_on or end) - dt.timedelta(days=grace)
    groups = (
        in_scope(Contract.objects.all(), accounts)
        .filter(end_date__gte=start, end_date__lt=end)
        .annotate(
            has_follower=Exists(followers),
            in_grace=ExpressionWrapper(Q(end_date__gt=running_after), output_field=BooleanField()),
        )
        .values("has_follower", "in_grace")
        .order_by()
        .annotate(n=Count("pk"))
        .values_list("has_follower", "in_grace", "n")
    )
    ending = renewed = awaiting = 0
    for has_follower, in_grace, n in groups:
        ending += n
        if has_follower:
            renewed += n
        elif in_grace:  # not renewed yet, and its grace days still running on ``known_on``
            awaiting += n
    inputs: dict = {"contracts_ending": ending, "contracts_renewed": renewed}
    if known_on is not None:
        inputs.update(known_on=known_on, awaiting_renewal=awaiting)
    return kpi(pct(renewed, ending), "%", **inputs, grace_days=grace)


def cohort_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """The days the cohort table looks at: the first of every month after ``start``'s month,
    up to ``end``."""
    days, day = [], add_months(month_start(start), 1)
    while day <= end:
        days.append(day)
        day = add_months(day, 1)
    return days


def cohort_table(
    accounts: QuerySet[Account],
    *,
    start: dt.date,
    end: dt.date,
    facts: Sequence[AccountFacts] | None = None,
) -> dict:
    """Cohort retention for the accounts that first became customers in ``[start, end)``.

    Row = the calendar month of an account's first paid day. Column k (0, 1, …) = the state on
    the first day of month ``cohort + k + 1``, i.e. at the end of the k-th month after joining,
    for as long as that day is not after ``end``. ``logos`` = % of the cohort that is a
    customer then; ``mrr`` = the cohort's MRR then / its **first-month MRR** × 100 (metrics.md;
    net of expansion, so it can exceed 100). The first-month MRR is the cohort's MRR at the end
    of its first month, measured like every end state on the first day after it (column 0's
    day), so column 0's ``mrr`` is 100 whenever the cohort paid then; ``null`` (no base) while
    that day is after ``end``. One query (none if ``facts`` carry the days of
    ``cohort_days``)."""
    days = cohort_days(start, end)
    if facts is None:
        facts = contract_facts(accounts, days=days)
    members: dict[dt.date, list[AccountFacts]] = defaultdict(list)
    for f in facts:
        if f.first_paid is not None and start <= f.first_paid < end:
            members[month_start(f.first_paid)].append(f)
    cohorts = {
        cohort: CohortSums(
            size=len(group),
            customers={d: sum(f.customer_on(d) for f in group) for d in days if d > cohort},
            mrr={d: sum((f.mrr[d] for f in group), ZERO) for d in days if d > cohort},
        )
        for cohort, group in members.items()
    }
    return cohort_table_from_sums(cohorts, end=end)


@dataclass
class CohortSums:
    """One cohort (the accounts whose first paid day is in one month): its size, and on each
    cohort day after its month, how many of them are customers and their MRR."""

    size: int = 0
    customers: dict[dt.date, int] = field(default_factory=dict)
    mrr: dict[dt.date, Decimal] = field(default_factory=dict)


def cohort_table_from_sums(cohorts: dict[dt.date, CohortSums], *, end: dt.date) -> dict:
    """``cohort_table`` from each cohort month's ``CohortSums``."""
    rows = []
    for cohort in sorted(cohorts):
        sums = cohorts[cohort]
        first_month_end = add_months(cohort, 1)
        base = sums.mrr.get(first_month_end, ZERO) if first_month_end <= end else None
        columns = []
        for k, day in enumerate(sorted(sums.mrr)):
            customers, mrr = sums.customers[day], sums.mrr[day]
            columns.append(
                {
                    "k": k,
                    "on": day,
                    "customers": customers,
                    "logos": pct(customers, sums.size),
                    "mrr_amount": mrr,
                    "mrr": pct(mrr, base or ZERO),
                }
            )
        rows.append(
            {
                "cohort": cohort.strftime("%Y-%m"),
                "size": sums.size,
                "first_mrr": base,
                "columns": columns,
            }
        )
    return {
        "definition": "row: month of the first paid day; column k: state on the first day of "
        "month cohort+k+1; logos and mrr in % of the cohort's size and of its first-month MRR "
        "(its MRR at the end of the cohort month, i.e. on column 0's day)",
        "rows": rows,
    }
