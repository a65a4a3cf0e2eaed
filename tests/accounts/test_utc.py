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
    assert utc.as_of_text(dt.date(2026, 11, 22), today, today=today) == "as of 22–24 Nov 2026"
