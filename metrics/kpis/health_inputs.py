"""Per-account measures as of a day: the inputs of health scoring (``metrics.health``).

Set-based: a fixed handful of aggregate queries for any number of accounts (one per source:
contracts, events, key features, tickets, invoices, stakeholders, CSM activity, surveys), whatever
the size of the chunk. Definitions are the KPI engine's, per account instead of per scope:
``contract_facts`` (seats), ``adoption.usage_inputs`` (usage, from the daily rollups),
``support.open_escalation``/``invoice_overdue_at``/``failed_payments_window`` (support,
billing).

As-of rule (docs/metrics.md): for day D only rows that existed or occurred before D ends
count: events and tickets by their timestamps, invoices by ``issued_on``/``paid_on``, CSM
activity by ``occurred_at``, a ticket's or invoice's status without its date (solved, paid) from
the row's ``updated_at`` on (``support.open_escalation``, ``support.invoice_open_at``),
stakeholders (which carry no date of their own) by the time the row was created, survey
answers as in force at the end of the day (``surveys.selectors.counted_responses``). What
keeps no history is read as it is now: a stakeholder's role, a ticket's ``escalated``, an
invoice's ``failed_attempts``, a contract's ``quantity`` (docs/metrics.md lists them). ``None``
means "no data" (see each measure) and never 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum

from accounts.models import Account, Activity, Invoice, Stakeholder, Ticket
from surveys import selectors as survey_selectors
from voice import selectors as voice_selectors

from . import adoption, support
from .common import ZERO, in_scope, midnight, money, pct
from .revenue import contract_facts

WINDOW_DAYS = adoption.WINDOW_DAYS


def _pct(numerator, denominator) -> float | None:
    """A ratio as a percentage with full precision (metrics.md's convention: the measures
    are scored and stored unrounded; the words round them): a usage trend of −50.004 % is
    down more than 50 %, not the −50.0 % a rounding to two places made of it."""
    value = pct(numerator, denominator)
    return None if value is None else float(value)


def account_measures(
    accounts: QuerySet[Account],
    *,
    as_of: dt.date,
    usage: adoption.UsageInputs | None = None,
    account_ids: Iterable[int] = (),
) -> dict[int, dict[str, Any]]:
    """For each account of ``accounts`` with any data before the end of ``as_of``, the
    measure values of ``metrics.health.MEASURES`` and the raw values behind them, JSON-ready.
    Accounts without any data are absent (every measure is None for them). A fixed number of
    queries whatever the number of accounts (pinned by the tests).

    ``usage``: the ``adoption.usage_inputs`` of the day (``end`` = the day after ``as_of``),
    when the caller read them for the whole book at once (the nightly pipeline in one
    process, which shares them with the KPI snapshots); then ``account_ids`` are the ids of
    ``accounts`` and the usage is not read here."""
    end = as_of + dt.timedelta(days=1)
    if usage is not None and usage.end != end:
        raise ValueError(f"usage inputs end on {usage.end}, the measures need {end}")
    t1 = midnight(end)
    out: dict[int, dict[str, Any]] = {}

    def row(account_id: int) -> dict[str, Any]:
        return out.setdefault(account_id, {})

    # 1. licensed seats on the day
    seats = {f.id: f.seats for f in contract_facts(accounts, days=[as_of], seats_day=as_of)}

    # 2. usage in the 30 days and the 30 before (from the rollups: ``adoption.usage_inputs``
    # without the figures health does not use), for the accounts with events in those days
    if usage is None:
        usage = adoption.usage_inputs(accounts, end=end, known=False, features=False)
        rows = list(usage.per_account.items())
    else:  # read for the whole book: only the accounts asked for
        rows = [(a, usage.per_account.get(a)) for a in account_ids]
    by_account = {a: u for a, u in rows if u and (u["events"] or u["previous_events"])}
    used = {a: u["key_used"] for a, u in rows if u and u["key_used"]}
    for account_id, u in by_account.items():
        r = row(account_id)
        r["active_users_30d"] = u["active"]
        r["active_users_previous_30d"] = u["previous_active"]
        r["events_30d"] = u["events"]
        r["events_previous_30d"] = u["previous_events"]
        r["usage_trend"] = _pct(u["events"] - u["previous_events"], u["previous_events"])
        r["usage_trend_users"] = _pct(u["active"] - u["previous_active"], u["previous_active"])
    for account_id, n in seats.items():
        if n:
            r = row(account_id)
            r["licensed_seats"] = n
            active = by_account.get(account_id, {}).get("active", 0)
            r.setdefault("active_users_30d", active)
            r["seat_utilisation"] = _pct(active, n)

    # 3. key features used in 30 days (no data without KEY_FEATURES)
    key_features = list(settings.KEY_FEATURES)
    if key_features:
        # every account with usage or seats gets a value: using none of them is data
        for account_id in set(by_account) | set(used) | {a for a, n in seats.items() if n}:
            r = row(account_id)
            r["key_features_used_30d"] = used.get(account_id, 0)
            r["key_features_defined"] = len(key_features)
            r["key_feature_adoption"] = _pct(used.get(account_id, 0), len(key_features))

    # 4. tickets: support has data once the account has opened a ticket before the end
    tickets = (
        in_scope(Ticket.objects.all(), accounts)
        .filter(opened_at__lt=t1)
        .values("account_id")
        .order_by()
        .annotate(
            n=Count("pk"),
            recent=Count("pk", filter=Q(opened_at__gte=t1 - dt.timedelta(days=WINDOW_DAYS))),
            escalations=Count("pk", filter=support.open_escalation(t1)),
        )
    )
    for t in tickets:
        r = row(t["account_id"])
        r["open_escalations"] = t["escalations"]
        r["tickets_30d"] = t["recent"]
        r["tickets_per_100_seats_30d"] = _pct(t["recent"], seats.get(t["account_id"], 0))

    # 5. invoices: payments have data once the account has an invoice issued before the end
    invoices = (
        in_scope(Invoice.objects.filter(support.invoice_counts_at(end)), accounts)
        .filter(issued_on__lt=end)
        .values("account_id")
        .order_by()
        .annotate(
            n=Count("pk"),
            overdue=Count("pk", filter=support.invoice_overdue_at(end)),
            overdue_amount=Sum("amount", filter=support.invoice_overdue_at(end), default=ZERO),
            failed=Sum("failed_attempts", filter=support.failed_payments_window(end), default=0),
        )
    )
    for i in invoices:
        r = row(i["account_id"])
        r["overdue_invoices"] = i["overdue"]
        r["overdue_amount"] = format(money(i["overdue_amount"]), "f")
        r["failed_payments_90d"] = i["failed"]

    # 6. stakeholders known by the end of the day, and champions among them
    for s in (
        in_scope(Stakeholder.objects.all(), accounts)
        .filter(created_at__lt=t1)
        .values("account_id")
        .order_by()
        .annotate(n=Count("pk"), champions=Count("pk", filter=Q(role="champion")))
    ):
        r = row(s["account_id"])
        r["stakeholders"] = s["n"]
        r["champion_present"] = 1 if s["champions"] else 0

    # 7. the last CSM touch on or before the day
    for account_id, last in (
        in_scope(Activity.objects.all(), accounts)
        .filter(occurred_at__lt=t1)
        .values("account_id")
        .order_by()
        .annotate(last=Max("occurred_at"))
        .values_list("account_id", "last")
    ):
        r = row(account_id)
        last_day = last.astimezone(dt.UTC).date()
        r["last_touch_on"] = last_day.isoformat()
        r["days_since_last_touch"] = (as_of - last_day).days

    # 8. survey answers of the last 365 days: the account's NPS, CSAT and CES
    for account_id, values in survey_selectors.account_sentiment(accounts, as_of=as_of).items():
        row(account_id).update(values)

    # 9. voice of the customer: text sentiment and relationship score (three queries)
    for account_id, values in voice_selectors.health_measures(accounts, as_of=as_of).items():
        row(account_id).update(values)

    # how many key features are chosen, on every account with data: the health reasons
    # then tell "none chosen" (0) from "no usage or seats in the window" (some chosen, and
    # no key_feature_adoption)
    for r in out.values():
        r.setdefault("key_features_defined", len(key_features))
    return out
