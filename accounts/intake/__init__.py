"""Customer data intake: one code path for the import command, the upload page and the API.

Usage (all doors call these)::

    from accounts import intake
    sources = intake.sources_from_dir(path)                 # known files, dependency order
    sources = [intake.source_from_path(path, kind="events")]  # one file (.csv or .csv.gz)
    sources = [intake.source_from_rows("contracts", rows)]  # JSON rows from the API
    intake.register_kind("responses", columns, load)        # a higher app's kind (ready())
    result = intake.run_import(sources, dry_run=False, ignore_unknown=False, progress=cb)

``run_import`` validates and writes every source in **one transaction**: any bad row in any
source rejects everything (nothing written) and ``result.errors`` lists up to 100
``row N, column C: reason`` messages; ``dry_run`` validates and counts, then rolls back.
Raises nothing for bad data; raises ``IntakeError`` for an unusable source (unknown kind,
missing file, no header, not UTF-8 at the header).
"""

from .core import (
    KINDS,
    ImportResult,
    IntakeError,
    KindResult,
    RowError,
    Source,
    kind_from_name,
    kinds,
    register_kind,
    run_import,
    source_from_path,
    source_from_rows,
    sources_from_dir,
    unplaced_files,
)

__all__ = [
    "KINDS",
    "ImportResult",
    "IntakeError",
    "KindResult",
    "RowError",
    "Source",
    "kind_from_name",
    "kinds",
    "register_kind",
    "run_import",
    "source_from_path",
    "source_from_rows",
    "sources_from_dir",
    "unplaced_files",
]
