"""Argument helpers shared by the metrics commands.

Days are read in ``handle()`` with ``day_option`` (``accounts.days``): exactly YYYY-MM-DD,
and a bad one is the same one-line ``CommandError`` (``--start: …``, exit 1) as the
commands' other errors, not argparse's usage block (exit 2)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from accounts.days import EARLIEST, LATEST, day_option, parse_day

__all__ = ["EARLIEST", "LATEST", "ONCE", "day_option", "iso_date", "once"]

# ``add_argument(..., **ONCE)`` keeps every value of an option given more than once, for
# ``once`` to refuse: argparse's default keeps the last one without a word, so
# ``--segment SMB --segment ENT`` printed ENT's figures (the API answers such a repeat 400)
ONCE = {"action": "append"}


def once(value: Any, option: str, *, default: Any = None) -> Any:
    """The value of an option declared with ``ONCE``: ``default`` when not given, the value
    when given once (or passed by keyword to ``call_command``, a plain value), else a
    one-line ``CommandError`` naming the option and its values, worded as the API's 400.
    (An ``ONCE`` option declares no default of its own: argparse would append to it.)"""
    from django.core.management.base import CommandError  # as day_option

    if value is None:
        return default
    if not isinstance(value, list):
        return value
    if len(value) > 1:
        shown = ", ".join(f"“{v}”" for v in value)
        raise CommandError(f"{option}: given {len(value)} times ({shown}): give it once")
    return value[0]


def iso_date(raw: str) -> dt.date:
    """An argparse ``type=`` for a day, as strict as ``day_option`` (kept for callers not
    moved to ``day_option`` yet; its error comes with argparse's usage block)."""
    try:
        day = parse_day(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not EARLIEST <= day <= LATEST:
        raise argparse.ArgumentTypeError(f"{raw} is outside {EARLIEST} .. {LATEST}")
    return day
