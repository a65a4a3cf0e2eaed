"""metrics.priority: the queue's points and reason, by hand (no database)."""

from __future__ import annotations

from decimal import Decimal

from metrics.priority import money_short, priority, signed


def test_the_issue_example_reads_as_written():
    # red 40 + trend min(15, 18) = 15 + renewal 25 * (90 - 41) / 90 = 13.6 (13.61)
    # + ARR at risk min(20, 84,000 / 10,000) = 8.4  ->  77.0
    p = priority(band="red", arr=Decimal("84000"), days_to_renewal=41, trend_7=-18.0)
    assert p.reason == "red, \u221218 in 7 days, renews in 41 days, $84k ARR"
    assert p.points == 77.0
    assert [points for _, points in p.factors] == [40.0, 15.0, 13.6, 8.4]


def test_overdue_ctas_come_first_and_are_capped():
    # 3 overdue CTAs: min(60, 3 * 30) = 60; green 0; no renewal, no trend, no ARR
    p = priority(band="green", arr=0, days_to_renewal=None, trend_7=None, overdue_ctas=3)
    assert p.reason == "3 overdue CTAs, green"
    assert p.points == 60.0
    one = priority(band="green", arr=0, days_to_renewal=None, trend_7=None, overdue_ctas=1)
    assert one.reason.startswith("1 overdue CTA,") and one.points == 30.0


def test_green_arr_is_context_not_risk_and_a_rise_gives_nothing():
    # green 0 + trend +6 gives 0 + renewal in 120 days gives 0 (outside 90) + ARR not at risk 0
    p = priority(band="green", arr=500_000, days_to_renewal=120, trend_7=6.0)
    assert p.points == 0.0
    assert p.reason == "green, +6 in 7 days, renews in 120 days, $500k ARR"


def test_yellow_arr_at_risk_is_capped_and_ended_contract_counts_as_due():
    # yellow 15 + renewal: ended 5 days ago counts as today, 25 + ARR min(20, 1.2M / 10k) = 20
    p = priority(band="yellow", arr=1_200_000, days_to_renewal=-5, trend_7=None)
    assert p.points == 60.0
    assert p.reason == "yellow, contract ended 5 days ago, $1.2M ARR"
    yesterday = priority(band="yellow", arr=1_200_000, days_to_renewal=-1, trend_7=None)
    assert yesterday.reason == "yellow, contract ended 1 day ago, $1.2M ARR"


def test_no_score_yet_has_a_middle_weight():
    # no score 10; renewal today 25
    p = priority(band="", arr=None, days_to_renewal=0, trend_7=None)
    assert p.reason == "no score yet, renews today"
    assert p.points == 35.0


def test_ordering_follows_urgency():
    calm = priority(band="green", arr=10_000, days_to_renewal=300, trend_7=0.4)
    slipping = priority(band="yellow", arr=10_000, days_to_renewal=60, trend_7=-9)
    burning = priority(band="red", arr=10_000, days_to_renewal=10, trend_7=-20, overdue_ctas=1)
    assert calm.points < slipping.points < burning.points


def test_formatting_helpers():
    assert money_short(950) == "$950"
    assert money_short(Decimal("84000")) == "$84k"
    assert money_short(2_560_000) == "$2.6M"
    assert money_short(1500) == "$1.5k" and money_short(6000) == "$6k"
    # halves round up, on the decimal value: 1,450 / 1,000 = 1.45 -> 1.5 (the float 1.45 is
    # 1.4499…, which format rounded to 1.4); 84,500 / 1,000 = 84.5 -> 85 (format: to even, 84)
    assert money_short(1450) == "$1.5k" and money_short(Decimal("84500")) == "$85k"
    assert money_short(949.5) == "$950" and money_short(Decimal("2.5")) == "$3"
    # a rounding that reaches the next unit says it in that unit: 999.5 -> 1,000 -> $1k;
    # 9,950 / 1,000 = 9.95 -> 10.0 -> $10k; 999,600 / 1,000 = 999.6 -> 1,000k -> $1.0M
    assert money_short(999.5) == "$1k" and money_short(9_950) == "$10k"
    assert money_short(999_600) == "$1.0M"
    # a loss: the real minus sign before the currency's; −0.4 rounds to 0, no sign
    assert money_short(-1450) == "\u2212$1.5k" and money_short(-0.4) == "$0"
    assert money_short(None) == "$0"
    assert signed(-18.4) == "\u221218" and signed(4) == "+4" and signed(0.2) == "0"


def test_every_how_is_this_computed_link_lands_on_a_heading():
    """Each anchor the pages link to exists in docs/metrics.md (rendered with heading ids)."""
    import re
    from pathlib import Path

    from workspace.dashboard import TILES
    from workspace.docs import metrics_html

    ids = set(re.findall(r'<h\d id="([^"]+)"', metrics_html()))
    # every app's templates: the voice card on the account page links here too
    root = Path(__file__).resolve().parents[2] / "templates"
    used = {t[5] for t in TILES}
    for template in root.rglob("*.html"):
        text = template.read_text()
        used |= set(re.findall(r'howto "([^"]+)"', text))
        used |= set(re.findall(r"metrics-doc' %}#([\w-]+)", text))
    assert used and used <= ids, used - ids
