"""The alert email's (and Slack's) words for a change: a rate moves in percentage points, as
the dashboard's tiles say it; money, days and scores keep their own unit, money to the cent
as the dashboard prints it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reports.models import Alert, KpiTarget
from reports.services import alert_message, target_text

# the migrations seed default targets, one per KPI: these tests set their own
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_default_targets")]

AS_OF = dt.date(2026, 9, 30)


def _alert(kpi, cadence, period, *, value, previous, target, max_change, direction="at_least"):
    t = KpiTarget.objects.create(
        kpi=kpi, direction=direction, value=target, cadence=cadence, max_change=max_change
    )
    return Alert.objects.create(
        target=t,
        period=period,
        as_of=AS_OF,
        status=Alert.Status.OFF_TRACK,
        value=Decimal(value),
        previous=Decimal(previous),
        target_value=Decimal(target),
        reasons=["crossed", "moved"],
    )


def test_a_rate_moves_in_percentage_points():
    # GRR 97.5 % → 96.3 %: 96.3 − 97.5 = −1.2 points; the limit is 1 point
    alert = _alert(
        "grr", "monthly", "2026-09", value="96.3", previous="97.5", target=98, max_change=1
    )
    text = alert_message(alert)["text"]
    assert "It moved by −1.2 pp, more than the 1.0 pp set for one period." in text
    assert "  now:      96.3%" in text and "  previous: 97.5%" in text
    assert "moved by -" not in text and "%, more than" not in text


def test_a_tiny_rate_move_keeps_its_figure_and_sign():
    # 99.99 → 100.02: +0.03 points; one decimal would read "+0.0 pp", so two decimals
    alert = _alert(
        "grr", "monthly", "2026-09", value="100.02", previous="99.99", target=90, max_change=0.01
    )
    assert "It moved by +0.03 pp, more than the 0.01 pp set" in alert_message(alert)["text"]


def test_money_moves_in_money_to_the_cent():
    # MRR 1,800,000.25 → 1,812,345.50: +12,345.25, beyond the 10,000 allowed
    alert = _alert(
        "mrr_end",
        "quarterly",
        "2026-Q3",
        value="1812345.50",
        previous="1800000.25",
        target=2_000_000,
        max_change=10_000,
    )
    message = alert_message(alert)
    text = message["text"]
    assert (
        message["subject"]
        == "MRR $1,812,345.50 for all accounts (off target, target ≥ $2,000,000.00)"
    )
    assert "  previous: $1,800,000.25" in text
    assert "It moved by +$12,345.25, more than the $10,000.00 set for one period." in text
    assert "USD" not in text and " pp" not in text
    assert target_text(alert.target) == "≥ $2,000,000.00"


def test_days_move_in_days():
    # median TTFV 20 days → 12.5 days: 12.5 − 20 = −7.5 days, beyond the 5 allowed
    alert = _alert(
        "ttfv",
        "monthly",
        "2026-09",
        value="12.5",
        previous="20",
        target=10,
        max_change=5,
        direction="at_most",
    )
    text = alert_message(alert)["text"]
    assert "It moved by −7.5 days, more than the 5.0 days set for one period." in text


@pytest.mark.parametrize(
    ("cadence", "period", "as_of", "words"),
    [
        # a weekly period is the ISO week ending on the Sunday ``as_of``: 7 days back to Monday
        ("weekly", "2026-W47", dt.date(2026, 11, 22), "the week of 16–22 Nov 2026"),
        ("monthly", "2026-09", dt.date(2026, 9, 30), "Sep 2026"),
        ("quarterly", "2026-Q3", dt.date(2026, 9, 30), "Q3 2026 (Jul–Sep)"),
    ],
)
def test_the_alert_names_its_scope_in_the_subject_and_its_period_and_day_in_words(
    cadence, period, as_of, words
):
    alert = _alert("nrr", cadence, period, value="95.5", previous="99", target=100, max_change=5)
    alert.as_of = as_of
    message = alert_message(alert)
    assert message["subject"] == "NRR 95.5% for all accounts (off target, target ≥ 100.0%)"
    first = message["text"].splitlines()[0]
    assert first == f"NRR for all accounts, {words} (figures as of {as_of.day} {as_of:%b %Y}):"
    assert period not in message["text"] and as_of.isoformat() not in message["text"]


@pytest.mark.parametrize(
    ("key", "words"),
    [
        # ISO week 47 of 2026 runs Monday 16 to Sunday 22 Nov
        ("2026-W47", "the week of 16–22 Nov 2026"),
        # 2026 has 53 ISO weeks (it starts on a Thursday): the last ends in 2027
        ("2026-W53", "the week of 28 Dec 2026 – 3 Jan 2027"),
        ("2026-11", "Nov 2026"),
        ("2026-12", "Dec 2026"),
        ("2026-Q4", "Q4 2026 (Oct–Dec)"),
        ("2026-Q1", "Q1 2026 (Jan–Mar)"),
        # no period: said as it is
        ("2026-13", "2026-13"),
        ("2026-W54", "2026-W54"),
        ("2026-Q5", "2026-Q5"),
        ("soon", "soon"),
        ("", ""),
    ],
)
def test_a_stored_period_key_reads_as_the_emails_say_it(key, words):
    from reports.services import period_key_text

    assert period_key_text(key) == words
