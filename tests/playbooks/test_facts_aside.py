"""The night's fact gathering (``playbooks.facts.gather`` over the whole book, on
PostgreSQL outside a transaction) reads the contracts', first value's and invoices'
aggregates on a second connection while its own reads the rest: the facts are the ones
read on one connection (inside a transaction, or for given accounts)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db import connection, transaction

from accounts.models import Account
from playbooks import facts
from tests.metrics.test_health_fast_path import D, _random_book

EVERY_SOURCE = set(facts.SOURCES) - {"voice"}  # voice: the voice app's own scores


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second PostgreSQL connection")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_value_event", ["", "export"])
def test_the_facts_read_on_two_connections_are_the_facts_read_on_one(
    settings, monkeypatch, first_value_event
):
    settings.FIRST_VALUE_EVENT = first_value_event
    accounts = _random_book(random.Random(23), 30)
    # customers of the last year: the first value is gathered for them
    Account.objects.update(customer_since=D - dt.timedelta(days=100))
    asides = []
    real = facts.beside_or_now

    def spy(work, aside, **kwargs):
        asides.append(aside)
        return real(work, aside, **kwargs)

    monkeypatch.setattr(facts, "beside_or_now", spy)

    def gather(**kwargs):
        return facts.gather(as_of=D, sources=EVERY_SOURCE, window_days=30, **kwargs)

    two = gather()  # the whole book, outside a transaction: two connections
    with transaction.atomic():  # inside one: this connection only
        one = gather()
    some = [a.pk for a in accounts[:7]]
    given = gather(account_ids=some)  # given accounts (the event path): this connection
    assert asides == [True, False, False]
    assert two == one
    assert given == {pk: one[pk] for pk in some}
    # the book has what the second connection reads
    assert any(f["arr"] for f in two.values())
    assert any(f["unpaid_failed_payments_90d"] or f["overdue_invoices"] for f in two.values())
    assert any(f["first_value_on"] for f in two.values())
    assert any(f["first_value_on"] is None for f in two.values())
