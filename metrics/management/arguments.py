"""Argument types shared by the metrics commands."""

from __future__ import annotations

import argparse
import datetime as dt

EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)  # as the KPI API accepts


def iso_date(raw: str) -> dt.date:
    """``--from 2024-03-01``: a YYYY-MM-DD date from 1900 to 2999, or a clear usage error
    (windows reach back 60 days and more: year 1 would overflow)."""
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {raw!r}") from None
    if not EARLIEST <= day <= LATEST:
        raise argparse.ArgumentTypeError(f"{raw} is outside {EARLIEST} .. {LATEST}")
    return day
