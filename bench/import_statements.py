"""Where an event import's PostgreSQL time goes: CPU of its backend per statement.

    .venv/bin/python bench/import_statements.py bench/data/events_300k.csv [--rollback]
    .venv/bin/python bench/import_statements.py bench/data/events_api.csv --api 100000

With ``--api N``, the first N rows go in as the event batch API hands them to the intake
(JSON objects, ``--batch`` per ``run_import``, one transaction each), without HTTP.

Runs ``intake.run_import`` on one events file in this process (PostgreSQL on this machine:
the backend's CPU is read from ``/proc/<pid>/stat`` before and after every statement Django
runs). Statements are grouped by their first words; the ``COPY`` of each chunk and the
commit are not Django statements: they show as "not in a statement". Also prints this
process's CPU (user + sys) per row. ``--rollback`` imports as a dry run (nothing kept), so
the same book can serve several runs. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from _setup import StatementCPU, django_setup, statement_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--rollback", action="store_true", help="a dry run: nothing kept")
    parser.add_argument("--api", type=int, default=0, help="N rows as API batches")
    parser.add_argument("--batch", type=int, default=10_000, help="events per API batch")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of the rollup statements"
    )
    args = parser.parse_args()

    django_setup()
    from django.db import connection

    from accounts import intake

    measured = StatementCPU(connection)
    backend_cpu, spent = measured.now, measured.spent

    def wrapper(execute, sql, params, many, context):
        if not (args.explain and not many and "accounts_usage" in sql and "INSERT" in sql):
            return measured(execute, sql, params, many, context)
        before = backend_cpu()
        execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params, many, context)
        print(f"--- {statement_label(sql)}")
        print("\n".join(r[0] for r in context["cursor"].fetchall()))
        measured.add(statement_label(sql), before)
        return None

    rusage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = backend_cpu()
    began = time.monotonic()
    if args.api:
        batches = api_batches(args.file, args.api, args.batch)
        rusage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = backend_cpu()
        began = time.monotonic()
        with connection.execute_wrapper(wrapper):
            for rows in batches:
                source = intake.source_from_rows("events", rows)
                result = intake.run_import([source], dry_run=args.rollback)
                assert result.ok, result.errors[:3]
        rows_done = args.api
    else:
        source = intake.source_from_path(args.file, kind="events")
        with connection.execute_wrapper(wrapper):
            result = intake.run_import([source], dry_run=args.rollback)
        rows_done = sum(r.rows for r in result.results)
    wall = time.monotonic() - began
    total = backend_cpu() - cpu_before
    after = resource.getrusage(resource.RUSAGE_SELF)
    py = after.ru_utime + after.ru_stime - rusage.ru_utime - rusage.ru_stime
    rows = rows_done or 1
    print(
        f"{args.file}: {rows:,} rows, {result.results[0].created:,} new, {wall:.1f} s wall "
        f"= {rows / wall:,.0f}/s, load {os.getloadavg()[0]:.2f}, ok={result.ok}"
    )
    print(
        f"Python CPU {py:.1f} s = {py / rows * 1e6:.1f} µs/row; "
        f"PG backend CPU {total:.1f} s = {total / rows * 1e6:.1f} µs/row"
    )
    print("| statement | calls | PG CPU s | µs/row |\n|---|---:|---:|---:|")
    rest = total
    for name, (seconds, calls) in sorted(spent.items(), key=lambda kv: -kv[1][0]):
        rest -= seconds
        if seconds >= 0.05:
            print(f"| `{name}` | {calls} | {seconds:.2f} | {seconds / rows * 1e6:.1f} |")
    print(f"| not in a statement (COPY, commit, rest) | | {rest:.2f} | {rest / rows * 1e6:.1f} |")


def api_batches(path: str, count: int, size: int) -> list[list[dict]]:
    """The first ``count`` rows of an events CSV as the API's JSON objects, in batches."""
    import csv
    import json

    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = []
        for row, _ in zip(reader, range(count), strict=False):
            row["value"] = float(row["value"]) if row["value"] else None
            rows.append(row)
    rows = json.loads(json.dumps(rows))  # what the API's parser hands over
    return [rows[i : i + size] for i in range(0, len(rows), size)]


if __name__ == "__main__":
    main()
