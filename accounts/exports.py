"""CSV exports that are safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets: a customer's survey comment ``=HYPERLINK("http://evil",
"click")`` would run in the CSM's spreadsheet (CSV injection, OWASP). So is one starting
with their full-width forms (``＝``, ``＋``, ``－``, ``＠``: Excel in a Japanese, Chinese or
Korean locale reads them as the ASCII ones), and a NUL (OWASP ASVS lists it). Such text cells
get a leading apostrophe, which spreadsheets show as text. Numbers are written as numbers (a
negative MRR change stays ``-120.00``), so only strings are touched, and a string that is
a plain number (``"-120.00"``, as the KPI engine's JSON carries amounts) stays a number.

What every export here does, for a person who opens it in Excel, LibreOffice or Google
Sheets: UTF-8 with a byte order mark (Excel on Windows reads a file without one in the
local code page, and "Zürich" or "—" come out garbled; LibreOffice and Google Sheets skip
the mark); days as ISO days (2026-11-22), moments as "2026-11-22 14:05:00" in UTC (a form
spreadsheets read as a date and time; ISO's "T…+00:00" they keep as text); money as plain
numbers with a currency column, never "$1.5k"; a KPI's ratio to four decimal places; a
header row in words; a file name that says what and which days; rows streamed, not built
in memory."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.text import slugify

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0", "＝", "＋", "－", "＠")
# a plain decimal number in ASCII digits: a spreadsheet reads it as a number, never as a
# formula (``\d`` alone would also take other scripts' digits, which it may read otherwise)
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_safe(value: Any) -> Any:
    """The value as it should go into a CSV cell: text that a spreadsheet would run as a
    formula is prefixed with ``'``; None is empty; numbers, dates and booleans unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    text = str(value)
    if PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text if text.startswith(FORMULA_START) else text


FIGURE_PLACES = 4  # a percentage to a millionth: more than any KPI's inputs can tell apart


def figure_cell(value: Any, *, money: bool) -> Decimal | str:
    """A KPI figure as a CSV cell: money to the cent (``1441133.17``, not the CLV's
    ``1441133.168000000000000000000``), other figures to four decimal places without
    trailing zeros (NRR ``100.0774``, NPS ``20``, not a division's 28 digits, which Excel
    cuts at 15 anyway). A number, so spreadsheets sum it; empty for no figure."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    if money:
        return number.quantize(Decimal("0.01"), ROUND_HALF_UP)
    text = f"{number.quantize(Decimal(1).scaleb(-FIGURE_PLACES), ROUND_HALF_UP):f}"
    figure = Decimal(text.rstrip("0").rstrip(".") if "." in text else text)
    return figure if figure else Decimal(0)  # -0.00001 is 0, not "-0"


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]):
    """Stream ``rows`` as a CSV download (constant memory for any number of rows)."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # a BOM: Excel then reads the file as UTF-8
        yield writer.writerow([csv_safe(h) for h in header])
        for row in rows:
            yield writer.writerow([csv_safe(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def moment_cell(moment: dt.datetime | None) -> str:
    """An instant as a spreadsheet reads it: "2026-11-22 14:05:00", in UTC (the header says
    so). Empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def export_filename(*parts: Any) -> str:
    """``survey-responses-smb-2026-03-01-to-2026-03-31.csv``: what, which scope, which days,
    each part slugged (days as ISO days); empty parts left out."""
    words = [p.isoformat() if isinstance(p, dt.date) else slugify(str(p)) for p in parts if p]
    return "-".join(w for w in words if w) + ".csv"
