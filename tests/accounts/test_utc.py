"""The product counts days in UTC: half past midnight in Athens is still yesterday."""

from __future__ import annotations

import datetime as dt

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
