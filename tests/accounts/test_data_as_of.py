"""How current an account's data is: ``selectors.with_data_as_of`` / ``data_as_of`` (for the
UI) and the ``data_as_of`` field of the accounts API."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import selectors
from accounts.models import Account, ApiToken, Contract, Ticket, UsageEvent
from tests.factories import AccountFactory, ContractFactory, TicketFactory

pytestmark = pytest.mark.django_db


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=dt.UTC)


def _event(account, when):
    UsageEvent.objects.create(
        account=account, user_id="u", event="login", occurred_at=when, dedup_key=uuid.uuid4()
    )


@pytest.fixture
def book():
    """busy: account written 03-01, a contract 03-05, a ticket 03-09, events 03-02 and 03-07
    quiet: account written 03-03, no other rows"""
    busy = AccountFactory(external_id="busy")
    quiet = AccountFactory(external_id="quiet")
    contract = ContractFactory(account=busy, start_date=dt.date(2024, 1, 1))
    ticket = TicketFactory(account=busy, opened_at=at(3, 8))
    _event(busy, at(3, 2))
    _event(busy, at(3, 7))
    Account.objects.filter(pk=busy.pk).update(updated_at=at(3, 1))
    Account.objects.filter(pk=quiet.pk).update(updated_at=at(3, 3))
    Contract.objects.filter(pk=contract.pk).update(updated_at=at(3, 5))
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=at(3, 9))
    return busy, quiet


def test_selector_gives_the_latest_event_and_the_latest_write(book, django_assert_num_queries):
    busy, quiet = book
    with django_assert_num_queries(1):  # subqueries: one query for any number of accounts
        rows = {
            a.external_id: selectors.data_as_of(a)
            for a in selectors.with_data_as_of(Account.objects.all())
        }
    # busy: latest event 03-07; latest write max(03-01, 03-05, 03-09) = the ticket's 03-09
    assert rows["busy"] == {
        "last_event_at": at(3, 7),
        "last_import_at": at(3, 9),
        "as_of": at(3, 9),
    }
    # quiet: no events; only its own row, written 03-03
    assert rows["quiet"] == {"last_event_at": None, "last_import_at": at(3, 3), "as_of": at(3, 3)}
    # an account loaded without the annotation: read on demand
    assert selectors.data_as_of(Account.objects.get(pk=quiet.pk))["as_of"] == at(3, 3)


def test_accounts_api_shows_data_as_of(book, admin_user):
    _event(book[0], at(3, 12))  # now the latest fact: an event on 03-12
    client = APIClient()
    _token, key = ApiToken.issue(user=admin_user, name="tests", scope=ApiToken.Scope.READ)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = client.get(reverse("api:account-detail", args=[book[0].pk])).json()
    assert body["data_as_of"] == {
        "last_event_at": "2024-03-12T12:00:00Z",
        "last_import_at": "2024-03-09T12:00:00Z",
        "as_of": "2024-03-12T12:00:00Z",
    }
    listed = {
        a["external_id"]: a for a in client.get(reverse("api:account-list")).json()["results"]
    }
    assert listed["quiet"]["data_as_of"]["last_event_at"] is None
