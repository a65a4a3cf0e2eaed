"""Intake types and entry points. See the package docstring for usage."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

# Dependency order: a directory import takes files in this order.
KINDS = ("accounts", "contracts", "stakeholders", "tickets", "invoices", "events")

# Kinds that apps above accounts register (``register_kind``), e.g. surveys' "responses":
# kind -> loader function, taken after the built-in kinds in registration order.
EXTRA_KINDS: dict[str, Callable[..., None]] = {}


def kinds() -> tuple[str, ...]:
    """Every kind the intake takes, in dependency order: the built-in ones, then registered."""
    return KINDS + tuple(EXTRA_KINDS)


def register_kind(kind: str, columns: tuple, load: Callable[..., None]) -> None:
    """Let an app above accounts take in its own kind of rows through the same doors (the
    import command, upload, ``run_import``), validated all-or-nothing with the others.

    ``columns`` are ``columns.Column``s; ``load(loader, source, result, rows)`` receives the
    parsed rows ``(row number, values, problems)`` and must report each problem with
    ``loader.error(source, row, column, message)`` (counting ``result.rejected``), write
    nothing once ``loader.failed``, and count ``result.created/updated/unchanged``. Called
    from ``AppConfig.ready``; registering the same kind again replaces it."""
    from .columns import COLUMNS

    if kind in KINDS:
        raise ValueError(f"{kind!r} is a built-in kind")
    COLUMNS[kind] = tuple(columns)
    EXTRA_KINDS[kind] = load


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
        return {
            "source": self.source,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


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
    # ids of the accounts whose data the import created or changed (when it was written)
    accounts: set[int] = field(default_factory=set)

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


def kind_from_name(name: str) -> str | None:
    """``contracts.csv``, ``events_2024-03.csv.gz`` -> the kind the name starts with (then
    anything but a letter); None for other names and for files that are not .csv/.csv.gz."""
    base = name.lower()
    if base.endswith(".gz"):
        base = base[:-3]
    if not base.endswith(".csv"):
        return None
    base = base[:-4]
    for kind in kinds():
        if base == kind or (base.startswith(kind) and not base[len(kind)].isalpha()):
            return kind
    return None


def source_from_path(path: str | Path, kind: str | None = None) -> Source:
    path = Path(path)
    if not path.is_file():
        raise IntakeError(f"{path}: no such file")
    if kind is None:
        kind = kind_from_name(path.name)
        if kind is None:
            raise IntakeError(
                f"{path.name}: cannot tell the kind from the file name; "
                f"name it <kind>.csv or give --kind ({', '.join(kinds())})"
            )
    if kind not in kinds():
        raise IntakeError(f"unknown kind {kind!r} (expected one of {', '.join(kinds())})")
    return Source(kind=kind, name=path.name, path=path)


def sources_from_dir(directory: str | Path) -> list[Source]:
    """Every file in ``directory`` whose name starts with a kind (``events.csv``,
    ``events_2024-03.csv.gz`` …), in dependency order, then by name. Other files are left
    alone: ``unplaced_files`` names them."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IntakeError(f"{directory}: no such directory")
    placed = [(kind_from_name(p.name), p) for p in sorted(directory.iterdir()) if p.is_file()]
    sources = [
        Source(kind=kind, name=p.name, path=p)
        for kind, p in sorted(
            ((k, p) for k, p in placed if k is not None),
            key=lambda kp: (kinds().index(kp[0]), kp[1].name),
        )
    ]
    if not sources:
        expected = ", ".join(f"{k}.csv" for k in kinds())
        raise IntakeError(f"{directory}: no known files (expected any of {expected})")
    return sources


def unplaced_files(directory: str | Path) -> list[str]:
    """Names of the files in ``directory`` that a directory import leaves alone."""
    return sorted(
        p.name for p in Path(directory).iterdir() if p.is_file() and kind_from_name(p.name) is None
    )


def source_from_rows(kind: str, rows: Iterable[dict[str, Any]], name: str = "request") -> Source:
    if kind not in kinds():
        raise IntakeError(f"unknown kind {kind!r} (expected one of {', '.join(kinds())})")
    rows = list(rows)
    for position, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise IntakeError(f"{name}: row {position}: must be an object with named fields")
    return Source(kind=kind, name=name, rows=rows)


def run_import(
    sources: list[Source],
    *,
    dry_run: bool = False,
    ignore_unknown: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Validate and write ``sources`` all-or-nothing (see the package docstring)."""
    from .loader import Loader  # the loader needs the app registry; this module does not

    ordered = sorted(sources, key=lambda s: kinds().index(s.kind))
    loader = Loader(
        dry_run=dry_run,
        ignore_unknown=ignore_unknown,
        progress=progress,
        max_errors=settings.IMPORT_MAX_ERRORS,
    )
    with transaction.atomic():
        for source in ordered:
            loader.load(source)
        if not loader.result.ok or dry_run:
            transaction.set_rollback(True)
    return loader.result
