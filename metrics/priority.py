"""Whom to call first: an account's priority in the CSM queue, from plain values, with the
reason in words. Pure (no database): ``services.account_standings_refresh`` stores the result
per account so that the queue orders 100,000 accounts by one indexed column.

Points (higher = call first; docs/metrics.md "Queue priority"):

- overdue CTAs: 30 per overdue CTA, at most 60: a promise to the customer is already late;
- band: red 40, yellow 15, green 0, no score yet 10;
- ARR at risk: 1 point per $10k of ARR when the band is red or yellow, at most 20;
- renewal: within 90 days, up to 25 points, growing linearly as the day gets closer
  (renews today or already past its end: 25; in 90 days: 0);
- trend: 1 point per point of health lost in 7 days, at most 15 (a rise gives none); the
  change of the score the model computed, so an override set or expired in the week (which
  changes the score shown, not the customer's data) gives no points and no words.

The reason lists the factors that gave points, biggest first, then ARR as context:
"red, −18 in 7 days, renews in 41 days, $84k ARR".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from accounts.money import count_text, currency_sign

OVERDUE_POINTS, OVERDUE_MAX = 30.0, 60.0
BAND_POINTS = {"red": 40.0, "yellow": 15.0, "green": 0.0, "": 10.0}
ARR_STEP, ARR_MAX = 10_000.0, 20.0
RENEWAL_WINDOW, RENEWAL_MAX = 90, 25.0
TREND_MAX = 15.0


@dataclass(frozen=True)
class Priority:
    points: float  # 0..160, rounded to 0.1
    reason: str
    factors: tuple[tuple[str, float], ...]  # (words, points) in the order of the reason


def _half_up(value: Decimal, step: str) -> Decimal:
    return value.quantize(Decimal(step), rounding=ROUND_HALF_UP)


def money_short(amount: float | Decimal | None) -> str:
    """$84k, $1.5k, $1.2M, $950 (whole units below 1,000), −$1.5k, with the sign of
    ``settings.CURRENCY`` (``accounts.money.currency_sign``: €84k for EUR). Halves round up,
    on the decimal value (``format`` goes by the binary one and to even: $1,450 read "$1.4k"
    and $84,500 "$84k"), and a rounding that reaches the next unit moves to it ($999,600 is
    "$1.0M", not "$1000k")."""
    value = Decimal(str(amount or 0))
    # a loss reads "−$1.5k": the real minus sign (as ``signed``) before the currency's
    sign = ("\u2212" if _half_up(value, "1") < 0 else "") + currency_sign()
    value = abs(value)
    thousands = value / 1_000
    if _half_up(thousands, "1") >= 1_000:
        return f"{sign}{_half_up(value / 1_000_000, '0.1')}M"
    if _half_up(thousands, "0.1") >= 10:
        return f"{sign}{_half_up(thousands, '1')}k"
    if _half_up(value, "1") >= 1_000:
        return sign + f"{_half_up(thousands, '0.1')}".removesuffix(".0") + "k"
    return f"{sign}{_half_up(value, '1')}"


def signed(value: float) -> str:
    """−18 / +4 / 0 (a real minus sign, read out as "minus" by screen readers)."""
    rounded = round(value)
    if rounded < 0:
        return f"\u2212{abs(rounded)}"
    if rounded > 0:
        return f"+{rounded}"
    return "0"


def priority(
    *,
    band: str,
    arr: float | Decimal | None,
    days_to_renewal: int | None,
    trend_7: float | None,
    overdue_ctas: int = 0,
) -> Priority:
    """The account's queue priority and why. ``band`` "" means no score yet; ``arr`` in
    dollars (None = no contract); ``days_to_renewal`` from the day of the data to the end of
    the current contract (None = open-ended or no contract; negative = ended); ``trend_7``
    the change in computed health score over 7 days (None = no computed score now or 7 days
    ago; ``metrics.standings``)."""
    factors: list[tuple[str, float]] = []
    arr_value = float(arr or 0)
    if overdue_ctas > 0:
        label = "1 overdue CTA" if overdue_ctas == 1 else f"{overdue_ctas} overdue CTAs"
        factors.append((label, min(OVERDUE_MAX, OVERDUE_POINTS * overdue_ctas)))
    band_key = band if band in BAND_POINTS else ""
    factors.append((band_key or "no score yet", BAND_POINTS[band_key]))
    if trend_7 is not None and round(trend_7) != 0:
        factors.append((f"{signed(trend_7)} in 7 days", min(TREND_MAX, max(0.0, -trend_7))))
    if days_to_renewal is not None and days_to_renewal <= 180:
        if days_to_renewal < 0:
            words = f"contract ended {count_text(-days_to_renewal, 'day')} ago"
        elif days_to_renewal == 0:
            words = "renews today"
        else:
            words = f"renews in {count_text(days_to_renewal, 'day')}"
        closeness = (RENEWAL_WINDOW - max(0, days_to_renewal)) / RENEWAL_WINDOW
        factors.append((words, round(max(0.0, RENEWAL_MAX * closeness), 1)))
    at_risk = band_key in ("red", "yellow")
    arr_points = min(ARR_MAX, arr_value / ARR_STEP) if at_risk else 0.0
    if arr_value > 0:
        factors.append((f"{money_short(arr_value)} ARR", round(arr_points, 1)))
    points = round(sum(p for _, p in factors), 1)
    return Priority(points=points, reason=", ".join(w for w, _ in factors), factors=tuple(factors))


def days_between(start: dt.date, end: dt.date | None) -> int | None:
    return None if end is None else (end - start).days
