"""metrics.standings: each account's standing, by hand, and its place in the pipeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from metrics.models import AccountStanding
from metrics.standings import account_standings_refresh
from tests.factories import AccountFactory

from .conftest import customer, snapshot, utc_today

pytestmark = pytest.mark.django_db


def test_standing_by_hand(book):
    s = AccountStanding.objects.get(account=book["burning"])
    today = utc_today()
    assert s.day == today - dt.timedelta(days=1)
    assert (s.score, s.band) == (58, "red")
    assert s.trend_7 == -18.0  # 58 - 76
    assert s.trend_30 == -22.0  # 58 - 80
    assert s.arr == Decimal("84000.00")  # 12 * 7,000
    assert s.seats == 20
    assert s.renewal_on == today + dt.timedelta(days=41)
    # red 40 + trend 15 + renewal 25 * 49 / 90 = 13.6 + ARR 8.4 = 77.0
    assert s.priority == 77.0
    assert s.reason == "red, \u221218 in 7 days, renews in 41 days, $84k ARR"


def test_no_history_no_trend_and_open_ended_has_no_renewal(book):
    s = AccountStanding.objects.get(account=book["calm"])
    assert s.trend_7 is None and s.trend_30 is None and s.renewal_on is None
    assert s.reason == "green, $6k ARR" and s.priority == 0.0


def test_an_account_without_snapshot_or_contract_gets_a_row(csm):
    account = AccountFactory(owner=csm)
    result = account_standings_refresh(account_ids=[account.pk])
    assert result["accounts"] == 1
    s = AccountStanding.objects.get(account=account)
    assert (s.score, s.band, s.arr, s.priority) == (None, "", Decimal("0.00"), 10.0)
    assert s.reason == "no score yet"


def test_one_account_uses_its_own_latest_day(csm):
    """The incremental path: an account rescored today keeps today's day while the rest of
    the book is still on yesterday's."""
    today = utc_today()
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(70, "yellow")])
    snapshot(a, today, 30.0, "red")
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    assert (s.day, s.score, s.band) == (today, 30.0, "red")


def test_cta_counts_hook_feeds_the_priority(csm, settings):
    settings.ACCOUNT_STANDING_CTA_COUNTS = ["tests.workspace.test_standings.fake_cta_counts"]
    a = customer(csm, name="A", mrr="10", ends_in=None, scores=[(90, "green")])
    account_standings_refresh(account_ids=[a.pk])
    s = AccountStanding.objects.get(account=a)
    # 2 overdue: 60; green 0; $120 ARR not at risk
    assert (s.open_ctas, s.overdue_ctas, s.priority) == (3, 2, 60.0)
    assert s.reason == "2 overdue CTAs, green, $120 ARR"


def fake_cta_counts(ids, today):
    return dict.fromkeys(ids, (3, 2))


def test_refresh_is_idempotent_and_query_count_is_flat(csm, django_assert_max_num_queries):
    for i in range(30):
        customer(csm, name=f"C{i}", mrr="10", ends_in=30, scores=[(70, "yellow"), (72, "yellow")])
    # 1 ids + per chunk: 3 health days + contracts + upsert (PostgreSQL: staging table,
    # merge, empty it; and a savepoint)
    with django_assert_max_num_queries(11):
        account_standings_refresh(day=utc_today() - dt.timedelta(days=1))
    first = list(AccountStanding.objects.order_by("pk").values_list("priority", "reason"))
    account_standings_refresh(day=utc_today() - dt.timedelta(days=1))
    assert list(AccountStanding.objects.order_by("pk").values_list("priority", "reason")) == first
    assert len(first) == 30
