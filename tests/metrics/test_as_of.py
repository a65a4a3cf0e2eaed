"""As of a past day D, health measures and KPIs use only facts dated by the end of D
(docs/metrics.md, As-of): a ticket is open until its ``resolved_at``; an invoice is open until
its ``paid_on``; a status without its date (solved, closed, paid) counts only from when it
was written (``updated_at``); void invoices never count (they were never owed). Backfills
(``recompute --from --to``) therefore rebuild what was known each day, not today's state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts.models import Account, Invoice, Ticket
from metrics.kpis import kpi_report
from metrics.kpis.health_inputs import account_measures
from metrics.models import HealthSnapshot
from tests.factories import AccountFactory, ContractFactory, InvoiceFactory, TicketFactory

pytestmark = pytest.mark.django_db


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=dt.UTC)


def _written_at(model, pk, when):
    """Date the row's last write (the import that set its status) into the past."""
    model.objects.filter(pk=pk).update(updated_at=when)


@pytest.fixture
def book():
    """One account, its facts by date:
    T1 escalated, opened 03-01, resolved_at 03-10, status closed
    T2 escalated, opened 03-02, no resolved_at, status solved written on 03-20
    I1 500.00 issued 02-01, due 03-01, paid_on 03-15, status paid
    I2 300.00 issued 02-01, due 03-01, no paid_on, status paid written on 03-25
    I3 200.00 issued 02-01, due 03-01, status void written on 03-12 (never counts)"""
    account = AccountFactory()
    ContractFactory(account=account, start_date=dt.date(2024, 1, 1), quantity=10)
    TicketFactory(
        account=account,
        opened_at=at(3, 1),
        resolved_at=at(3, 10),
        status=Ticket.Status.CLOSED,
        escalated=True,
    )
    t2 = TicketFactory(
        account=account, opened_at=at(3, 2), status=Ticket.Status.SOLVED, escalated=True
    )
    _written_at(Ticket, t2.pk, at(3, 20))
    common = {"account": account, "issued_on": dt.date(2024, 2, 1), "due_on": dt.date(2024, 3, 1)}
    InvoiceFactory(**common, amount=Decimal("500.00"), paid_on=dt.date(2024, 3, 15), status="paid")
    i2 = InvoiceFactory(**common, amount=Decimal("300.00"), status=Invoice.Status.PAID)
    _written_at(Invoice, i2.pk, at(3, 25))
    i3 = InvoiceFactory(**common, amount=Decimal("200.00"), status=Invoice.Status.VOID)
    _written_at(Invoice, i3.pk, at(3, 12))
    return account


@pytest.mark.parametrize(
    ("day", "escalations", "overdue", "amount"),
    [
        # 03-05: T1, T2 open; I1, I2 open and past due: 500 + 300 = 800 (I3 void)
        (dt.date(2024, 3, 5), 2, 2, "800.00"),
        # 03-12: T1 resolved 03-10; T2 open; I1 + I2 = 800
        (dt.date(2024, 3, 12), 1, 2, "800.00"),
        # 03-15: I1 paid on 03-15: only I2 = 300
        (dt.date(2024, 3, 15), 1, 1, "300.00"),
        # 03-20: T2's solved status written 03-20; I2 still open (paid written 03-25)
        (dt.date(2024, 3, 20), 0, 1, "300.00"),
        # 03-25: I2's paid status written: nothing overdue
        (dt.date(2024, 3, 25), 0, 0, "0.00"),
    ],
)
def test_health_measures_use_what_was_known_that_day(book, day, escalations, overdue, amount):
    m = account_measures(Account.objects.all(), as_of=day)[book.pk]
    assert (m["open_escalations"], m["overdue_invoices"], m["overdue_amount"]) == (
        escalations,
        overdue,
        amount,
    )


def test_kpis_use_what_was_known_at_the_periods_end(book):
    # March 2024 is [03-01, 04-01): as of its end everything above is resolved or paid
    march = kpi_report(start=dt.date(2024, 3, 1), end=dt.date(2024, 4, 1))
    assert march["support"]["open_escalations"]["value"] == 0
    assert march["billing"]["overdue_invoices"]["value"] == 0
    # [02-13, 03-13): ends at the start of 03-13: T2 open (T1 resolved 03-10); I1 (paid
    # 03-15) and I2 (paid written 03-25) overdue = 800; I3 void
    early = kpi_report(start=dt.date(2024, 2, 13), end=dt.date(2024, 3, 13))
    assert early["support"]["open_escalations"]["value"] == 1
    overdue = early["billing"]["overdue_invoices"]
    assert (overdue["value"], overdue["inputs"]["amount"]) == (2, "800.00")
    # receivable at the end: I1 + I2 = 800; invoiced in the period: nothing (issued 02-01)
    assert early["billing"]["dso"]["inputs"]["receivable_at_end"] == "800.00"


def test_a_backfill_rebuilds_past_days_from_their_facts(book):
    call_command("recompute", "--from", "2024-03-05", "--to", "2024-03-06", verbosity=0)
    snap = HealthSnapshot.objects.get(account=book, day=dt.date(2024, 3, 5))
    support = {c["key"]: c for c in snap.components}["support"]
    assert support["inputs"]["open_escalations"] == 2  # both open on 03-05
