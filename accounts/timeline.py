"""The account timeline: facts from any source, each written once (keyed), in one place.

``timeline_upsert`` is the one way in; the builders here turn imported rows into facts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from django.db import models

from .models import Contract, Invoice, Stakeholder, Ticket, TimelineEntry
from .money import OLD_MONEY, count_text, money_exact, old_money_text

Kind = TimelineEntry.Kind
# imported facts handed to ``services.timeline_facts_recorded`` (higher apps react at once)
SIGNAL_KINDS = (Kind.TICKET_ESCALATED, Kind.PAYMENT_FAILED)
TITLE_MAX = TimelineEntry._meta.get_field("title").max_length
# the kinds of the facts the apps above accounts write (metrics, surveys, playbooks): each
# registers its own in its AppConfig.ready, so that the API can refuse a kind no fact has
# (``/timeline/?kind=bogus``) instead of answering an empty list
OTHER_KINDS: set[str] = set()


def kinds_register(*kinds: str) -> None:
    OTHER_KINDS.update(kinds)


def kinds() -> list[str]:
    """Every kind a timeline fact can have, sorted."""
    return sorted({*Kind.values, *OTHER_KINDS})


def timeline_upsert(entries: Iterable[TimelineEntry]) -> None:
    """Write facts; a fact already there (same account and key) is refreshed in place."""
    entries = list(entries)
    for entry in entries:  # titles quote free text (ticket subjects …): keep them in bounds
        if len(entry.title) > TITLE_MAX:
            entry.title = entry.title[: TITLE_MAX - 1] + "…"
    if entries:
        TimelineEntry.objects.bulk_create(
            entries,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["account", "key"],
            update_fields=["occurred_at", "kind", "title", "detail", "data"],
        )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


# Facts dated by a day, not an instant (contracts.csv and invoices.csv carry dates): stored
# at that day's first instant, UTC, so they sort among the others; shown as the day alone
DAY_KINDS = frozenset(
    {
        Kind.CONTRACT_STARTED,
        Kind.CONTRACT_ENDED,
        Kind.INVOICE_ISSUED,
        Kind.INVOICE_PAID,
        Kind.PAYMENT_FAILED,
    }
)


def fact_day(entry: TimelineEntry) -> dt.date | None:
    """The day a fact dated by a day names, or None for a fact with a time of day. A
    contract's end is stored at the first instant without service (the day after
    ``end_date``, so it sorts after the last day served) and names its last day, the
    ``end_date`` of contracts.csv."""
    if entry.kind not in DAY_KINDS:
        return None
    day = entry.occurred_at.astimezone(dt.UTC).date()
    if entry.kind == Kind.CONTRACT_ENDED:
        return day - dt.timedelta(days=1)
    return day


def money_text(amount) -> str:
    """An amount of money as facts and reasons print it, as the pages do: "$633,600.00"
    (``accounts.money.money_exact``: the sign of ``settings.CURRENCY``)."""
    return money_exact(amount)


def contract_facts(c: Contract) -> list[TimelineEntry]:
    what = c.product or "subscription"
    seats = f", {count_text(c.quantity, 'seat')}" if c.quantity is not None else ""
    facts = [
        TimelineEntry(
            account_id=c.account_id,
            key=f"contract:{c.external_id}:started",
            kind=Kind.CONTRACT_STARTED,
            occurred_at=_midnight(c.start_date),
            title=f"Contract started: {what}, {money_text(c.mrr)} MRR{seats}",
            data={"contract": c.external_id, "mrr": str(c.mrr), "quantity": c.quantity},
        )
    ]
    if c.end_date is not None and c.end_date < dt.date.max:  # 9999-12-31 means "open-ended"
        # the first day without service, so "ended" sorts after the last day served; often
        # a day ahead (a contract is imported with its end): the account page's timeline
        # lists a fact from its day on (workspace.selectors.timeline_page)
        facts.append(
            TimelineEntry(
                account_id=c.account_id,
                key=f"contract:{c.external_id}:ended",
                kind=Kind.CONTRACT_ENDED,
                occurred_at=_midnight(c.end_date + dt.timedelta(days=1)),
                title=f"Contract period ended: {what}, {money_text(c.mrr)} MRR",
                data={"contract": c.external_id, "end_date": c.end_date.isoformat()},
            )
        )
    return facts


def stakeholder_facts(s: Stakeholder, *, now: dt.datetime) -> list[TimelineEntry]:
    role = s.get_role_display().lower() if s.role else "contact"
    return [
        TimelineEntry(
            account_id=s.account_id,
            key=f"stakeholder:{s.external_id}:added",
            kind=Kind.STAKEHOLDER_ADDED,
            occurred_at=now,
            title=f"{s.name or s.email or s.external_id} added as {role}",
            data={"stakeholder": s.external_id, "role": s.role},
        )
    ]


def ticket_facts(t: Ticket) -> list[TimelineEntry]:
    facts = [
        TimelineEntry(
            account_id=t.account_id,
            key=f"ticket:{t.external_id}:opened",
            kind=Kind.TICKET_OPENED,
            occurred_at=t.opened_at,
            title=f"Ticket opened ({t.priority}): {t.subject or t.external_id}",
            data={"ticket": t.external_id, "priority": t.priority},
        )
    ]
    if t.escalated:
        facts.append(
            TimelineEntry(
                account_id=t.account_id,
                key=f"ticket:{t.external_id}:escalated",
                kind=Kind.TICKET_ESCALATED,
                occurred_at=t.first_response_at or t.opened_at,
                title=f"Ticket escalated: {t.subject or t.external_id}",
                data={"ticket": t.external_id},
            )
        )
    if t.resolved_at is not None:
        facts.append(
            TimelineEntry(
                account_id=t.account_id,
                key=f"ticket:{t.external_id}:resolved",
                kind=Kind.TICKET_RESOLVED,
                occurred_at=t.resolved_at,
                title=f"Ticket resolved: {t.subject or t.external_id}",
                data={"ticket": t.external_id, "csat": t.csat},
            )
        )
    return facts


def invoice_facts(i: Invoice) -> list[TimelineEntry]:
    facts = [
        TimelineEntry(
            account_id=i.account_id,
            key=f"invoice:{i.external_id}:issued",
            kind=Kind.INVOICE_ISSUED,
            occurred_at=_midnight(i.issued_on),
            title=f"Invoice issued: {money_text(i.amount)}",
            data={"invoice": i.external_id, "amount": str(i.amount)},
        )
    ]
    if i.paid_on is not None:
        facts.append(
            TimelineEntry(
                account_id=i.account_id,
                key=f"invoice:{i.external_id}:paid",
                kind=Kind.INVOICE_PAID,
                occurred_at=_midnight(i.paid_on),
                title=f"Invoice paid: {money_text(i.amount)}",
                data={"invoice": i.external_id},
            )
        )
    if i.status == Invoice.Status.FAILED:
        facts.append(
            TimelineEntry(
                account_id=i.account_id,
                key=f"invoice:{i.external_id}:failed",
                kind=Kind.PAYMENT_FAILED,
                occurred_at=_midnight(i.due_on or i.issued_on),
                title=(
                    f"Payment failed: {money_text(i.amount)} "
                    f"({count_text(i.failed_attempts, 'attempt')})"
                ),
                data={"invoice": i.external_id, "failed_attempts": i.failed_attempts},
            )
        )
    return facts


# Facts derived from a row's current state, rewritten whenever the row changes (a ticket
# that is no longer escalated loses its "escalated" fact). "stakeholder added" is not here:
# it is a one-time fact, kept from the first import that saw the person.
DERIVED_FACTS = {
    "contracts": ("contract", ("started", "ended"), contract_facts),
    "tickets": ("ticket", ("opened", "escalated", "resolved"), ticket_facts),
    "invoices": ("invoice", ("issued", "paid", "failed"), invoice_facts),
}


def derived_fact_keys(kind: str, external_id: str) -> list[str]:
    prefix, suffixes, _ = DERIVED_FACTS[kind]
    return [f"{prefix}:{external_id}:{suffix}" for suffix in suffixes]


def derived_facts(kind: str, obj) -> list[TimelineEntry]:
    return DERIVED_FACTS[kind][2](obj)


# Money in the titles of facts written before the one spelling of money (accounts.money):
# "1,485.00 USD" where facts now say "$1,485.00". Only where the builders above put an
# amount: after the title's head for invoices, before " MRR" for contracts (a product name
# is free text and is left alone).
OLD_MONEY_TITLES = {
    Kind.INVOICE_ISSUED: re.compile(rf"^(?P<head>Invoice issued: ){OLD_MONEY}$"),
    Kind.INVOICE_PAID: re.compile(rf"^(?P<head>Invoice paid: ){OLD_MONEY}$"),
    Kind.PAYMENT_FAILED: re.compile(rf"^(?P<head>Payment failed: ){OLD_MONEY}(?= \()"),
    Kind.CONTRACT_STARTED: re.compile(rf"(?P<head>, ){OLD_MONEY}(?= MRR(?:, [\d,]+ seats?)?$)"),
    Kind.CONTRACT_ENDED: re.compile(rf"(?P<head>, ){OLD_MONEY}(?= MRR$)"),
}


def old_money_title(kind: str, title: str) -> str:
    """A fact's title with an amount in the old spelling ("Invoice paid: 1,485.00 USD")
    as the builders write it now ("Invoice paid: $1,485.00"), with the sign of the
    currency the title names; any other title as it is."""
    pattern = OLD_MONEY_TITLES.get(kind)
    match = pattern.search(title) if pattern else None
    if match is None:
        return title
    money = old_money_text(match["amount"], match["code"])
    return title[: match.start()] + f"{match['head']}{money}" + title[match.end() :]


def money_titles_reword(entries=None, *, batch: int = 2000) -> int:
    """Rewrite the amounts of facts stored with the old spelling of money, as their
    builders print them now (``old_money_title``): the words change, not the amount, the
    currency, the data or the date. ``entries``: the TimelineEntry model (a migration
    passes its historical one). Returns the number of titles rewritten."""
    entries = entries or TimelineEntry
    facts = entries.objects.filter(
        kind__in=list(OLD_MONEY_TITLES), title__regex=r"\.\d\d [A-Z]{3}"
    ).only("pk", "kind", "title")
    return rows_reword(facts, "title", lambda f: old_money_title(f.kind, f.title), batch=batch)


def rows_reword(rows, column: str, reword, *, batch: int = 2000) -> int:
    """Rewrite ``column`` of each of ``rows`` (a queryset, a migration's historical model
    too) as ``reword(row)`` gives it (the same text, or None: left alone), reading and
    writing ``batch`` rows at a time in the order of their ids: the memory of one batch
    whatever the table's size, and a second run finds nothing to do. Returns how many
    rows were rewritten. The data migrations that reword stored words use it."""
    manager = rows.model._default_manager
    changed, done = [], 0
    for row in rows.order_by("pk").iterator(chunk_size=batch):
        text = reword(row)
        if text is None or text == getattr(row, column):
            continue
        setattr(row, column, text)
        changed.append(row)
        if len(changed) >= batch:
            done += manager.bulk_update(changed, [column])
            changed = []
    if changed:
        done += manager.bulk_update(changed, [column])
    return done


# Counts of one in the titles of facts written before ``count_text``: "(1 attempts)" where
# facts now say "(1 attempt)", ", 1 seats" where they say ", 1 seat". Only at the end of
# the title, where the builders put the count (a product name or a subject is free text).
OLD_ONE_TITLES = {
    Kind.PAYMENT_FAILED: (" (1 attempts)", " (1 attempt)"),
    Kind.CONTRACT_STARTED: (", 1 seats", ", 1 seat"),
}


def one_count_titles_reword(entries=None, *, batch: int = 2000) -> int:
    """Rewrite "1 attempts" and "1 seats" at the end of stored facts' titles as the
    builders write them now; the words change, nothing else. ``entries``: the
    TimelineEntry model (a migration passes its historical one). Returns the number of
    titles rewritten. One pass over the table for both kinds."""
    entries = entries or TimelineEntry
    ends = models.Q()
    for kind, (old, _) in OLD_ONE_TITLES.items():
        ends |= models.Q(kind=kind, title__endswith=old)

    def reword(fact) -> str | None:
        old, new = OLD_ONE_TITLES[fact.kind]
        return fact.title[: -len(old)] + new if fact.title.endswith(old) else None

    facts = entries.objects.filter(ends).only("pk", "kind", "title")
    return rows_reword(facts, "title", reword, batch=batch)
