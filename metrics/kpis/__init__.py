"""The KPI engine: every figure of ``docs/metrics.md`` for a period ``[start, end)`` and a
scope (all accounts, a segment, an owner's book, one account).

Reads only, set-based: ``kpi_report`` issues a fixed number of aggregate queries whatever the
number of accounts (pinned by tests). Money is ``Decimal``; a ratio whose denominator is 0 is
``None``. The doors (``metrics.api``, ``manage.py kpis``) call ``kpi_report``,
``movements_report`` and ``cohorts_report``, which return JSON-ready dicts.

Modules: ``revenue`` (MRR, movements, retention, renewal, lifetime, cohorts), ``adoption``
(usage), ``support`` (tickets, invoices, surveys), ``common`` (helpers).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts import utc
from accounts.models import Account, User
from config.db import beside_or_now, threads_possible

from . import adoption, revenue, support
from .common import add_months, kpi

PERIODS = ("month", "quarter", "year")
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
MAX_PERIOD_YEARS = 20  # calendar years: end on or before start's day that many years on

__all__ = [
    "PERIODS",
    "cohorts_report",
    "kpi_report",
    "movements_report",
    "scope_report",
    "period_bounds",
    "period_resolve",
    "period_to_date",
    "scope_resolve",
    "to_json",
]


# --- inputs ----------------------------------------------------------------------------------


def period_bounds(period: str, on: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar month, quarter or year containing ``on``, as ``[start, end)``."""
    if period == "month":
        start = on.replace(day=1)
        return start, add_months(start, 1)
    if period == "quarter":
        start = dt.date(on.year, 3 * ((on.month - 1) // 3) + 1, 1)
        return start, add_months(start, 3)
    if period == "year":
        return dt.date(on.year, 1, 1), dt.date(on.year + 1, 1, 1)
    raise ValidationError({"period": [f"must be one of {', '.join(PERIODS)}, got {period!r}"]})


def period_resolve(
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    period: str | None = None,
    on: dt.date | None = None,
) -> tuple[dt.date, dt.date]:
    """``start``/``end`` as given, or the ``period`` containing ``on`` (default: today, UTC).
    Raises ValidationError naming the field when the input does not make a period, and on
    ``date`` when the ``period`` around it starts after today (as ``period_to_date`` would
    on ``start``, a parameter the caller did not give)."""
    if on is not None and not period:
        raise ValidationError({"date": ["only used with period"]})
    if period:
        if start or end:
            raise ValidationError({"period": ["give either start and end, or period, not both"]})
        today = utc.today()
        on = on or today
        if not EARLIEST <= on <= LATEST:
            raise ValidationError({"date": [f"must be between {EARLIEST} and {LATEST}"]})
        start, end = period_bounds(period, on)
        _check_range(start, end, start_field="date", end_field="date")
        if start > today:  # period_to_date's check, on the parameter the caller gave
            raise ValidationError(
                {
                    "date": [
                        f"the {period} containing {on} starts on {start}, after today "
                        f"({today}, UTC): there is nothing to report yet"
                    ]
                }
            )
        return start, end
    errors = {}
    if start is None:
        errors["start"] = ["required (YYYY-MM-DD), unless period is given"]
    if end is None:
        errors["end"] = ["required (YYYY-MM-DD), unless period is given"]
    if errors:
        raise ValidationError(errors)
    if end <= start:
        raise ValidationError({"end": [f"must be after start ({start}), got {end}"]})
    _check_range(start, end)
    return start, end


def _check_range(
    start: dt.date, end: dt.date, *, start_field: str = "start", end_field: str = "end"
) -> None:
    """Keep periods where the date arithmetic (windows before ``start``, grace days after
    ``end``) and the per-month columns of the contract query stay sane."""
    if start < EARLIEST:
        raise ValidationError({start_field: [f"must be on or after {EARLIEST}, got {start}"]})
    if end > LATEST:
        raise ValidationError({end_field: [f"must be on or before {LATEST}, got {end}"]})
    # from a 29 February to a year without one: 28 February (add_months), never past the years
    limit = add_months(start, 12 * MAX_PERIOD_YEARS)
    if end > limit:
        leap = f"; {limit.year} has no 29 February" if limit.day != start.day else ""
        raise ValidationError(
            {
                end_field: [
                    f"a period can be at most {MAX_PERIOD_YEARS} years long: end on or before "
                    f"{limit}, {MAX_PERIOD_YEARS} years after start ({start}){leap}"
                ]
            }
        )


def period_to_date(
    start: dt.date, end: dt.date, *, today: dt.date | None = None
) -> tuple[dt.date, dict[str, Any]]:
    """What the doors report for ``[start, end)``: a period cannot look past today, since
    the contracts that end later are only scheduled to end (counting them would show a
    quarter's planned renewals as churn). Returns the end to compute with and the fields
    the report's ``period`` gains: ``requested_end`` (the end asked for), ``to_date``
    (True when the end was cut) and, when cut, a ``note`` in words. An end after tomorrow
    (UTC) is cut to tomorrow, i.e. data through today; a period that starts after today is
    a ValidationError on ``start`` (nothing has happened in it yet)."""
    today = today or utc.today()
    if start > today:
        raise ValidationError(
            {
                "start": [
                    f"the period starts on {start}, after today ({today}, UTC): "
                    "there is nothing to report yet"
                ]
            }
        )
    tomorrow = today + dt.timedelta(days=1)
    if end <= tomorrow:
        return end, {"requested_end": end, "to_date": False}
    note = (
        f"to date: the period asked for ends on {end - dt.timedelta(days=1)} (end {end}), "
        f"after today ({today}, UTC); figures are through {today} (end {tomorrow}), so "
        "contracts scheduled to end later are not counted as churn"
    )
    return tomorrow, {"requested_end": end, "to_date": True, "note": note}


SEGMENTS_LISTED = 10  # an unknown segment's message lists the valid ones up to this many


def _segment_error(base: QuerySet[Account], segment: str) -> str:
    """Why ``segment`` scopes nothing, with the segments the caller can see when they are
    few (matching stays exact: "smb" is not "SMB", but the message shows the spelling)."""
    known = list(
        base.exclude(segment="")
        .order_by("segment")
        .values_list("segment", flat=True)
        .distinct()[: SEGMENTS_LISTED + 1]
    )
    message = f"no account you can see has segment {segment!r}"
    near = [k for k in known if k.casefold() == segment.strip().casefold()]
    if near:
        message += f" (segments match exactly: did you mean {near[0]!r}?)"
    if not known:
        return message + "; no account you can see has a segment"
    if len(known) <= SEGMENTS_LISTED:
        return message + f"; segments you can see: {', '.join(known)}"
    return message


def scope_resolve(
    *,
    accounts: QuerySet[Account] | None = None,
    segment: str | None = None,
    owner: str | None = None,
    account: str | None = None,
) -> tuple[QuerySet[Account], dict[str, Any]]:
    """Narrow ``accounts`` (default: every account; the API passes the accounts visible to
    the caller) to a segment, an owner's book (by email) and/or one account (by external id).
    None leaves a field out; an empty one (``segment=""``) is a ValidationError naming it,
    as is a segment, owner or account that no account in ``accounts`` has: an empty value
    quietly meaning "every account" would answer a question nobody asked."""
    base = accounts if accounts is not None else Account.objects.all()
    scoped = base
    errors: dict[str, list[str]] = {
        name: [f"empty: name {what}, or leave {name} out for every account"]
        for name, value, what in (
            ("segment", segment, "a segment"),
            ("owner", owner, "the email of an owner"),
            ("account", account, "the external id of an account"),
        )
        if value is not None and not value.strip()
    }
    if errors:
        raise ValidationError(errors)
    # checked against what the caller can see: nobody learns which segments or users exist
    # outside their book from a 400 versus a 200
    if segment:
        if base.filter(segment=segment).exists():
            scoped = scoped.filter(segment=segment)
        else:
            errors["segment"] = [_segment_error(base, segment)]
    if owner:
        user = (
            User.objects.filter(email__iexact=owner.strip(), accounts__in=base).only("pk").first()
        )
        if user is None:
            errors["owner"] = [f"no account you can see is owned by {owner!r}"]
        else:
            scoped = scoped.filter(owner=user)
    if account:
        if base.filter(external_id=account).exists():
            scoped = scoped.filter(external_id=account)
        else:
            errors["account"] = [f"no account with external id {account!r} (that you can see)"]
    if errors:
        raise ValidationError(errors)
    label = {"segment": segment or None, "owner": owner or None, "account": account or None}
    return scoped, label


# --- reports ---------------------------------------------------------------------------------


def kpi_report(
    *,
    start: dt.date,
    end: dt.date,
    segment: str | None = None,
    owner: str | None = None,
    account: str | None = None,
    accounts: QuerySet[Account] | None = None,
    known_on: dt.date | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Every KPI for ``[start, end)`` over the scope, each as ``{"value", "unit", "inputs"}``,
    JSON-ready (Decimals as strings, dates ISO). ``accounts`` is the base set (the API passes
    what the caller may see). ``known_on``: the report as known at the end of that day (the
    nightly snapshots pass their as-of day), so the renewal rate does not count renewals that
    start after it (``revenue.renewal_rate``). A period reaching past ``today`` (default:
    today, UTC) is reported to date (``period_to_date``; ``period`` says so). Raises
    ValidationError for bad input, and for a period that starts after today."""
    start, end = period_resolve(start=start, end=end)
    end, cut = period_to_date(start, end, today=today)
    scoped, label = scope_resolve(accounts=accounts, segment=segment, owner=owner, account=account)
    report = _report(
        scoped, label, start=start, end=end, known_on=known_on, aside=threads_possible()
    )
    report["period"].update(to_json(cut))
    return report


def scope_report(
    accounts: QuerySet[Account],
    *,
    start: dt.date,
    end: dt.date,
    known_on: dt.date | None = None,
    usage: adoption.UsageInputs | None = None,
) -> dict[str, Any]:
    """``kpi_report`` for the accounts of ``accounts`` as they are (no segment, owner or
    account look-up; ``scope`` says none), with the scope's usage inputs when the caller
    read them once for several scopes (``adoption.usage_inputs(...).restricted(...)``): what
    the nightly KPI snapshots call per scope."""
    start, end = period_resolve(start=start, end=end)
    end, cut = period_to_date(start, end)
    label = {"segment": None, "owner": None, "account": None}
    report = _report(accounts, label, start=start, end=end, known_on=known_on, usage=usage)
    report["period"].update(to_json(cut))
    return report


def _report(
    scoped: QuerySet[Account],
    label: dict[str, Any],
    *,
    start: dt.date,
    end: dt.date,
    known_on: dt.date | None = None,
    usage: adoption.UsageInputs | None = None,
    aside: bool = False,
) -> dict[str, Any]:
    """The report; ``aside``: the usage totals and the ticket figures are read on a second
    connection (``config.db.beside_or_now``) while this one reads the contracts, the
    renewals and the invoices: on a 2-core machine the one-year report over 100,000
    accounts, all of it PostgreSQL's work, took 2.0-2.3 s one statement after the other
    and 1.1-1.4 s so (docs/benchmarks.md, eighth session). Each statement reads the
    committed rows of its own moment either way (autocommit)."""
    as_of = end - dt.timedelta(days=1)

    def read_aside() -> tuple[adoption.UsageTotals | None, support.TicketFigures]:
        # the database sums the usage on the as-of day over the scope (unless given)
        totals = None if usage is not None else adoption.usage_totals(scoped, end=end, as_of=as_of)
        return totals, support.ticket_figures(scoped, start=start, end=end)

    read = beside_or_now(read_aside, aside, name="kpi-report")
    # ... and the contracts on the as-of day (from the usage inputs when given)
    contracts_on = None if usage is None else as_of
    summary = revenue.book_summary(scoped, start=start, end=end, as_of=contracts_on)
    mv = summary.movements
    retention = revenue.retention_kpis(mv)
    retention["renewal_rate"] = revenue.renewal_rate(
        scoped, start=start, end=end, known_on=known_on
    )
    retention.update(
        revenue.lifetime_from_counts(
            summary.at_start, summary.lost, arpa=retention["arpa"]["value"], start=start
        )
    )
    billing = support.billing_kpis(scoped, start=start, end=end)
    voice = support.voice_of_customer_kpis(scoped, start=start, end=end)
    ttfv = adoption.ttfv(scoped, start=start, end=end)
    totals, tickets = read()
    if totals is None:
        totals = adoption.UsageTotals.of(usage, summary.as_of)
    report = {
        "period": _period(start, end),
        "scope": {**label, "accounts_with_contracts": summary.accounts_in_force},
        "revenue": _revenue_section(mv),
        "retention": retention,
        "adoption": {**adoption.adoption_kpis(scoped, end=end, totals=totals), "ttfv": ttfv},
        "support": support.support_kpis(
            scoped,
            start=start,
            end=end,
            seats=totals.seats,
            customers_in_period=summary.customers_in_period,
            figures=tickets,
        ),
        "billing": billing,
        "voice_of_customer": voice,
        "cohorts": revenue.cohort_table_from_sums(summary.cohorts, end=end),
        "docs": "docs/metrics.md",
    }
    return to_json(report)


def _period(start: dt.date, end: dt.date, **cut: Any) -> dict[str, Any]:
    """The ``period`` of each report (``/kpis/``, ``/movements/``, ``/cohorts/``): ``[start,
    end)``, its days, the as-of day (the last one, where point-in-time figures are read) and
    ``period_to_date``'s fields."""
    return {
        "start": start,
        "end": end,
        "days": (end - start).days,
        "as_of": end - dt.timedelta(days=1),
        **cut,
    }


def _revenue_section(mv: revenue.Movements) -> dict[str, dict]:
    a = mv.amounts
    currency = settings.CURRENCY
    section = {
        "mrr_start": kpi(mv.start_mrr, currency, on=mv.start),
        "mrr_end": kpi(mv.end_mrr, currency, on=mv.end),
        "arr_end": kpi(12 * mv.end_mrr, currency, mrr_end=mv.end_mrr),
        "customers_start": kpi(mv.customers_start, "accounts", on=mv.start),
        "customers_end": kpi(mv.customers_end, "accounts", on=mv.end),
    }
    for name in revenue.MOVEMENTS:
        section[f"{name}_mrr"] = kpi(a[name], currency, accounts=mv.counts[name])
    net = a["new"] + a["reactivation"] + a["expansion"] - a["contraction"] - a["churn"]
    section["net_new_mrr"] = kpi(net, currency, identity_holds=mv.start_mrr + net == mv.end_mrr)
    return section


def movements_report(
    *,
    start: dt.date,
    end: dt.date,
    segment: str | None = None,
    owner: str | None = None,
    account: str | None = None,
    accounts: QuerySet[Account] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """MRR movements for ``[start, end)`` with the accounts behind each (drill-down); a
    period reaching past today is reported to date, as ``kpi_report`` does."""
    start, end = period_resolve(start=start, end=end)
    end, cut = period_to_date(start, end, today=today)
    scoped, label = scope_resolve(accounts=accounts, segment=segment, owner=owner, account=account)
    mv = revenue.mrr_movements(scoped, start=start, end=end)
    return to_json(
        {
            "period": _period(start, end, **cut),
            "scope": label,
            "start_mrr": mv.start_mrr,
            "end_mrr": mv.end_mrr,
            "movements": {
                name: {"amount": mv.amounts[name], "accounts": mv.accounts[name]}
                for name in revenue.MOVEMENTS
            },
        }
    )


def cohorts_report(
    *,
    start: dt.date,
    end: dt.date,
    segment: str | None = None,
    owner: str | None = None,
    account: str | None = None,
    accounts: QuerySet[Account] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The cohort retention table for the accounts that first paid in ``[start, end)``; a
    period reaching past today is reported to date, as ``kpi_report`` does."""
    start, end = period_resolve(start=start, end=end)
    end, cut = period_to_date(start, end, today=today)
    scoped, label = scope_resolve(accounts=accounts, segment=segment, owner=owner, account=account)
    return to_json(
        {
            "period": _period(start, end, **cut),
            "scope": label,
            **revenue.cohort_table(scoped, start=start, end=end),
        }
    )


def to_json(value: Any) -> Any:
    """Decimals as plain strings (no exponent), dates as ISO strings, recursively."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value
