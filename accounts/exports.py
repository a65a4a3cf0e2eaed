"""CSV exports that are safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets: a customer's survey comment ``=HYPERLINK("http://evil",
"click")`` would run in the CSM's spreadsheet (CSV injection, OWASP). Such text cells get a
leading apostrophe, which spreadsheets show as text. Numbers are written as numbers (a
negative MRR change stays ``-120.00``), so only strings are touched."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """The value as it should go into a CSV cell: text that a spreadsheet would run as a
    formula is prefixed with ``'``; None is empty; numbers, dates and booleans unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


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
