"""Intake types and entry points. See the package docstring for usage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Dependency order: a directory import takes files in this order.
KINDS = ("accounts", "contracts", "stakeholders", "tickets", "invoices", "events")

ProgressCallback = Callable[[int, int, int], None]  # (rows done, bytes done, bytes total)


class IntakeError(Exception):
    """A source that cannot be read at all (unknown kind, no header, missing file)."""


@dataclass(frozen=True)
class RowError:
    """One problem with one cell (or one row, column ``""``). ``row`` is the line number in
    the file with the header as row 1 (as a spreadsheet shows it); for JSON rows it is the
    1-based position in the list."""

    source: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}, column {self.column}" if self.column else f"row {self.row}"
        return f"{self.source}: {where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "row": self.row, "column": self.column, "message": self.message}


@dataclass
class KindResult:
    kind: str
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


@dataclass
class ImportResult:
    dry_run: bool
    results: list[KindResult] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # first IMPORT_MAX_ERRORS

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "written": self.written,
            "rows": self.total("rows"),
            "created": self.total("created"),
            "updated": self.total("updated"),
            "unchanged": self.total("unchanged"),
            "rejected": self.total("rejected"),
            "results": [r.as_dict() for r in self.results],
            "errors": [e.as_dict() for e in self.errors],
            "messages": [str(e) for e in self.errors],
        }


@dataclass
class Source:
    """Where rows of one kind come from: a file on disk or a list of JSON objects."""

    kind: str
    name: str
    path: Path | None = None
    rows: list[dict[str, Any]] | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else 0


def source_from_path(path: str | Path, kind: str | None = None) -> Source:
    raise NotImplementedError


def sources_from_dir(directory: str | Path) -> list[Source]:
    raise NotImplementedError


def source_from_rows(kind: str, rows: Iterable[dict[str, Any]], name: str = "request") -> Source:
    raise NotImplementedError


def run_import(
    sources: list[Source],
    *,
    dry_run: bool = False,
    ignore_unknown: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    raise NotImplementedError


def _unused() -> Iterator[None]:  # pragma: no cover - placeholder until implemented
    yield None
