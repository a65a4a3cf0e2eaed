"""Support (tickets), billing (invoices) and the voice of the customer (survey answers).

Tickets count when opened in ``[start, end)``; only what was known before ``end`` counts
(a response or resolution after ``end`` has not happened yet as of the period's end).
Invoice balances are taken at the start of day ``end``: an invoice is open then if it was
issued before ``end``, is not void, and was not paid before ``end``. As-of (docs/metrics.md):
only facts dated before ``end`` count; a paid, solved or closed status without its date
(``paid_on``, ``resolved_at``) counts from the row's ``updated_at`` (when it was written) on.
Void invoices are left out of every day (they were never owed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from django.db import connections
from django.db.models import Aggregate, Count, Field, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from accounts.models import Account, Invoice, Ticket
from surveys import selectors as survey_selectors

from .common import ZERO, in_scope, kpi, median, midnight, money, pct, percentile, ratio
from .revenue import AccountFacts, AsOf

FAILED_PAYMENT_DAYS = 90


def open_escalation(t1: dt.datetime) -> Q:
    """Tickets that are open escalations at the instant ``t1``: escalated, opened before it,
    and not resolved before it. As of a past instant only dated facts count: resolved at or
    after ``t1``, or without a resolution time and either still open/pending or marked solved
    or closed only at or after ``t1`` (``updated_at``: a status is known from the moment it was
    written; before that the ticket was open as far as anyone knew)."""
    return Q(escalated=True, opened_at__lt=t1) & (
        Q(resolved_at__gte=t1)
        | Q(resolved_at__isnull=True)
        & (Q(status__in=[Ticket.Status.OPEN, Ticket.Status.PENDING]) | Q(updated_at__gte=t1))
    )


def invoice_counts_at(end: dt.date) -> Q:
    """Invoices that count at the start of day ``end``: all but void ones. A void invoice was
    never owed (voiding corrects an invoice), so it is left out of every day, past ones too;
    ``end`` is there so callers state the day."""
    return ~Q(status=Invoice.Status.VOID)


def invoice_open_at(end: dt.date) -> Q:
    """Invoices open at the start of day ``end``: issued before it and not paid before it, by
    the dates: ``paid_on`` on or after ``end``, or no ``paid_on`` and either not marked paid
    or marked paid only at or after ``end`` (``updated_at``). Void invoices: the caller
    filters with ``invoice_counts_at``."""
    return Q(issued_on__lt=end) & (
        Q(paid_on__gte=end)
        | Q(paid_on__isnull=True)
        & (~Q(status=Invoice.Status.PAID) | Q(updated_at__gte=midnight(end)))
    )


def invoice_overdue_at(end: dt.date) -> Q:
    """Invoices open at the start of day ``end`` whose due date is before it."""
    return invoice_open_at(end) & Q(due_on__lt=end)


def failed_payments_window(end: dt.date) -> Q:
    """Invoices whose failed attempts count as "in 90 days" for ``end`` (see billing_kpis)."""
    return Q(issued_on__gte=end - dt.timedelta(days=FAILED_PAYMENT_DAYS), issued_on__lt=end)


def support_kpis(
    accounts: QuerySet[Account],
    *,
    start: dt.date,
    end: dt.date,
    facts: Sequence[AccountFacts] | AsOf | None = None,
    seats: int | None = None,
    customers_in_period: int,
    figures: TicketFigures | None = None,
) -> dict[str, dict]:
    """Ticket volume (total, per customer account, per 100 licensed seats), first response
    and resolution times (median and p90, hours), FCR and open escalations. The licensed
    seats on the period's last day: ``seats``, or summed from ``facts``. One query on
    PostgreSQL, two elsewhere (``ticket_figures``), none when the caller read ``figures``."""
    if figures is None:
        figures = ticket_figures(accounts, start=start, end=end)
    counts, response, resolution = figures
    if seats is None:
        seats = facts.seats_total if isinstance(facts, AsOf) else sum(f.seats for f in facts)
    return {
        "ticket_volume": kpi(counts["opened"], "tickets"),
        "tickets_per_account": kpi(
            ratio(counts["opened"], customers_in_period),
            "tickets",
            tickets=counts["opened"],
            customer_accounts=customers_in_period,
        ),
        "tickets_per_100_seats": kpi(
            pct(counts["opened"], seats), "tickets", tickets=counts["opened"], licensed_seats=seats
        ),
        "first_response_hours": kpi(
            response.median, "hours", p90=response.p90, tickets=response.tickets
        ),
        "resolution_hours": kpi(
            resolution.median, "hours", p90=resolution.p90, tickets=resolution.tickets
        ),
        "fcr": kpi(
            pct(counts["one_contact"], counts["resolved"]),
            "%",
            resolved_with_one_contact=counts["one_contact"],
            resolved=counts["resolved"],
            # metrics.md: every resolved ticket is in the denominator; these count as "not
            # resolved on first contact" since nobody recorded one
            resolved_contacts_unknown=counts["contacts_unknown"],
        ),
        "open_escalations": kpi(counts["escalations"], "tickets"),
    }


class HoursSummary(NamedTuple):
    """Median and p90 of a set of durations in hours, and how many there were."""

    median: float | None
    p90: float | None
    tickets: int


# the ticket counts, the first-response hours and the resolution hours (``_ticket_figures``)
TicketFigures = tuple[dict[str, int], HoursSummary, HoursSummary]


class _Percentiles(Aggregate):
    """PostgreSQL's ``percentile_cont`` at 0.5 and 0.9 (median and p90, as a two-element
    array) of an expression; NULLs are left out, as in every aggregate."""

    function = "percentile_cont"
    template = "%(function)s(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = Field()  # the array as the driver gives it (a list of floats)


def _hours_sql(column: str, t1: dt.datetime) -> RawSQL:
    """Hours from ``opened_at`` to ``column``, if that is before ``t1`` (else NULL): the
    exact seconds (an interval's epoch is numeric) as float8, divided by 3600. ``column`` is
    one of this module's own column names, never input; the instant is a bound parameter."""
    return RawSQL(  # nosec B611 - see the docstring
        f"CASE WHEN {column} < %s THEN EXTRACT(EPOCH FROM {column} - opened_at)::float8 / 3600 END",
        [t1],
    )


def ticket_figures(accounts: QuerySet[Account], *, start: dt.date, end: dt.date) -> TicketFigures:
    """What ``support_kpis`` reads of the tickets of ``accounts`` for ``[start, end)``
    (``_ticket_figures``)."""
    tickets = in_scope(Ticket.objects.all(), accounts)
    return _ticket_figures(tickets, midnight(start), midnight(end))


def _ticket_figures(tickets: QuerySet[Ticket], t0: dt.datetime, t1: dt.datetime) -> TicketFigures:
    """The ticket counts of ``support_kpis`` for ``[t0, t1)`` (opened, resolved, resolved
    with one or unknown agent contacts, open escalations at ``t1``) and the median, p90 and
    count of the hours from opened to first response, and to resolution, of the tickets
    opened in ``[t0, t1)``, for the responses and resolutions before ``t1``.

    PostgreSQL: one aggregate, the hours' median and p90 by ``percentile_cont`` over the
    exact seconds as float8 divided by 3600, which is what ``common.percentile`` gives over
    ``_hours`` (the same doubles, the same interpolation, in the same order: tested); a year
    of tickets is 200,000 rows, and fetching and sorting them in Python was most of the
    support KPIs' time. Elsewhere two queries: the counts, then ``_hours`` in Python."""
    opened = Q(opened_at__gte=t0, opened_at__lt=t1)
    resolved = opened & Q(resolved_at__lt=t1)
    aggregates = {
        "opened": Count("pk", filter=opened),
        "resolved": Count("pk", filter=resolved),
        "contacts_unknown": Count("pk", filter=resolved & Q(agent_contacts__isnull=True)),
        "one_contact": Count("pk", filter=resolved & Q(agent_contacts=1)),
        "escalations": Count("pk", filter=open_escalation(t1)),
    }
    postgresql = connections[tickets.db].vendor == "postgresql"
    if postgresql:
        for name, column in (("response", "first_response_at"), ("resolution", "resolved_at")):
            aggregates[f"{name}_q"] = _Percentiles(_hours_sql(column, t1), filter=opened)
            # the hours that are not NULL, counted without computing them again
            aggregates[f"{name}_n"] = Count("pk", filter=opened & Q(**{f"{column}__lt": t1}))
    counts = tickets.aggregate(**aggregates)
    if postgresql:
        return (
            counts,
            HoursSummary(*(counts["response_q"] or (None, None)), counts["response_n"]),
            HoursSummary(*(counts["resolution_q"] or (None, None)), counts["resolution_n"]),
        )
    answered = tickets.filter(opened).filter(Q(first_response_at__lt=t1) | Q(resolved_at__lt=t1))
    response, resolution = _hours(answered, t1)
    return (
        counts,
        HoursSummary(median(response), percentile(response, 90), len(response)),
        HoursSummary(median(resolution), percentile(resolution, 90), len(resolution)),
    )


def _hours(tickets: QuerySet[Ticket], t1: dt.datetime) -> tuple[list[float], list[float]]:
    """Hours from opened to first response, and to resolution, of ``tickets``, for the
    responses and resolutions before ``t1``, subtracted in Python: the exact seconds
    rounded to the nearest double (as PostgreSQL's ``EXTRACT(EPOCH …)::float8`` rounds
    them), then divided by 3600."""
    response, resolution = [], []
    for opened_at, responded_at, resolved_at in tickets.values_list(
        "opened_at", "first_response_at", "resolved_at"
    ):
        if responded_at is not None and responded_at < t1:
            response.append((responded_at - opened_at).total_seconds() / 3600)
        if resolved_at is not None and resolved_at < t1:
            resolution.append((resolved_at - opened_at).total_seconds() / 3600)
    return response, resolution


def billing_kpis(accounts: QuerySet[Account], *, start: dt.date, end: dt.date) -> dict[str, dict]:
    """Overdue invoices (count, amount), failed payment attempts in 90 days and DSO. One
    query. Invoices carry a count of failed attempts, not their dates, so "in 90 days" counts
    the attempts on invoices issued in the 90 days before ``end``."""
    invoices = in_scope(Invoice.objects.filter(invoice_counts_at(end)), accounts)
    open_at_end = invoice_open_at(end)
    overdue = invoice_overdue_at(end)
    failed_since = end - dt.timedelta(days=FAILED_PAYMENT_DAYS)
    agg = invoices.aggregate(
        receivable=Sum("amount", filter=open_at_end, default=ZERO),
        overdue_count=Count("pk", filter=overdue),
        overdue_amount=Sum("amount", filter=overdue, default=ZERO),
        invoiced=Sum("amount", filter=Q(issued_on__gte=start, issued_on__lt=end), default=ZERO),
        failed=Sum("failed_attempts", filter=failed_payments_window(end), default=0),
    )
    for key in ("receivable", "overdue_amount", "invoiced"):
        agg[key] = money(agg[key])
    days = (end - start).days
    dso = ratio(agg["receivable"] * days, agg["invoiced"])
    return {
        "overdue_invoices": kpi(agg["overdue_count"], "invoices", amount=agg["overdue_amount"]),
        "failed_payments_90d": kpi(agg["failed"], "attempts", since=failed_since),
        "dso": kpi(
            dso,
            "days",
            receivable_at_end=agg["receivable"],
            invoiced_in_period=agg["invoiced"],
            days_in_period=days,
        ),
    }


def voice_of_customer_kpis(
    accounts: QuerySet[Account], *, start: dt.date, end: dt.date
) -> dict[str, dict]:
    """NPS, CSAT, CES, response rate and detractor follow-up time (docs/metrics.md) over the
    scope's survey answers given in ``[start, end)``; only the latest answer of a person per
    campaign counts (``surveys.selectors``, which the results pages use too). Three queries."""
    voc = survey_selectors.voice_of_customer(accounts, start=start, end=end)
    nps, csat, ces = voc["kinds"]["nps"], voc["kinds"]["csat"], voc["kinds"]["ces"]
    invitations, follow_up = voc["invitations"], voc["follow_up"]
    # the values again from the counts, as Decimals: the selectors' are floats (for the
    # results pages), and metrics.md wants ratios with full precision like every other KPI
    ces_total = sum(score * n for score, n in ces.distribution)
    return {
        "nps": kpi(
            pct(nps.promoters - nps.detractors, nps.responses),
            "score",
            responses=nps.responses,
            promoters=nps.promoters,
            passives=nps.passives,
            detractors=nps.detractors,
        ),
        "csat": kpi(
            pct(csat.satisfied, csat.responses),
            "%",
            responses=csat.responses,
            satisfied_4_or_5=csat.satisfied,
        ),
        "ces": kpi(
            ratio(ces_total, ces.responses),
            "score",
            responses=ces.responses,
            easy_5_or_more=ces.easy,
            easy_pct=pct(ces.easy, ces.responses),
        ),
        "response_rate": kpi(
            pct(invitations["responded"], invitations["delivered"]),
            "%",
            responded=invitations["responded"],
            delivered=invitations["delivered"],
        ),
        "detractor_follow_up_hours": kpi(
            follow_up["median_hours"],
            "hours",
            followed_up=follow_up["followed_up"],
            waiting=follow_up["waiting"],
        ),
    }
