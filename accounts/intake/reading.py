"""Turning a source into numbered rows of raw cells, streaming (flat memory).

CSV: UTF-8 (a BOM is accepted), ``.csv.gz`` decompressed on the fly. Bytes that are not
UTF-8 are kept as surrogates by the decoder and reported per cell by ``raw_cell``, so the
message can say which row and column hold them.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .columns import COLUMNS

csv.field_size_limit(10 * 1024 * 1024)


class HeaderProblem(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class Progress:
    """Counters the reader advances; the runner reports them."""

    rows: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


def csv_rows(path, progress: Progress) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Open a CSV file; return its header and an iterator of (row number, cells). The file
    closes when the iterator is exhausted or closed.

    Row numbers count the header as row 1, as a spreadsheet does."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    binary = gzip.GzipFile(fileobj=raw) if str(path).endswith(".gz") else raw
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raw.close()
        raise HeaderProblem("", "the file is empty (expected a header row)") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raw.close()
        raise HeaderProblem("", f"cannot be read: {exc}") from None
    except csv.Error as exc:
        raw.close()
        raise HeaderProblem("", f"not valid CSV: {exc}") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        number = 1
        progress.bytes_total = progress.bytes_total or _size(raw)
        try:
            for cells in reader:
                number += 1
                progress.bytes_done = raw.tell()
                yield number, cells
        finally:
            progress.bytes_done = progress.bytes_total
            raw.close()

    iterator = rows()
    return [name.strip() for name in header], _Closing(iterator, raw)


class _Closing:
    """An iterator that also closes the file when closed before it started."""

    def __init__(self, iterator, raw) -> None:
        self._iterator = iterator
        self._raw = raw

    def __iter__(self):
        return self._iterator

    def close(self) -> None:
        self._iterator.close()
        self._raw.close()


def _size(raw) -> int:
    import os

    return os.fstat(raw.fileno()).st_size


def check_header(kind: str, names: list[str], *, ignore_unknown: bool) -> list[HeaderProblem]:
    problems = []
    known = {c.name for c in COLUMNS[kind]}
    seen: set[str] = set()
    for name in names:
        if not _is_utf8(name):
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            problems.append(HeaderProblem(shown, "column name is not valid UTF-8"))
        elif name in seen:
            problems.append(HeaderProblem(name, "column appears twice in the header"))
        elif name not in known and not ignore_unknown:
            problems.append(
                HeaderProblem(name, f"unknown column (expected: {', '.join(sorted(known))})")
            )
        seen.add(name)
    for column in COLUMNS[kind]:
        if column.required and column.name not in seen:
            problems.append(HeaderProblem(column.name, "required column is missing"))
    return problems


def raw_cell(value: Any) -> Any:
    """Normalise one raw value: empty or blank text -> None. Raises ValueError for text
    that held bytes which are not UTF-8."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.isascii() and not _is_utf8(value):
            raise ValueError("not valid UTF-8 text (save the file as UTF-8)")
        if not value or value.isspace():
            return None
    elif isinstance(value, dict | list):
        raise ValueError("must be a single value, not a list or object")
    return value


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
