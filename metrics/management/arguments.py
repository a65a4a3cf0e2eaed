"""Argument types shared by the metrics commands."""

from __future__ import annotations

import argparse
import datetime as dt


def iso_date(raw: str) -> dt.date:
    """``--from 2024-03-01``: a YYYY-MM-DD date, or a clear usage error."""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {raw!r}") from None
