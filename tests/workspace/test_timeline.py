"""The account page's timeline tells what has happened: facts dated ahead (a contract's
end, recorded when the contract is imported) appear on their day, not before."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import TimelineEntry
from accounts.timeline import contract_facts, invoice_facts, ticket_facts, timeline_upsert
from tests.factories import ContractFactory, InvoiceFactory, TicketFactory

from .conftest import utc_today

pytestmark = pytest.mark.django_db


def test_a_contract_end_ahead_is_not_on_the_timeline_until_its_day(client, csm, book):
    account = book["calm"]
    today = utc_today()
    running = ContractFactory(
        account=account,
        product="Starter",
        start_date=today - dt.timedelta(days=30),
        end_date=today + dt.timedelta(days=60),
        mrr=Decimal("100"),
    )
    over = ContractFactory(
        account=account,
        product="Pilot",
        start_date=today - dt.timedelta(days=90),
        end_date=today - dt.timedelta(days=1),  # ended today: its last day was yesterday
        mrr=Decimal("50"),
    )
    timeline_upsert([*contract_facts(running), *contract_facts(over)])
    client.force_login(csm)
    url = reverse("workspace:account", args=[account.pk])
    for params, headers in (
        ({}, {}),
        ({"kind": "contracts"}, {"HX-Request": "true", "HX-Target": "timeline"}),
    ):
        text = client.get(url, params, headers=headers).content.decode()
        timeline = text[text.index('id="timeline"') :]
        assert "Contract started: Starter" in timeline
        assert "Contract period ended: Pilot" in timeline  # today: it has happened
        assert "Contract period ended: Starter" not in timeline  # in 61 days


def _timeline_row(html: str, entry: TimelineEntry) -> str:
    row = html[html.index(f'id="timelineentry-{entry.pk}"') :]
    return row[: row.index("</li>")]


def test_the_timeline_dates_day_facts_by_their_day_and_moments_in_utc(client, csm, book):
    """A contract or an invoice is dated by a day, not an instant: the timeline prints the
    day alone (no made-up "00:00"), and a contract's end on its last day of service, as
    contracts.csv's end_date says it. A ticket has a time of day: printed with its zone."""
    account = book["calm"]
    contract = ContractFactory(
        account=account,
        product="Pilot",
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2025, 3, 31),  # last day of service: Monday 31 March 2025
        mrr=Decimal("50"),
    )
    invoice = InvoiceFactory(
        account=account, issued_on=dt.date(2025, 2, 1), due_on=dt.date(2025, 3, 3)
    )
    # imported as 2025-03-30T00:30:00+02:00: 00:30 − 2 h = 22:30 UTC on Saturday 29 March
    opened = dt.datetime(2025, 3, 29, 22, 30, tzinfo=dt.UTC)
    ticket = TicketFactory(account=account, opened_at=opened, first_response_at=None)
    timeline_upsert([*contract_facts(contract), *invoice_facts(invoice), *ticket_facts(ticket)])
    entries = {e.kind: e for e in TimelineEntry.objects.filter(account=account)}
    client.force_login(csm)
    html = client.get(reverse("workspace:account", args=[account.pk])).content.decode()

    started = _timeline_row(html, entries["contract_started"])
    assert '<time datetime="2025-01-01">1 Jan 2025</time>' in started
    # stored at the first instant without service, 2025-04-01 00:00 UTC (it sorts after
    # the last day); shown as the last day served, 31 Mar 2025, not "1 Apr 2025, 00:00"
    ended = _timeline_row(html, entries["contract_ended"])
    assert '<time datetime="2025-03-31">31 Mar 2025</time>' in ended
    assert "1 Apr 2025" not in ended and "00:00" not in ended
    issued = _timeline_row(html, entries["invoice_issued"])
    assert '<time datetime="2025-02-01">1 Feb 2025</time>' in issued
    ticket_row = _timeline_row(html, entries["ticket_opened"])
    assert "29 Mar 2025, 22:30 UTC</time>" in ticket_row
