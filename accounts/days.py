"""A day as people type it, read one way at every door: the API's query parameters and
bodies, the list filters, the management commands' options and the import files.

Exactly ``YYYY-MM-DD`` and a real calendar day. Python 3.11's ``date.fromisoformat`` also
reads ``20261001`` and ``2026-W40-4`` (ISO basic and week dates) as 1 Oct 2026, and
Django's ``parse_date`` (behind DRF's and Django's date fields) reads ``2026-1-5`` as
5 Jan 2026: each door took a different set of spellings, silently. The docs promise
YYYY-MM-DD, so anything else is refused with what was given and the form expected."""

from __future__ import annotations

import datetime as dt
import re

# ASCII digits only: ``\d`` would also match other scripts' digits
SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EXAMPLE = "2026-03-01"


def _show(raw: object) -> str:
    text = str(raw)
    return text if len(text) <= 40 else text[:40] + "…"


def day_error(raw: object) -> str | None:
    """Why ``raw`` is not a day, in words for a person (who named the parameter: the doors
    put its name first); None when it is one."""
    text = "" if raw is None else str(raw)
    if text == "":
        return f"empty: give a day as YYYY-MM-DD, e.g. {EXAMPLE}"
    if SHAPE.fullmatch(text):
        try:
            dt.date.fromisoformat(text)
        except ValueError as exc:
            return f"{text} is not a valid date (YYYY-MM-DD): {exc}"
        return None
    return f"“{_show(raw)}” is not a date: use YYYY-MM-DD, e.g. {EXAMPLE}"


def parse_day(raw: object) -> dt.date:
    """``raw`` as a day if it is exactly YYYY-MM-DD and a calendar day; else a ValueError
    whose message is ``day_error``'s."""
    problem = day_error(raw)
    if problem is not None:
        raise ValueError(problem)
    return dt.date.fromisoformat(str(raw))


EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)  # as the KPI API accepts


def day_option(raw: str | None, option: str) -> dt.date | None:
    """A command's day option (``option`` as typed, ``"--start"``) read in ``handle()``:
    None when not given, else exactly YYYY-MM-DD from 1900 to 2999 (windows reach back 60
    days and more: year 1 would overflow), or a one-line ``CommandError`` naming the
    option, like the commands' other errors. (An argparse ``type=`` error prints the whole
    usage block and exits 2 instead; a CommandError raised in a ``type=`` is a traceback,
    since Django parses the arguments outside its error handling.)"""
    from django.core.management.base import CommandError  # doors only: keep this module light

    if raw is None:
        return None
    try:
        day = parse_day(raw)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None
    if not EARLIEST <= day <= LATEST:
        raise CommandError(f"{option}: {raw} is outside {EARLIEST} .. {LATEST}")
    return day


# --- instants: a day or a timestamp ----------------------------------------------------------
# The list filters over timestamps (``?opened_after=``, ``?since=``) take a day or a full
# timestamp. Python's ``datetime.fromisoformat`` (behind django-filter's IsoDateTimeField)
# also reads ``20261001``, ``2026-W40-4`` and ``20261001T0930``, so the shape is checked
# first, as for days. No offset means UTC, as in the bodies and the import files.
INSTANT_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
INSTANT_EXAMPLE = "2024-03-01T09:30:00Z"
INSTANT_FORMS = f"YYYY-MM-DD or {INSTANT_EXAMPLE}"
# "…T09:30:00+01:00" typed into a URL unencoded: the "+" arrives as a space
_PLUS_AS_SPACE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+ [0-9]{2}:[0-9]{2}")


def instant_error(raw: object) -> str | None:
    """Why ``raw`` is not a day or a timestamp (see ``parse_instant``), in words for a
    person; None when it is one."""
    text = "" if raw is None else str(raw)
    if text == "":
        return f"empty: give a day or a timestamp ({INSTANT_FORMS})"
    if SHAPE.fullmatch(text):
        return day_error(text)
    if INSTANT_SHAPE.fullmatch(text):
        try:
            _read_instant(text)
        except ValueError as exc:
            return f"{text} is not a valid timestamp ({INSTANT_EXAMPLE}): {exc}"
        except OverflowError:
            return f"{text} is out of range: it is not a timestamp we can store"
        return None
    if _PLUS_AS_SPACE.fullmatch(text):
        return (
            f"“{_show(raw)}” is not a timestamp: a “+” in a query string reads as a space, "
            "write it as %2B (…T09:30:00%2B01:00)"
        )
    return f"“{_show(raw)}” is not a date or timestamp: use {INSTANT_FORMS}"


def _read_instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    # PostgreSQL refuses offsets beyond ±15:59 ("-19:05" is valid ISO 8601 and Python), and
    # the stored timestamps are UTC anyway; OverflowError past year 1 or 9999 in UTC
    return value.astimezone(dt.UTC)


def parse_instant(raw: object) -> dt.datetime:
    """``raw`` as an aware UTC datetime if it is exactly ``YYYY-MM-DD`` (midnight UTC that
    day) or ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` with ``Z``, ``±HH:MM`` or no offset (UTC);
    else a ValueError whose message is ``instant_error``'s."""
    problem = instant_error(raw)
    if problem is not None:
        raise ValueError(problem)
    return _read_instant(str(raw))
