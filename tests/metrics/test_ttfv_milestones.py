"""Time to first value with first-value milestones a CSM records: the earlier of the
configured event's first UTC day and the recorded day counts; a milestone dated on or after
the period's end does not. Small books worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from accounts import services, utc
from accounts.models import Account, Milestone
from metrics.kpis import adoption
from tests.factories import AccountFactory
from tests.metrics.test_kpis_other import APR, MAR, _events, at

pytestmark = pytest.mark.django_db


def _milestone(account, day: dt.date) -> Milestone:
    return Milestone.objects.create(account=account, kind="first_value", reached_on=day)


def _ttfv():
    return adoption.ttfv(Account.objects.all(), start=MAR, end=APR)


def _days_by_account(k) -> dict:
    return {a["external_id"]: a["days"] for a in k["inputs"]["not_yet"]}


def test_a_milestone_alone_gives_the_day(settings):
    settings.FIRST_VALUE_EVENT = "report"
    a = AccountFactory(external_id="a", customer_since=dt.date(2024, 3, 4))
    _milestone(a, dt.date(2024, 3, 15))  # 03-15 − 03-04 = 11 days
    k = _ttfv()
    assert k["value"] == 11
    assert k["inputs"]["reached"] == 1
    assert k["inputs"]["reached_by"] == {"event": 0, "milestone": 1}


def test_an_event_alone_still_gives_the_day(settings):
    settings.FIRST_VALUE_EVENT = "report"
    a = AccountFactory(external_id="a", customer_since=dt.date(2024, 3, 4))
    _events(a, [("u", "report", at(10, hour=23, minute=59))])  # 03-10 − 03-04 = 6 days
    k = _ttfv()
    assert k["value"] == 6
    assert k["inputs"]["reached_by"] == {"event": 1, "milestone": 0}


def test_with_both_the_earlier_day_wins(settings):
    settings.FIRST_VALUE_EVENT = "report"
    early_milestone = AccountFactory(segment="SMB", customer_since=dt.date(2024, 3, 2))
    _events(early_milestone, [("u", "report", at(20))])  # event 03-20: 18 days
    _milestone(early_milestone, dt.date(2024, 3, 9))  # milestone 03-09: 7 days, wins
    early_event = AccountFactory(segment="ENT", customer_since=dt.date(2024, 3, 2))
    _events(early_event, [("u", "report", at(5))])  # event 03-05: 3 days, wins
    _milestone(early_event, dt.date(2024, 3, 25))  # milestone 03-25: 23 days
    same_day = AccountFactory(segment="ENT", customer_since=dt.date(2024, 3, 10))
    _events(same_day, [("u", "report", at(22))])  # 03-22 − 03-10 = 12 days either way
    _milestone(same_day, dt.date(2024, 3, 22))
    k = _ttfv()
    # days 7, 3, 12 → median 7; SMB: 7; ENT: (3 + 12) / 2 = 7.5
    assert k["value"] == 7
    assert k["inputs"]["median_by_segment"] == {"ENT": 7.5, "SMB": 7}
    # the same day counts as the event's (the data saw it too)
    assert k["inputs"]["reached_by"] == {"event": 2, "milestone": 1}


def test_a_milestone_before_signing_is_zero_days(settings):
    settings.FIRST_VALUE_EVENT = "report"
    trial = AccountFactory(customer_since=dt.date(2024, 3, 10))
    _milestone(trial, dt.date(2024, 2, 20))  # before signing: max(0, −19) = 0 days
    assert _ttfv()["value"] == 0


def test_a_milestone_on_or_after_the_end_is_ignored(settings):
    settings.FIRST_VALUE_EVENT = "report"
    later = AccountFactory(external_id="later", customer_since=dt.date(2024, 3, 20))
    _milestone(later, APR)  # on the end day: not before it
    counted = AccountFactory(external_id="counted", customer_since=dt.date(2024, 3, 1))
    _milestone(counted, dt.date(2024, 3, 31))  # the last day of March: 30 days
    k = _ttfv()
    assert k["value"] == 30
    assert k["inputs"]["reached"] == 1
    # not yet: 04-01 − 03-20 = 12 days
    assert _days_by_account(k) == {"later": 12}
    # with a later end the same milestone counts: 04-01 − 03-20 = 12 days; (30 + 12) / 2
    k = adoption.ttfv(Account.objects.all(), start=MAR, end=dt.date(2024, 5, 1))
    assert (k["value"], k["inputs"]["reached"]) == (21, 2)


def test_without_the_event_setting_milestones_alone_count(settings):
    settings.FIRST_VALUE_EVENT = ""
    a = AccountFactory(external_id="a", customer_since=dt.date(2024, 3, 1))
    _events(a, [("u", "report", at(2))])  # no event configured: usage does not count
    _milestone(a, dt.date(2024, 3, 6))  # 5 days
    AccountFactory(external_id="b", customer_since=dt.date(2024, 3, 21))
    k = _ttfv()
    assert k["value"] == 5
    assert k["inputs"]["first_value_event"] is None
    assert k["inputs"]["reached_by"] == {"event": 0, "milestone": 1}
    assert _days_by_account(k) == {"b": 11}  # 04-01 − 03-21
    assert "note" not in k["inputs"]


def test_neither_event_nor_milestone_says_so(settings):
    settings.FIRST_VALUE_EVENT = ""
    a = AccountFactory(customer_since=dt.date(2024, 3, 5))
    _milestone(a, APR)  # after the period: as if none
    k = _ttfv()
    assert k["value"] is None
    assert k["inputs"]["note"] == (
        "no first-value event chosen, and no account that became a customer in the period "
        "has a first value recorded"
    )
    assert k["inputs"]["not_yet"] == []


def test_one_query_whatever_the_number_of_accounts(settings, django_assert_num_queries):
    settings.FIRST_VALUE_EVENT = "report"
    for n in range(6):
        account = AccountFactory(customer_since=dt.date(2024, 3, 1 + n))
        if n % 2:
            _milestone(account, dt.date(2024, 3, 10 + n))
        else:
            _events(account, [("u", "report", at(12 + n))])
    with django_assert_num_queries(1):
        k = _ttfv()
    # milestones: n=1 03-11 − 03-02 = 9, n=3 03-13 − 03-04 = 9, n=5 03-15 − 03-06 = 9
    # events:     n=0 03-12 − 03-01 = 11, n=2 03-14 − 03-03 = 11, n=4 03-16 − 03-05 = 11
    assert k["inputs"]["reached_by"] == {"event": 3, "milestone": 3}
    assert k["value"] == 10  # median of 9, 9, 9, 11, 11, 11


def test_a_future_day_is_refused_and_never_counts(settings):
    settings.FIRST_VALUE_EVENT = ""
    account = AccountFactory(customer_since=utc.today() - dt.timedelta(days=3))
    tomorrow = utc.today() + dt.timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        services.milestone_record(account=account, reached_on=tomorrow, by=None, check_access=False)
    assert "reached_on" in refused.value.message_dict
    assert not Milestone.objects.exists()
    k = adoption.ttfv(
        Account.objects.all(), start=utc.today() - dt.timedelta(days=10), end=tomorrow
    )
    assert k["value"] is None
