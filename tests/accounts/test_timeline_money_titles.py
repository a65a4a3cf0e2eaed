"""Facts stored with the old spelling of money ("1,485.00 USD") read as new ones do
("$1,485.00"): ``accounts.timeline.money_titles_reword``, run once by a migration."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import TimelineEntry
from accounts.timeline import invoice_facts, money_titles_reword, old_money_title
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

Kind = TimelineEntry.Kind


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        (Kind.INVOICE_ISSUED, "Invoice issued: 1,485.00 USD", "Invoice issued: $1,485.00"),
        (Kind.INVOICE_PAID, "Invoice paid: 633,600.00 EUR", "Invoice paid: €633,600.00"),
        (
            Kind.PAYMENT_FAILED,
            "Payment failed: 1,485.00 USD (3 attempts)",
            "Payment failed: $1,485.00 (3 attempts)",
        ),
        (
            Kind.CONTRACT_STARTED,
            "Contract started: Pro, 2,500.00 USD MRR, 1,200 seats",
            "Contract started: Pro, $2,500.00 MRR, 1,200 seats",
        ),
        (
            Kind.CONTRACT_ENDED,
            "Contract period ended: subscription, 99.50 CHF MRR",
            "Contract period ended: subscription, CHF 99.50 MRR",
        ),
        # a product named like money is free text: only the amount before " MRR" changes
        (
            Kind.CONTRACT_STARTED,
            "Contract started: Plan 10.00 USD, 12.00 USD MRR",
            "Contract started: Plan 10.00 USD, $12.00 MRR",
        ),
        (Kind.INVOICE_ISSUED, "Invoice issued: -40.00 USD", "Invoice issued: $-40.00"),
        # new spelling already, another kind, a ticket's subject: as they are
        (Kind.INVOICE_PAID, "Invoice paid: $1,485.00", "Invoice paid: $1,485.00"),
        (Kind.TICKET_OPENED, "Ticket opened (high): refund 1,485.00 USD", None),
    ],
)
def test_an_old_title_reads_as_the_builders_write_it_now(kind, old, new):
    assert old_money_title(kind, old) == (old if new is None else new)


def test_the_new_spelling_is_what_the_builder_writes(settings):
    """The rewording lands on the builder's own words: an invoice of 1,485 USD."""
    from accounts.models import Invoice

    settings.CURRENCY = "USD"
    invoice = Invoice(
        account_id=1, external_id="i1", amount=1485, issued_on=dt.date(2026, 3, 2),
        status=Invoice.Status.OPEN,
    )  # fmt: skip
    (issued,) = invoice_facts(invoice)
    assert old_money_title(Kind.INVOICE_ISSUED, "Invoice issued: 1,485.00 USD") == issued.title


def test_stored_facts_are_reworded_once_and_nothing_else_moves():
    account = AccountFactory()
    when = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

    def fact(key, kind, title, data):
        return TimelineEntry.objects.create(
            account=account, key=key, kind=kind, occurred_at=when, title=title, data=data
        )

    paid = fact(
        "invoice:i1:paid", Kind.INVOICE_PAID, "Invoice paid: 1,485.00 USD", {"invoice": "i1"}
    )
    issued = fact(
        "invoice:i1:issued", Kind.INVOICE_ISSUED, "Invoice issued: 1,485.00 USD",
        {"invoice": "i1", "amount": "1485.00"},
    )  # fmt: skip
    ticket = fact(
        "ticket:t1:opened", Kind.TICKET_OPENED, "Ticket opened (high): 1,485.00 USD refund", {}
    )
    assert money_titles_reword() == 2
    stored = {f.pk: f for f in TimelineEntry.objects.all()}
    assert stored[paid.pk].title == "Invoice paid: $1,485.00"
    assert stored[issued.pk].title == "Invoice issued: $1,485.00"
    assert stored[issued.pk].data == {"invoice": "i1", "amount": "1485.00"}
    assert stored[issued.pk].occurred_at == when
    assert stored[ticket.pk].title == "Ticket opened (high): 1,485.00 USD refund"
    assert money_titles_reword() == 0
