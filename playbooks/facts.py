"""Per-account facts for the playbook rules, gathered set-based: one aggregate query per
*source* the enabled playbooks need, whatever the number of accounts (pinned by tests).

``gather(as_of=…, sources=…, account_ids=None)`` returns ``{account_id: facts}`` where facts
is a plain dict (``playbooks.rules`` reads it). Definitions are the KPI engine's
(``metrics.kpis``: a contract covers a day iff start <= day <= end; open escalations,
overdue invoices and failed payments in 90 days as in ``kpis.support``, the failed payments
only of invoices not paid since; usage in the 30 days ending with the as-of day vs the 30
before as in ``kpis.adoption``: events from the daily rollups, distinct active users from
the stored usage windows, read only when a rule needs them), and health comes from the daily
``HealthSnapshot`` rows the pipeline has just written.

As-of rule: only rows that existed or occurred before the as-of day ends count.

Keys per source (absent when the source was not gathered; None = no data):
- always: segment, lifecycle, owner_id, customer_since
- health: score, band, health_day (the as-of day's snapshot; for given account ids, else
  the day before's),
  snapshots ({day: (score shown, band shown, computed score, model version id)} for the
  days asked for: the score the model computed before any override, and the version that
  computed it, are what the "score dropped" trigger compares)
- band_changes: [{"from", "to", "score_from", "score_to", "as_of", "overridden", and
  "band_override" + "computed_band" when an override set the band, or "override_ended" when
  the override that set the previous band ended and the band is the computed one again}]
  recorded in the window
- usage: events_30d, events_prev_30d (from the daily rollups)
- active_users: active_30d (distinct users in the 30 days), active_prev_30d (the 30 before;
  None unless asked for)
- contracts: arr (12 × MRR on the day), seats, renewal_on (the last day of the current term;
  None when open-ended or no contract covers the day), renewed (a contract starts after the
  as-of day), latest_contract_start
- first_value: first_value_on (None = not reached; else the earlier of the first-value
  event's UTC day, or without one the first usage, and the day a CSM recorded as
  ``Milestone`` first_value), for customers of the last
  ``FIRST_VALUE_HORIZON_DAYS`` only (older accounts have no key: the trigger stays quiet)
- invoices: overdue_invoices, overdue_amount, and the failed payments not followed by a
  payment of their invoice (the billing data gives an invoice a count of failed attempts,
  not their dates, and the day it was paid): unpaid_failed_invoices (invoices open at the
  end of the as-of day, ``kpis.support.invoice_open_at``, with a failed attempt or marked
  failed), unpaid_failed_payments_90d and unpaid_failed_invoices_90d (the failed attempts
  of those issued in the 90 days, as ``kpis.support`` counts failed payments in 90 days,
  and the invoices they are of). An invoice paid after its failed attempts counts in none.
- tickets: open_tickets, open_escalations
- surveys: unhappy_answers [{"survey_kind", "score", "title", "comment", "on", "entry_id"}]
- champions: champions_now, champion_before (the name of a champion once added, or None)
- activity: last_touch_on
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from accounts.models import (
    Account,
    Activity,
    Contract,
    Invoice,
    Milestone,
    Stakeholder,
    Ticket,
    TimelineEntry,
    UsageDaily,
    UsageEvent,
)
from config.db import beside_or_now, threads_possible
from metrics.kpis import adoption, support
from metrics.kpis.common import ZERO, covers, in_scope, midnight, money
from metrics.models import HealthSnapshot
from metrics.services import BAND_CHANGED_KIND

SOURCES = (
    "health",
    "band_changes",
    "usage",
    "active_users",
    "contracts",
    "first_value",
    "invoices",
    "tickets",
    "surveys",
    "champions",
    "activity",
    "voice",
)
FIRST_VALUE_HORIZON_DAYS = 365
OPEN_TICKET = Q(resolved_at__isnull=True, status__in=[Ticket.Status.OPEN, Ticket.Status.PENDING])


def _scope(account_ids: Sequence[int] | None) -> QuerySet[Account]:
    if account_ids is None:
        return Account.objects.all()
    return Account.objects.filter(pk__in=list(account_ids))


def gather(
    *,
    as_of: dt.date,
    sources: Iterable[str],
    account_ids: Sequence[int] | None = None,
    score_days: Iterable[dt.date] = (),
    window_days: int = 1,
    previous_active: bool = False,
) -> dict[int, dict[str, Any]]:
    """Facts of every account (or of ``account_ids``) as of the end of ``as_of``: one query
    for the accounts plus one per source (two for champions). ``score_days``: extra days
    whose health score the rules compare with (score dropped in D days); ``window_days``:
    how far back band changes and survey answers are read (as_of included);
    ``previous_active``: also count the active users of the 30 days before (the
    active-user trend), which doubles the events read."""
    sources = set(sources)
    unknown = sources - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown fact sources: {', '.join(sorted(unknown))}")
    accounts = _scope(account_ids)
    end = as_of + dt.timedelta(days=1)
    t1 = midnight(end)
    window_start = midnight(as_of - dt.timedelta(days=max(window_days, 1) - 1))

    out: dict[int, dict[str, Any]] = {
        pk: {"segment": seg, "lifecycle": life, "owner_id": owner, "customer_since": since}
        for pk, seg, life, owner, since in accounts.order_by().values_list(
            "pk", "segment", "lifecycle_stage", "owner_id", "customer_since"
        )
    }

    def each(rows: Iterable[tuple[int, dict]]) -> None:
        for account_id, values in rows:
            facts = out.get(account_id)
            if facts is not None:
                facts.update(values)

    # For the whole book on PostgreSQL outside a transaction (the night), the contracts',
    # first value's and invoices' aggregates (about half of the gathering's time in
    # PostgreSQL at 100,000 accounts) are read on a second connection while this one reads
    # the health, band changes, usage and the rest; the same queries either way.
    aside = account_ids is None and threads_possible()
    reads = _aside_reads(accounts, sources, as_of)  # built here, run there
    later = beside_or_now(
        lambda: {name: list(rows) for name, rows in reads.items()}, aside, name="facts"
    )

    if "health" in sources:
        # the night's snapshots; for a few accounts (the event path, today) also the day
        # before's, which stand in until today's are recorded
        days = {as_of, *score_days}
        if account_ids is not None:
            days.add(as_of - dt.timedelta(days=1))
        by_account: dict[int, dict[dt.date, tuple]] = {}
        for account_id, day, score, band, computed, version in (
            in_scope(HealthSnapshot.objects.all(), accounts)
            .filter(day__in=sorted(days))
            .values_list("account_id", "day", "score", "band", "computed_score", "model_version_id")
        ):
            by_account.setdefault(account_id, {})[day] = (score, band, computed, version)
        for facts in out.values():
            facts.update(score=None, band="", health_day=None, snapshots={})
        for account_id, snaps in by_account.items():
            facts = out.get(account_id)
            if facts is None:
                continue
            current = as_of if as_of in snaps else as_of - dt.timedelta(days=1)
            if current in snaps:
                facts["score"], facts["band"] = snaps[current][:2]
                facts["health_day"] = current
            facts["snapshots"] = snaps  # the rows as read: no second copy per account

    if "band_changes" in sources:
        for facts in out.values():
            facts["band_changes"] = []
        for account_id, data in (
            in_scope(TimelineEntry.objects.all(), accounts)
            .filter(kind=BAND_CHANGED_KIND, occurred_at__gte=window_start, occurred_at__lt=t1)
            .values_list("account_id", "data")
        ):
            if account_id in out:
                out[account_id]["band_changes"].append(data)

    if "voice" in sources:  # the voice app's daily sentiment and relationship scores
        from voice.models import AccountVoiceScore

        days = {as_of, as_of - dt.timedelta(days=1), *score_days}
        for facts in out.values():
            facts["voice"] = {}
        for account_id, day, sentiment, relationship in (
            in_scope(AccountVoiceScore.objects.all(), accounts)
            .filter(day__in=sorted(days))
            .values_list("account_id", "day", "sentiment", "relationship")
        ):
            if account_id in out:
                out[account_id]["voice"][day] = (sentiment, relationship)

    if "usage" in sources:  # events: sums of the daily rollups (kept current on ingest)
        window_first = as_of - dt.timedelta(days=adoption.WINDOW_DAYS - 1)
        previous_first = window_first - dt.timedelta(days=adoption.WINDOW_DAYS)
        for facts in out.values():
            facts.update(events_30d=0, events_prev_30d=0)
        each(
            (a, {"events_30d": now, "events_prev_30d": before})
            for a, now, before in in_scope(UsageDaily.objects.all(), accounts)
            .filter(day__gte=previous_first, day__lte=as_of)
            .values("account_id")
            .order_by()
            .annotate(
                now=Sum("events", filter=Q(day__gte=window_first), default=0),
                before=Sum("events", filter=Q(day__lt=window_first), default=0),
            )
            .values_list("account_id", "now", "before")
        )

    if "active_users" in sources:  # distinct users of the 30 days (and the 30 before)
        # ``adoption.usage_inputs``: the usage windows the night stored (directly from the
        # presences for accounts without one), the same distinct non-empty user ids per
        # account as the raw events of those UTC days, without a pass over the raw events
        # (4 s at 100,000 accounts; docs/benchmarks.md)
        for facts in out.values():
            facts.update(active_30d=0, active_prev_30d=0 if previous_active else None)
        usage = adoption.usage_inputs(accounts, end=end, known=False, features=False)
        for account_id, row in usage.per_account.items():
            facts = out.get(account_id)
            if facts is not None:
                facts["active_30d"] = row["active"]
                if previous_active:
                    facts["active_prev_30d"] = row["previous_active"]

    if "contracts" in sources:
        for facts in out.values():
            facts.update(
                arr=ZERO, seats=0, renewal_on=None, renewed=False, latest_contract_start=None
            )
        rows = later()["contracts"]
        each(
            (
                r["account_id"],
                {
                    "arr": money(r["mrr"]) * 12,
                    "seats": r["seats"] or 0,
                    "renewal_on": None if r["open_ended"] else r["term_end"],
                    "renewed": bool(r["later"]),
                    "latest_contract_start": r["latest_start"],
                },
            )
            for r in rows
        )

    if "first_value" in sources:
        horizon = as_of - dt.timedelta(days=FIRST_VALUE_HORIZON_DAYS)
        recent = accounts.filter(customer_since__gte=horizon, customer_since__lte=as_of)
        recent_ids = set(recent.values_list("pk", flat=True))
        for account_id in recent_ids:
            if account_id in out:
                out[account_id]["first_value_on"] = None
        # the earlier of the first-value event's day and the day a CSM recorded (the rows
        # of both sources, one read): the day kpis.adoption.ttfv counts
        earliest: dict[int, dt.date] = {}
        for account_id, first in later()["first_value"]:
            if account_id not in earliest or first < earliest[account_id]:
                earliest[account_id] = first
        each((a, {"first_value_on": first}) for a, first in earliest.items())

    if "invoices" in sources:
        for facts in out.values():
            facts.update(
                overdue_invoices=0,
                overdue_amount=ZERO,
                unpaid_failed_invoices=0,
                unpaid_failed_payments_90d=0,
                unpaid_failed_invoices_90d=0,
            )
        rows = later()["invoices"]
        each(
            (
                r["account_id"],
                {
                    "overdue_invoices": r["overdue"],
                    "overdue_amount": money(r["overdue_amount"]),
                    "unpaid_failed_invoices": r["failed_invoices"],
                    "unpaid_failed_payments_90d": r["failed_90d"] or 0,
                    "unpaid_failed_invoices_90d": r["failed_invoices_90d"],
                },
            )
            for r in rows
        )

    if "tickets" in sources:
        for facts in out.values():
            facts.update(open_tickets=0, open_escalations=0)
        rows = (
            in_scope(Ticket.objects.all(), accounts)
            .filter(opened_at__lt=t1)
            .filter(OPEN_TICKET | support.open_escalation(t1))
            .values("account_id")
            .order_by()
            .annotate(
                open=Count("pk", filter=OPEN_TICKET),
                escalations=Count("pk", filter=support.open_escalation(t1)),
            )
        )
        each(
            (r["account_id"], {"open_tickets": r["open"], "open_escalations": r["escalations"]})
            for r in rows
        )

    if "surveys" in sources:
        for facts in out.values():
            facts["unhappy_answers"] = []
        for entry_id, account_id, occurred_at, title, data in (
            in_scope(TimelineEntry.objects.all(), accounts)
            .filter(kind="survey_answer", occurred_at__gte=window_start, occurred_at__lt=t1)
            .filter(data__unhappy=True)
            .values_list("pk", "account_id", "occurred_at", "title", "data")
        ):
            if account_id in out:
                out[account_id]["unhappy_answers"].append(
                    {
                        "entry_id": entry_id,
                        "survey_kind": data.get("survey_kind"),
                        "score": data.get("score"),
                        "comment": data.get("comment") or "",
                        "title": title,
                        "on": occurred_at.astimezone(dt.UTC).date().isoformat(),
                    }
                )

    if "champions" in sources:
        for facts in out.values():
            facts.update(champions_now=0, champion_before=None)
        each(
            (a, {"champions_now": n})
            for a, n in in_scope(Stakeholder.objects.filter(role="champion"), accounts)
            .filter(created_at__lt=t1)
            .values("account_id")
            .order_by()
            .annotate(n=Count("pk"))
            .values_list("account_id", "n")
        )
        # a champion once added (the one-time "stakeholder added" fact keeps the role then)
        for account_id, title in (
            in_scope(TimelineEntry.objects.all(), accounts)
            .filter(kind="stakeholder_added", data__role="champion", occurred_at__lt=t1)
            .order_by("occurred_at")
            .values_list("account_id", "title")
        ):
            if account_id in out:
                out[account_id]["champion_before"] = title.split(" added as ")[0]

    if "activity" in sources:
        for facts in out.values():
            facts["last_touch_on"] = None
        each(
            (a, {"last_touch_on": last.astimezone(dt.UTC).date()})
            for a, last in in_scope(Activity.objects.all(), accounts)
            .filter(occurred_at__lt=t1)
            .values("account_id")
            .order_by()
            .annotate(last=Max("occurred_at"))
            .values_list("account_id", "last")
        )
    return out


def _aside_reads(
    accounts: QuerySet[Account], sources: set[str], as_of: dt.date
) -> dict[str, QuerySet]:
    """The aggregates ``gather`` reads for the contracts, first value and invoices sources
    (those asked for), not yet run."""
    end = as_of + dt.timedelta(days=1)
    reads: dict[str, QuerySet] = {}
    if "contracts" in sources:
        reads["contracts"] = (
            in_scope(Contract.objects.all(), accounts)
            .values("account_id")
            .order_by()
            .annotate(
                mrr=Sum("mrr", filter=covers(as_of), default=ZERO),
                seats=Sum("quantity", filter=covers(as_of), default=0),
                open_ended=Count("pk", filter=covers(as_of) & Q(end_date__isnull=True)),
                term_end=Max("end_date", filter=covers(as_of)),
                later=Count("pk", filter=Q(start_date__gt=as_of)),
                latest_start=Max("start_date"),
            )
        )
    if "first_value" in sources:
        horizon = as_of - dt.timedelta(days=FIRST_VALUE_HORIZON_DAYS)
        recent = accounts.filter(customer_since__gte=horizon, customer_since__lte=as_of)
        event = settings.FIRST_VALUE_EVENT
        if event:  # the configured first-value event (kpis.adoption.ttfv): its UTC day
            from_usage = (
                UsageEvent.objects.filter(account__in=recent.values("pk"), event=event)
                .filter(occurred_at__lt=midnight(end))
                .values("account_id")
                .order_by()
                .annotate(first=Min(TruncDate("occurred_at", tzinfo=dt.UTC)))
                .values_list("account_id", "first")
            )
        else:  # none configured: any product usage is the first value
            from_usage = (
                UsageDaily.objects.filter(account__in=recent.values("pk"), day__lte=as_of)
                .values("account_id")
                .order_by()
                .annotate(first=Min("day"))
                .values_list("account_id", "first")
            )
        # and the day a CSM recorded (at most one per account), in the same query: gather
        # reads each source once whatever the number of accounts
        recorded = Milestone.objects.filter(
            account__in=recent.values("pk"),
            kind=Milestone.Kind.FIRST_VALUE,
            reached_on__lte=as_of,
        ).values_list("account_id", "reached_on")
        reads["first_value"] = from_usage.union(recorded, all=True)
    if "invoices" in sources:
        # every fact here is of invoices still open at the end of the day: a failed payment
        # followed by the invoice's payment is no trouble left
        failed = Q(failed_attempts__gt=0) | Q(status=Invoice.Status.FAILED)
        failed_90d = Q(failed_attempts__gt=0) & support.failed_payments_window(end)
        reads["invoices"] = (
            in_scope(Invoice.objects.exclude(status=Invoice.Status.VOID), accounts)
            .filter(support.invoice_open_at(end))
            .filter(support.invoice_overdue_at(end) | failed)
            .values("account_id")
            .order_by()
            .annotate(
                overdue=Count("pk", filter=support.invoice_overdue_at(end)),
                overdue_amount=Sum("amount", filter=support.invoice_overdue_at(end), default=ZERO),
                failed_invoices=Count("pk", filter=failed),
                failed_90d=Sum("failed_attempts", filter=failed_90d, default=0),
                failed_invoices_90d=Count("pk", filter=failed_90d),
            )
        )
    return reads
