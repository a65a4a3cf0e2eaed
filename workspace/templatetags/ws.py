"""Small display filters of the workspace pages (formatting only: no decisions)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.urls import reverse
from django.utils.html import format_html

from metrics import health
from metrics.priority import money_short, signed

register = template.Library()


@register.filter
def money(value) -> str:
    """$84k, $1.2M; an em dash for nothing."""
    if value in (None, ""):
        return "—"
    return money_short(value)


@register.filter
def money_exact(value) -> str:
    """Money to the cent, as the dashboard's movements and the drill-down print it:
    "$1,234.56" (``accounts.money.money_exact``); an em dash for nothing."""
    from decimal import Decimal

    from accounts.money import money_exact as exact

    if value in (None, ""):
        return "—"
    return exact(Decimal(str(value)))


@register.filter
def trend(value) -> str:
    """−18 / +4 / 0; an em dash when there is no earlier score."""
    if value in (None, ""):
        return "—"
    return signed(float(value))


@register.filter
def day_text(day) -> str:
    """A day as every page prints it, "24 Oct 2026" (``accounts.utc.day_text``)."""
    from accounts import utc

    return utc.day_text(day)


@register.filter
def period_text(first, last) -> str:
    """``{{ first|period_text:last }}``: "25 Oct to 24 Nov 2026", the last day included
    (``accounts.utc.period_text``); "" when either is missing."""
    from accounts import utc

    if not first or not last:
        return ""
    return utc.period_text(first, last)


@register.filter
def month_text(month) -> str:
    """A month, "Mar 2026", from a day or a key "2026-03" (``accounts.utc.month_text``)."""
    from accounts import utc

    return utc.month_text(month)


@register.filter
def fact_day(entry):
    """The day a timeline fact dated by a day names (a contract, an invoice), else None
    (``accounts.timeline.fact_day``)."""
    from accounts.timeline import fact_day as day

    return day(entry)


@register.filter
def hours_text(hours) -> str:
    """A span of hours, "25 min", "5.5 h" or "12.1 days" (``accounts.utc.hours_text``)."""
    from accounts import utc

    return utc.hours_text(None if hours in (None, "") else float(hours))


@register.filter
def days_from(day: dt.date | None, today: dt.date) -> int | None:
    if day is None or today is None:
        return None
    return (day - today).days


@register.simple_tag
def howto(anchor: str, label: str = "How is this computed?") -> str:
    """The "how is this computed?" hint: a small link to that section of docs/metrics.md."""
    url = reverse("workspace:metrics-doc") + f"#{anchor}"
    return format_html(
        '<a class="hint" href="{}" title="{}" aria-label="{}">?</a>', url, label, label
    )


@register.filter
def score_beside_band(row, none: str = "—") -> str:
    """A row's ``score`` as printed next to its band: whole unless that would read as another
    band (``health.score_beside_band``), with the row's ``green_min`` and ``yellow_min``
    (``selectors.with_band_lines``); ``none`` (an em dash) for no score."""
    return health.score_beside_band(
        getattr(row, "score", None),
        green_min=getattr(row, "green_min", None),
        yellow_min=getattr(row, "yellow_min", None),
        none=none,
    )


@register.filter
def band_label(band: str) -> str:
    return {"red": "Red", "yellow": "Yellow", "green": "Green"}.get(band or "", "No score")


@register.filter
def get_item(mapping, key):
    """mapping[key], or None (dicts built by views, e.g. CTAs by account id)."""
    if not mapping:
        return None
    return mapping.get(key)


@register.simple_tag
def query_string(filters, **changes) -> str:
    """The queue's filters as a query string, with ``changes`` (e.g. page=3)."""
    from django.utils.http import urlencode

    return urlencode(filters.query(**changes))


@register.filter
def urlencode_dict(values: dict) -> str:
    from django.utils.http import urlencode

    return urlencode(values or {})


@register.filter
def trend_class(value) -> str:
    """trend-down / trend-up for a change that shows as non-zero; "" otherwise."""
    if value in (None, ""):
        return ""
    rounded = round(float(value))
    return "trend-down" if rounded < 0 else "trend-up" if rounded > 0 else ""
