"""A count of one reads in the singular: ``accounts.money.count_text`` in the timeline's
facts ("1 attempt", "1 seat"), and the facts stored before it reworded once
(``accounts.timeline.one_count_titles_reword``, run by a migration)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Contract, Invoice, TimelineEntry
from accounts.money import count_text
from accounts.timeline import contract_facts, invoice_facts, one_count_titles_reword
from tests.factories import AccountFactory

Kind = TimelineEntry.Kind


def test_count_text_says_one_in_the_singular():
    assert count_text(1, "attempt") == "1 attempt"
    assert count_text(0, "attempt") == "0 attempts"
    assert count_text(2, "attempt") == "2 attempts"
    assert count_text(12500, "event") == "12,500 events"
    assert count_text(1, "person", "people") == "1 person"
    assert count_text(3, "person", "people") == "3 people"
    assert count_text(1.5, "point") == "1.5 points"
    assert count_text(1.0, "point") == "1 point"  # a whole float is a whole number


def test_a_failed_payment_of_one_attempt_and_a_contract_of_one_seat(settings):
    settings.CURRENCY = "USD"
    invoice = Invoice(
        account_id=1, external_id="i-1", issued_on=dt.date(2026, 1, 1), amount=Decimal("255.00"),
        status=Invoice.Status.FAILED, failed_attempts=1,
    )  # fmt: skip
    [failed] = [f for f in invoice_facts(invoice) if f.key.endswith(":failed")]
    assert failed.title == "Payment failed: $255.00 (1 attempt)"
    contract = Contract(
        account_id=1, external_id="c-1", product="Pro", start_date=dt.date(2026, 1, 1),
        mrr=Decimal("99.00"), quantity=1,
    )  # fmt: skip
    assert contract_facts(contract)[0].title == "Contract started: Pro, $99.00 MRR, 1 seat"


@pytest.mark.django_db
def test_stored_titles_of_one_are_reworded_once_and_nothing_else_moves():
    account = AccountFactory()
    when = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

    def fact(key, kind, title):
        return TimelineEntry.objects.create(
            account=account, key=key, kind=kind, occurred_at=when, title=title, data={"k": key}
        ).pk

    one = fact("invoice:i1:failed", Kind.PAYMENT_FAILED, "Payment failed: $255.00 (1 attempts)")
    eleven = fact("invoice:i2:failed", Kind.PAYMENT_FAILED, "Payment failed: $9.00 (11 attempts)")
    seat = fact(
        "contract:c1:started", Kind.CONTRACT_STARTED, "Contract started: Pro, $99.00 MRR, 1 seats"
    )
    seats = fact(
        "contract:c2:started", Kind.CONTRACT_STARTED, "Contract started: Pro, $99.00 MRR, 21 seats"
    )
    # the same words in a ticket's subject are free text: left alone
    ticket = fact("ticket:t1:opened", Kind.TICKET_OPENED, "Ticket opened (high): why 1 seats")
    assert one_count_titles_reword() == 2
    titles = dict(TimelineEntry.objects.values_list("pk", "title"))
    assert titles[one] == "Payment failed: $255.00 (1 attempt)"
    assert titles[seat] == "Contract started: Pro, $99.00 MRR, 1 seat"
    assert titles[eleven] == "Payment failed: $9.00 (11 attempts)"
    assert titles[seats] == "Contract started: Pro, $99.00 MRR, 21 seats"
    assert titles[ticket] == "Ticket opened (high): why 1 seats"
    stored = TimelineEntry.objects.get(pk=one)
    assert (stored.occurred_at, stored.data) == (when, {"k": "invoice:i1:failed"})
    assert one_count_titles_reword() == 0


@pytest.mark.django_db
def test_the_rewording_writes_a_batch_at_a_time_in_one_pass():
    """Millions of facts: a batch of rows in memory, written as it fills (not every changed
    row held until the end), and one pass over the table for both kinds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account = AccountFactory()
    when = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    for n in range(3):
        TimelineEntry.objects.create(
            account=account, key=f"invoice:i{n}:failed", kind=Kind.PAYMENT_FAILED,
            occurred_at=when, title=f"Payment failed: ${n}.00 (1 attempts)",
        )  # fmt: skip
    for n in range(2):
        TimelineEntry.objects.create(
            account=account, key=f"contract:c{n}:started", kind=Kind.CONTRACT_STARTED,
            occurred_at=when, title=f"Contract started: Pro, ${n}.00 MRR, 1 seats",
        )  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        assert one_count_titles_reword(batch=2) == 5
    sql = [q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries]
    # 5 rows written 2 + 2 + 1; read in one pass (chunks of 2 where the database streams)
    assert sql.count("UPDATE") == 3
    assert sql.count("SELECT") <= 1 or connection.vendor == "sqlite"
    assert not TimelineEntry.objects.filter(title__contains="1 attempts").exists()
