"""The product counts days in UTC: half past midnight in Athens is still yesterday."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts import utc
from metrics import pipeline


def test_today_and_yesterday_are_utc_days(monkeypatch):
    athens = dt.timezone(dt.timedelta(hours=2))
    # 1 March 00:30 in Athens is 28 February 22:30 UTC
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 3, 1, 0, 30, tzinfo=athens))
    assert utc.today() == dt.date(2026, 2, 28)
    assert utc.yesterday() == dt.date(2026, 2, 27)
    assert pipeline.default_as_of() == utc.yesterday()


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (None, "n/a"),
        (0.25, "15 min"),  # 0.25 × 60
        (1, "1 h"),
        (5.54, "5.5 h"),
        (47.9, "47.9 h"),
        (48, "2 days"),  # 48 / 24
        (290.5, "12.1 days"),  # 290.5 / 24 = 12.104…
    ],
)
def test_hours_text_prints_a_span_in_the_unit_a_person_reads(hours, text):
    assert utc.hours_text(hours) == text


@pytest.mark.parametrize(
    ("first", "last", "text"),
    [
        (dt.date(2026, 11, 22), dt.date(2026, 11, 22), "22 Nov 2026"),
        (dt.date(2026, 11, 22), dt.date(2026, 11, 24), "22–24 Nov 2026"),
        (dt.date(2026, 11, 30), dt.date(2026, 12, 2), "30 Nov – 2 Dec 2026"),
        (dt.date(2026, 12, 30), dt.date(2027, 1, 2), "30 Dec 2026 – 2 Jan 2027"),
    ],
)
def test_a_span_of_days_reads_as_short_as_it_can(first, last, text):
    assert utc.span_text(first, last) == text


def test_as_of_names_the_data_days_unless_they_are_today():
    today = dt.date(2026, 11, 24)
    assert utc.as_of_text(today, today, today=today) == ""
    assert utc.as_of_text(None, None, today=today) == ""  # no account: nothing to name
    # the night's data two days back, one account rescored today
    assert utc.as_of_text(dt.date(2026, 11, 22), dt.date(2026, 11, 22), today=today) == (
        "as of 22 Nov 2026"
    )
    # some accounts rescored today, the rest from the nights before (up to yesterday)
    assert utc.as_of_text(dt.date(2026, 11, 22), today, today=today) == (
        "as of 22–23 Nov 2026; some accounts rescored on 24 Nov 2026 since"
    )
    assert utc.as_of_text(dt.date(2026, 11, 23), today, today=today) == (
        "as of 23 Nov 2026; some accounts rescored on 24 Nov 2026 since"
    )
    assert utc.as_of_text(dt.date(2026, 11, 21), dt.date(2026, 11, 22), today=today) == (
        "as of 21–22 Nov 2026"
    )


def test_data_days_name_the_nights_day_and_the_accounts_rescored_since():
    today = dt.date(2026, 11, 24)
    y = dt.date(2026, 11, 23)
    assert utc.data_days_text(None, None, settled=None, rescored=0, today=today) == ""
    # one day, even today's: a list always names it
    assert utc.data_days_text(y, y, settled=y, rescored=0, today=today) == "Data as of 23 Nov 2026"
    assert utc.data_days_text(today, today, settled=None, rescored=3, today=today) == (
        "Data as of 24 Nov 2026"
    )
    # the night's day (23) for most, 2 accounts rescored today (24)
    assert utc.data_days_text(y, today, settled=y, rescored=2, today=today) == (
        "Data as of 23 Nov 2026; 2 accounts rescored on 24 Nov 2026 since"
    )
    assert utc.data_days_text(y, today, settled=y, rescored=1, today=today) == (
        "Data as of 23 Nov 2026; 1 account rescored on 24 Nov 2026 since"
    )
    # a night missed (22 and 23 among the older rows), one account rescored today
    assert (
        utc.data_days_text(dt.date(2026, 11, 22), today, settled=y, rescored=1, today=today)
        == "Data as of 22–23 Nov 2026; 1 account rescored on 24 Nov 2026 since"
    )
    # no account of today: the span alone
    assert utc.data_days_text(dt.date(2026, 11, 22), y, settled=y, rescored=0, today=today) == (
        "Data as of 22–23 Nov 2026"
    )


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        # 00:00 UTC of the 25th is the end of the 24th: due by the 24th
        (dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC), "by 24 Nov 2026"),
        # across a month and a year: 00:00 of 1 Jan 2027 is the end of 31 Dec 2026
        (dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC), "by 31 Dec 2026"),
        # any other instant keeps its time
        (dt.datetime(2026, 11, 24, 14, 5, tzinfo=dt.UTC), "by 24 Nov 2026, 14:05 UTC"),
        (dt.datetime(2026, 11, 25, 0, 0, 30, tzinfo=dt.UTC), "by 25 Nov 2026, 00:00 UTC"),
        # read in UTC: 01:00 at UTC+1 is 00:00 UTC, the end of the 24th
        (dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
         "by 24 Nov 2026"),
        (None, ""),
    ],
)  # fmt: skip
def test_a_due_instant_reads_as_the_day_it_is_due_by(moment, text):
    assert utc.due_by_text(moment) == text


@pytest.mark.parametrize(
    ("month", "text"),
    [
        ("2026-11", "Nov 2026"),
        ("2026-03-14", "Mar 2026"),  # a day names its month
        (dt.date(2027, 1, 31), "Jan 2027"),
        ("2026-13", "2026-13"),  # no month: said as it is
        ("soon", "soon"),
        (None, "n/a"),
    ],
)
def test_a_month_reads_as_pages_name_it(month, text):
    assert utc.month_text(month) == text
