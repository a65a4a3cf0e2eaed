"""Revenue and retention: MRR on a day, MRR movements, retention rates, lifetime and CLV,
renewal rate and the cohort retention table.

Everything starts from one aggregate query over contracts (``contract_facts``): per account,
the MRR on each day we need, licensed seats on one day, and the first day it paid. The
classification into movements then runs in Python over those rows, which is linear in the
number of accounts but never issues a query per account.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, Min, Q, QuerySet, Sum

from accounts.models import Account, Contract

from .common import HUNDRED, ZERO, add_months, covers, in_scope, kpi, money, month_start, pct, ratio

MOVEMENTS = ("new", "reactivation", "expansion", "contraction", "churn")


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

    accounts: int  # accounts with contracts
    movements: Movements  # amounts and counts (no account lists)
    customers_in_period: int  # customers on some day of the period
    at_start: list[int]  # per whole month of the period: customers at its start …
    lost: list[int]  # … and how many of them are not customers at its end
    cohorts: dict[dt.date, CohortSums]  # cohort month → its sums
    as_of: AsOf


def book_summary(
    accounts: QuerySet[Account], *, start: dt.date, end: dt.date, as_of: dt.date
) -> BookSummary:
    """The figures of ``classify`` (amounts and counts), ``lifetime_kpis``, ``cohort_table``,
    the customers of the period and the contracts on ``as_of``, for ``[start, end)``: equal
    to computing them from ``contract_facts``, but summed by the database. Two queries:

    1. per account (``contract_facts``' aggregates: MRR on each day needed, first paid day,
       paid contracts in the period), then summed per first paid day inside the period
       (the cohorts; one row for every other account): each movement's amount and count
       by the rules of ``classify``, customers and MRR on each day, customers lost over
       each whole month;
    2. per account with a contract covering ``as_of``: its seats and MRR then."""
    sqlite = connection.vendor != "postgresql"
    edges = month_boundaries(start, end)
    cohort_on = cohort_days(start, end)
    days = sorted({start, end, *edges, *cohort_on})
    at = {day: i for i, day in enumerate(days)}
    aggregates = {
        f"mrr_{i}": Sum("mrr", filter=covers(day), default=ZERO) for i, day in enumerate(days)
    }
    aggregates["first_paid"] = Min("start_date", filter=Q(mrr__gt=0))
    aggregates["paid_contracts"] = Count(
        "id",
        filter=Q(mrr__gt=0, start_date__lt=end)
        & (Q(end_date__isnull=True) | Q(end_date__gte=start)),
    )
    inner = (
        in_scope(Contract.objects.all(), accounts)
        .values("account_id")
        .order_by()
        .annotate(**aggregates)
    )
    as_of_facts = _as_of(accounts, as_of, sqlite=sqlite)
    empty = BookSummary(
        0,
        Movements(start=start, end=end),
        0,
        [0] * (len(edges) - 1),
        [0] * (len(edges) - 1),
        {},
        as_of_facts,
    )
    try:
        inner_sql, params = inner.query.sql_with_params()
    except EmptyResultSet:
        return empty

    def m(day: dt.date) -> str:
        # SQLite sums as floats: round each account's MRR to cents like ``money``
        return f"ROUND(q.mrr_{at[day]}, 2)" if sqlite else f"q.mrr_{at[day]}"

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    def amount(condition: str, value: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN {value} ELSE 0 END)"

    def date_param(day: dt.date):
        return day.isoformat() if sqlite else day

    s, e = m(start), m(end)
    before = "q.first_paid < %s"
    kinds = {
        "new": (f"{s} = 0 AND {e} > 0 AND (q.first_paid IS NULL OR q.first_paid >= %s)", e),
        "reactivation": (f"{s} = 0 AND {e} > 0 AND {before}", e),
        "expansion": (f"{s} > 0 AND {e} > {s}", f"{e} - {s}"),
        "churn": (f"{s} > 0 AND {e} = 0", s),
        "contraction": (f"{s} > 0 AND {e} <> 0 AND {e} < {s}", f"{s} - {e}"),
    }
    columns = ["COUNT(*)", count("q.paid_contracts > 0")]
    column_params: list = []
    for name in MOVEMENTS:
        condition, value = kinds[name]
        columns += [count(condition), amount(condition, value)]
        column_params += [date_param(start)] * (2 * condition.count("%s"))
    for day in days:
        columns += [count(f"{m(day)} > 0"), f"SUM({m(day)})"]
    for a, b in zip(edges, edges[1:], strict=False):
        columns.append(count(f"{m(a)} > 0 AND NOT {m(b)} > 0"))
    sql = (
        "SELECT CASE WHEN q.first_paid >= %s AND q.first_paid < %s THEN q.first_paid END, "
        + ", ".join(columns)
        + f" FROM ({inner_sql}) q GROUP BY 1"  # noqa: S608 - built from our own names
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [date_param(start), date_param(end), *column_params, *params])
        rows = cursor.fetchall()

    def to_money(value) -> Decimal:
        return money(value) if sqlite else (value if value is not None else ZERO)

    n_accounts = customers_in_period = 0
    mv = Movements(start=start, end=end)
    on_day = {day: [0, ZERO] for day in days}
    lost = [0] * (len(edges) - 1)
    cohorts: dict[dt.date, CohortSums] = {}
    for row in rows:
        first_paid, n, paid, *rest = row
        n_accounts += n
        customers_in_period += paid or 0
        for name in MOVEMENTS:
            k, value, rest = rest[0], rest[1], rest[2:]
            mv.counts[name] += k or 0
            mv.amounts[name] += to_money(value)
        per_day = {}
        for day in days:
            k, value, rest = rest[0], rest[1], rest[2:]
            per_day[day] = (k or 0, to_money(value))
            on_day[day][0] += k or 0
            on_day[day][1] += to_money(value)
        for i, k in enumerate(rest):
            lost[i] += k or 0
        if first_paid is None:
            continue
        if not isinstance(first_paid, dt.date):
            first_paid = dt.date.fromisoformat(first_paid)  # SQLite: ISO text
        cohort = month_start(first_paid)
        sums = cohorts.setdefault(cohort, CohortSums())
        sums.size += n
        for day in cohort_on:
            if day > cohort:
                sums.customers[day] = sums.customers.get(day, 0) + per_day[day][0]
                sums.mrr[day] = sums.mrr.get(day, ZERO) + per_day[day][1]
    mv.customers_start, mv.start_mrr = on_day[start]
    mv.customers_end, mv.end_mrr = on_day[end]
    mv.churned_logos = mv.counts["churn"]
    mv.gained_logos = mv.counts["new"] + mv.counts["reactivation"]
    at_start = [on_day[day][0] for day in edges[:-1]]
    return BookSummary(
        accounts=n_accounts,
        movements=mv,
        customers_in_period=customers_in_period,
        at_start=at_start,
        lost=lost,
        cohorts=cohorts,
        as_of=as_of_facts,
    )


def _as_of(accounts: QuerySet[Account], day: dt.date, *, sqlite: bool) -> AsOf:
    """Seats and customers on ``day``, from the contracts covering it (one query)."""
    query = (
        in_scope(Contract.objects.filter(covers(day)), accounts)
        .values("account_id")
        .order_by()
        .annotate(seats=Sum("quantity", default=0), mrr=Sum("mrr", default=ZERO))
        .values_list("account_id", "seats", "mrr")
    )
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
    return lifetime_from_counts(at_start, lost, arpa=arpa)


def lifetime_from_counts(
    at_start: Sequence[int], lost: Sequence[int], *, arpa: Decimal | None
) -> dict[str, dict]:
    """``lifetime_kpis`` from, per whole month of the period, the customers at its start and
    how many of them were not customers at its end."""
    monthly: list[Decimal | None] = [pct(n, s) for n, s in zip(lost, at_start, strict=True)]
    known = [rate for rate in monthly if rate is not None]
    mean_rate = sum(known, ZERO) / len(known) if known else None
    lifetime = HUNDRED / mean_rate if mean_rate else None  # months; None when churn is 0
    margin = Decimal(str(settings.GROSS_MARGIN))
    clv = arpa * margin * lifetime if arpa is not None and lifetime is not None else None
    return {
        "customer_lifetime_months": kpi(
            lifetime,
            "months",
            monthly_logo_churn_rates=monthly,
            mean_monthly_logo_churn_rate=mean_rate,
            months=len(monthly),
        ),
        "clv": kpi(
            clv, settings.CURRENCY, arpa=arpa, gross_margin=margin, lifetime_months=lifetime
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
    same account starting 1..RENEWAL_GRACE_DAYS days after that last day, in %. Two queries:
    the ending contracts, and the contracts that start in the window where a follower can.

    ``known_on`` (the as-of day of a snapshot): only what is known by the end of that day
    counts, so a follower must have started on or before it; an ending contract whose grace
    days are still running then, with no follower yet, counts as not renewed (yet) and is
    also counted in ``awaiting_renewal``. Without it, followers are read up to the end of the
    grace days, whenever that is."""
    grace = settings.RENEWAL_GRACE_DAYS
    ending = list(
        in_scope(Contract.objects.all(), accounts)
        .filter(end_date__gte=start, end_date__lt=end)
        .values_list("account_id", "end_date")
    )
    last_start = end + dt.timedelta(days=grace - 1)
    if known_on is not None:
        last_start = min(last_start, known_on)
    followers: dict[int, list[dt.date]] = defaultdict(list)
    if ending:
        rows = (
            in_scope(Contract.objects.all(), accounts)
            .filter(start_date__gt=start, start_date__lte=last_start)
            .values_list("account_id", "start_date")
        )
        for account_id, start_date in rows:
            followers[account_id].append(start_date)
        for starts in followers.values():
            starts.sort()
    renewed = awaiting = 0
    for account_id, end_date in ending:
        starts = followers.get(account_id, [])
        i = bisect.bisect_right(starts, end_date)  # first start strictly after end_date
        if i < len(starts) and starts[i] <= end_date + dt.timedelta(days=grace):
            renewed += 1
        elif known_on is not None and end_date + dt.timedelta(days=grace) > known_on:
            awaiting += 1
    inputs: dict = {"contracts_ending": len(ending), "contracts_renewed": renewed}
    if known_on is not None:
        inputs.update(known_on=known_on, awaiting_renewal=awaiting)
    return kpi(pct(renewed, len(ending)), "%", **inputs, grace_days=grace)


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
