"""Pure survey arithmetic (no database)."""

from __future__ import annotations

import pytest

from surveys import scoring


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, "detractor"),
        (6, "detractor"),
        (7, "passive"),
        (8, "passive"),
        (9, "promoter"),
        (10, "promoter"),
    ],
)
def test_nps_class_boundaries(score, expected):
    assert scoring.nps_class(score) == expected


@pytest.mark.parametrize(
    ("kind", "score", "unhappy"),
    [
        ("nps", 6, True), ("nps", 7, False),
        ("csat", 2, True), ("csat", 3, False),
        ("ces", 3, True), ("ces", 4, False),
    ],
)  # fmt: skip
def test_unhappy_rule(kind, score, unhappy):
    assert scoring.is_unhappy(kind, score) is unhappy


def test_nps_figures_by_hand():
    # 3 promoters (10, 9, 9), 1 passive (7), 2 detractors (6, 0): 6 answers
    # NPS = 100 * (3 - 2) / 6 = 16.666…
    f = scoring.figures("nps", {10: 1, 9: 2, 7: 1, 6: 1, 0: 1})
    assert (f.responses, f.promoters, f.passives, f.detractors) == (6, 3, 1, 2)
    assert f.value == pytest.approx(100 / 6)
    assert f.unhappy == 2
    assert len(f.distribution) == 11 and f.distribution[9] == (9, 2)


def test_csat_and_ces_figures_by_hand():
    # CSAT: 5, 4, 4, 2 -> 3 satisfied of 4 = 75 %
    csat = scoring.figures("csat", {5: 1, 4: 2, 2: 1})
    assert csat.value == 75 and csat.satisfied == 3 and csat.unhappy == 1
    # CES: 7, 5, 3, 1 -> mean (7+5+3+1)/4 = 4.0; >= 5: 2 of 4 = 50 %
    ces = scoring.figures("ces", {7: 1, 5: 1, 3: 1, 1: 1})
    assert ces.value == 4.0 and ces.easy_pct == 50 and ces.unhappy == 2


def test_no_answers_is_none_not_zero():
    for kind in ("nps", "csat", "ces"):
        assert scoring.figures(kind, {}).value is None
    assert scoring.response_rate(0, 0) is None
    assert scoring.response_rate(1, 4) == 25


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        ("nps", "11", "from 0 to 10, got 11"),
        ("nps", "-1", "from 0 to 10, got -1"),
        ("csat", "0", "from 1 to 5, got 0"),
        ("ces", "8", "from 1 to 7, got 8"),
        ("nps", "", "whole number from 0 to 10"),
        ("nps", "7.5", "whole number"),
        ("nps", "seven", "whole number"),
        ("nps", "٣", "whole number"),  # a non-ASCII digit
        ("nps", True, "whole number"),
    ],
)
def test_parse_score_rejects_with_a_message(kind, raw, message):
    with pytest.raises(scoring.ScoreError, match=message):
        scoring.parse_score(kind, raw)


def test_parse_score_accepts_the_scale():
    assert [scoring.parse_score("ces", str(s)) for s in range(1, 8)] == list(range(1, 8))
    assert scoring.parse_score("nps", " 9 ") == 9


def test_median():
    assert scoring.median([]) is None
    assert scoring.median([3.0, 1.0, 2.0]) == 2.0
    assert scoring.median([4.0, 1.0, 2.0, 3.0]) == 2.5
