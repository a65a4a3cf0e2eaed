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
