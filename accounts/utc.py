"""The product's calendar: UTC days. Nightly runs, as-of dates and "today" on pages all
count in UTC, whatever the server's or the user's time zone; these two are the one place
that says so."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def today() -> dt.date:
    """The current UTC day."""
    return timezone.now().astimezone(dt.UTC).date()


def yesterday() -> dt.date:
    """The last complete UTC day (the nightly pipeline's default as-of day)."""
    return today() - dt.timedelta(days=1)
