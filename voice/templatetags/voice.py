"""Filters for the voice fragments: words and CSS classes decided here, not in templates."""

from __future__ import annotations

from django import template

register = template.Library()
NEUTRAL = 5  # VADER's convention: compound within ±0.05 is neutral


@register.filter
def tone(score: float | None) -> str:
    """ "positive", "negative", "neutral", or "none" (no data) for a −100..100 score."""
    if not isinstance(score, int | float):  # None, or "" for a missing variable
        return "none"
    if score >= NEUTRAL:
        return "positive"
    if score <= -NEUTRAL:
        return "negative"
    return "neutral"


@register.filter
def signed(score: float | None) -> str:
    """+35, −12, 0; "no data" for None."""
    if not isinstance(score, int | float):
        return "no data"
    value = round(score)
    return f"+{value}" if value > 0 else f"−{-value}" if value < 0 else "0"


@register.filter
def sentiment_text(score: float | None) -> str:
    """A sentiment that stands alone (beside a timeline line, no column to name it):
    "negative sentiment −51", "neutral sentiment 0", "positive sentiment +35"; "no
    sentiment" for None."""
    if not isinstance(score, int | float):
        return "no sentiment"
    return f"{tone(score)} sentiment {signed(score)}"


@register.filter
def pct(value: float | None) -> str:
    return f"{value:.1f}%" if isinstance(value, int | float) else "n/a"
