"""Argument helpers shared by the metrics commands.

Days are read in ``handle()`` with ``day_option`` (``accounts.days``): exactly YYYY-MM-DD,
and a bad one is the same one-line ``CommandError`` (``--start: …``, exit 1) as the
commands' other errors, not argparse's usage block (exit 2)."""

from __future__ import annotations

import argparse
import datetime as dt

from accounts.days import EARLIEST, LATEST, day_option, parse_day

__all__ = ["EARLIEST", "LATEST", "day_option", "iso_date"]


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
