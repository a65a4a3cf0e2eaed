"""Template filters for CTAs."""

from __future__ import annotations

import datetime as dt

from django import template

from accounts import utc

register = template.Library()


@register.filter
def due_by(moment: dt.datetime | None) -> str:
    """A CTA's due instant as every page prints it: "by 24 Nov 2026" for the end of that
    UTC day (stored as 00:00 of the next), "by 24 Nov 2026, 14:05 UTC" otherwise
    (``accounts.utc.due_by_text``)."""
    if not isinstance(moment, dt.datetime):  # "" for a missing variable
        return ""
    return utc.due_by_text(moment)


@register.filter
def day_text(day: dt.date | str | None) -> str:
    """A day (or an ISO day string, as timeline facts store it) as every page prints it:
    "22 Nov 2026" (``accounts.utc.day_text``); "" for nothing."""
    if not isinstance(day, dt.date | str) or not day:
        return ""
    return utc.day_text(day)
