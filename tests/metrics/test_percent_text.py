"""One spelling of a rate with its sign on every surface: the dashboard's tiles, the
targets and off-track pages, the digest and the alerts (``percent_text``)."""

from __future__ import annotations

from decimal import Decimal

import pytest


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("100.1"), "100.1%"),  # no space before the sign
        (Decimal("95.5"), "95.5%"),
        # (1,000,000 − 140) / 1,000,000 × 100 = 99.986: one decimal would read "100.0"
        (Decimal("99.986"), "99.99%"),
        (Decimal("0"), "0.0%"),
    ],
)
def test_a_rate_prints_its_figure_then_the_sign_with_no_space(value, text):
    from metrics.kpis.common import percent_text

    assert percent_text(value) == text


def test_the_dashboard_and_the_target_texts_print_a_rate_alike():
    from reports.services import _fmt
    from workspace.dashboard import fmt

    for value in ("100.1", "99.986", "75", "0.004"):
        assert fmt(float(value), "pct") == _fmt(Decimal(value), "%")
    assert _fmt(Decimal("100.1"), "%") == "100.1%"
