"""The account page's timeline tells what has happened: facts dated ahead (a contract's
end, recorded when the contract is imported) appear on their day, not before."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.timeline import contract_facts, timeline_upsert
from tests.factories import ContractFactory

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
