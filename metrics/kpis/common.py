"""Small helpers shared by the KPI modules: dates, ratios, percentiles, scoping."""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction

from django.db.models import Q, QuerySet

from accounts.models import Account
from accounts.money import money_exact

ZERO = Decimal("0.00")  # money zero: prints as 0.00
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def money(value) -> Decimal:
    """A summed amount as Decimal cents. SQLite sums decimals as floats; amounts are stored
    with two decimal places, so rounding the sum to cents gives back the exact total."""
    return Decimal(value or 0).quantize(CENT)


EDGES = (0.0, 100.0, -100.0)  # rates pct_text shows with one decimal only when exact


def pct_text(value: float) -> str:
    """A rate with one decimal, or more where one decimal would round a rate that is not
    exactly 100, 0 or −100 to "100.0", "0.0" or "-100.0": GRR 99.986 % is "99.99", not
    "100.0", which would say that nothing churned. Up to 4 decimals; closer than that, the
    side it is on: ">99.9999" (below 100), "<100.0001" (NRR just above 100), "<0.0001",
    ">-0.0001" (a usage trend just below 0), "<-99.9999"."""
    value = float(value)
    text = f"{value:.1f}"
    if value in EDGES:
        return text
    for places in range(2, 5):
        if float(text) not in EDGES:
            return text
        text = f"{value:.{places}f}"
    if float(text) not in EDGES:
        return text
    edge = min(EDGES, key=lambda e: abs(value - e))
    above = value > edge
    return ("<" if above else ">") + f"{edge + (1 if above else -1) * 0.0001:.4f}"


def percent_text(value: float) -> str:
    """A rate with its sign as every page, email and command prints it: ``pct_text``'s
    figure and "%" with no space, "99.99%" (the one place that decides the spacing)."""
    return f"{pct_text(value)}%"


def change_text(
    change: Decimal,
    unit: str,
    *,
    signed: bool = True,
    money: Callable[[Decimal], str] = money_exact,
) -> str:
    """A KPI's change in its unit, as the dashboard's tiles and the target alerts print it: a
    rate ("%" or "pct") moves in percentage points ("−25.0 pp": NRR 100 % → 75 % is 25
    points, not 25 % of 100), money through ``money`` (to the cent by default: "+$1,234.56"),
    days and hours with their unit, anything else as a figure; every figure with
    ``pct_text``'s decimals, so a change that is not zero never reads "0.0". ``signed``: with
    "+" or "−" (a real minus); without for a limit such as a target's max change."""
    change = Decimal(change)
    sign = ("+" if change > 0 else "−" if change < 0 else "") if signed else ""
    size = abs(change)
    if unit in ("%", "pct"):
        return f"{sign}{pct_text(size)} pp"
    if unit == "money":
        return sign + money(size)
    if unit in ("days", "hours"):
        return f"{sign}{pct_text(size)} {unit}"
    return sign + pct_text(size)


def pct(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """``numerator / denominator × 100`` with full precision; None when the denominator is 0
    (no data is not zero)."""
    if not denominator:
        return None
    return Decimal(numerator) * HUNDRED / Decimal(denominator)


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """``numerator / denominator``; None when the denominator is 0."""
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


def exact(value: Fraction | None) -> Decimal | None:
    """An exact fraction as a Decimal, divided once: whole when it is whole (7/1 → "7",
    0 → "0"), else correctly rounded to the Decimal context's 28 significant digits
    (28/3 → "9.333333333333333333333333333"). None stays None (no data)."""
    if value is None:
        return None
    return Decimal(value.numerator) / Decimal(value.denominator)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between the closest ranks: the
    same answer as PostgreSQL's ``percentile_cont`` and numpy's default. None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    # q / 100 first, then times (n - 1): the order of PostgreSQL's percentile_cont, so the
    # two agree to the last bit (the support KPIs use one or the other by database)
    position = (len(ordered) - 1) * (q / 100)
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole calendar months; the 31st becomes the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def midnight(day: dt.date) -> dt.datetime:
    """The first instant of a UTC day: days are UTC days, like the usage rollups."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def covers(day: dt.date, prefix: str = "") -> Q:
    """Contracts covering ``day``: ``start_date <= day <= end_date`` (empty end = open)."""
    return Q(**{f"{prefix}start_date__lte": day}) & (
        Q(**{f"{prefix}end_date__isnull": True}) | Q(**{f"{prefix}end_date__gte": day})
    )


def in_scope(queryset: QuerySet, accounts: QuerySet[Account]) -> QuerySet:
    """Rows of ``queryset`` (which has an ``account`` FK) that belong to ``accounts``; no
    subquery when the scope is every account."""
    if not accounts.query.has_filters():
        return queryset
    return queryset.filter(account__in=accounts.values("pk"))


def kpi(value, unit: str, **inputs) -> dict:
    """One KPI as the doors show it: its value (None = no data), unit, and the inputs behind
    it, so every figure can be checked by hand."""
    return {"value": value, "unit": unit, "inputs": inputs}
