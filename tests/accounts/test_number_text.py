"""``accounts.money.number_text``: how every figure in words (health reasons, what changed,
CTA evidence, timeline facts) is written, with thousands separators like money."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from accounts.models import Contract, Invoice
from accounts.money import number_text
from accounts.timeline import contract_facts, invoice_facts


def test_number_text_separates_thousands_and_keeps_one_decimal():
    assert number_text(12500) == "12,500"
    assert number_text(999) == "999"
    assert number_text(1000) == "1,000"
    assert number_text(-2500) == "-2,500"
    assert number_text(12500.0) == "12,500"  # a whole float is a whole number
    assert number_text(1234.56) == "1,234.6"
    assert number_text(Decimal("1200.00")) == "1,200"
    assert number_text(41.5) == "41.5"
    assert number_text(None) == "n/a"
    assert number_text(True) == "True"  # not a count: as it is
    assert number_text("word") == "word"


def test_timeline_facts_write_seats_and_attempts_with_separators(settings):
    settings.CURRENCY = "USD"
    contract = Contract(
        account_id=1,
        external_id="c-1",
        product="Pro",
        start_date=dt.date(2026, 1, 1),
        mrr=Decimal("12500.00"),
        quantity=2500,
    )
    [started] = contract_facts(contract)[:1]
    assert started.title == "Contract started: Pro, $12,500.00 MRR, 2,500 seats"
    assert started.data["quantity"] == 2500  # the stored figure stays a number
    invoice = Invoice(
        account_id=1,
        external_id="i-1",
        issued_on=dt.date(2026, 1, 1),
        amount=Decimal("10.00"),
        status=Invoice.Status.FAILED,
        failed_attempts=1001,
    )
    failed = [f for f in invoice_facts(invoice) if f.key.endswith(":failed")]
    assert failed[0].title == "Payment failed: $10.00 (1,001 attempts)"
