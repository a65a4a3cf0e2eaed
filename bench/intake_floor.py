"""The floor of an event import: what each side needs per row when it runs alone.

    .venv/bin/python bench/intake_floor.py bench/data/events_1m.csv

1. **Python alone**: the loader's own per-row work (read, parse, validate, resolve the
   account from a cache filled beforehand, dedup key, first-usage, COPY text), in this one
   thread, with no database call while it runs. CPU of this process per row.
2. **PostgreSQL alone**: in one transaction, rolled back at the end (so the book serves
   again), the statements of an import over all rows at once, and the backend's CPU
   (``/proc/<pid>/stat``) for each: the ``COPY`` of the rows into an unindexed temporary
   table, a plain ``INSERT`` of them into an unindexed copy of the events table (the heap
   alone), the events insert with its dedup (``ON CONFLICT DO NOTHING RETURNING``), then
   each rollup statement of ``events.apply_new_rollups``.

A measurement, not a test; PostgreSQL must run on this machine (its ``/proc``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _setup import StatementCPU, django_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--python-only", action="store_true")
    parser.add_argument(
        "--no-user-trigger",
        action="store_true",
        help="the presences without the UsageUser trigger (disabled inside the rolled-back "
        "transaction): what the trigger costs",
    )
    args = parser.parse_args()

    django_setup()
    from django.db import connection, transaction

    from accounts import intake
    from accounts.intake import events, partitions
    from accounts.intake.core import KindResult
    from accounts.intake.loader import Loader
    from accounts.models import Account

    # --- 1. Python alone ----------------------------------------------------------------
    loader = Loader(dry_run=True, ignore_unknown=False, progress=None, max_errors=100)
    loader.account_ids.update(Account.objects.values_list("external_id", "id"))
    source = intake.source_from_path(args.file, kind="events")
    result = KindResult(kind="events", source=source.name)
    first_seen: dict = {}
    months: set = set()

    def no_database(fn, *a):  # every account is cached: the worker never asks
        raise AssertionError("the worker asked the database")

    payload_file = tempfile.NamedTemporaryFile(prefix="intake_floor_", suffix=".copy")  # noqa: SIM115
    rows_done = 0
    cpu = 0.0
    began = time.process_time()
    wall = time.monotonic()
    rows = loader._rows(source)
    chunks = loader._event_chunks(source, result, rows, first_seen, True, no_database)
    for count, chunk, payload in chunks:
        rows_done += count
        months.add(partitions.month_of(min(r[3] for r in chunk)))
        months.add(partitions.month_of(max(r[3] for r in chunk)))
        cpu += time.process_time() - began
        payload_file.write(payload)  # not counted: the import hands it to PostgreSQL
        began = time.process_time()
    cpu += time.process_time() - began
    wall = time.monotonic() - wall
    payload_file.flush()
    assert not loader.failed, loader.result.errors[:3]
    print(
        f"Python alone: {rows_done:,} rows, {cpu:.1f} CPU-s = {cpu / rows_done * 1e6:.2f} µs/row "
        f"({wall:.1f} s wall, load {os.getloadavg()[0]:.2f})"
    )
    if args.python_only:
        return

    # --- 2. PostgreSQL alone ------------------------------------------------------------
    wrapper = StatementCPU(connection)
    backend_cpu, spent = wrapper.now, wrapper.spent

    def step(name: str, sql: str) -> None:
        before = backend_cpu()
        with connection.cursor() as cursor:
            cursor.execute(sql)
        spent[name] = [backend_cpu() - before, 1]

    class Rollback(Exception):
        pass

    wall = time.monotonic()
    try:
        with transaction.atomic():
            events.prepare()
            partitions.partitions_ensure(sorted(months))
            with connection.cursor() as cursor:
                before = backend_cpu()
                with (
                    open(payload_file.name, "rb") as fh,
                    cursor.cursor.copy(
                        f"COPY {events.STAGE} ({events.EVENT_COLUMNS}) FROM STDIN"
                    ) as copy,
                ):
                    while block := fh.read(1 << 20):
                        copy.write(block)
                spent["(a) COPY into the unindexed temporary stage table"] = [
                    backend_cpu() - before,
                    1,
                ]
            step(
                "(a2) CREATE TEMP heap_only (LIKE accounts_usageevent)",
                "CREATE TEMPORARY TABLE intake_floor_heap (LIKE accounts_usageevent)",
            )
            step(
                "(a3) INSERT … SELECT into that unindexed heap",
                f"INSERT INTO intake_floor_heap ({events.EVENT_COLUMNS}) "
                f"SELECT {events.EVENT_COLUMNS} FROM {events.STAGE}",
            )
            step(
                "(b) events INSERT … ON CONFLICT DO NOTHING RETURNING → new-rows table",
                f"WITH new AS (INSERT INTO accounts_usageevent ({events.EVENT_COLUMNS}) "
                f"SELECT {events.EVENT_COLUMNS} FROM {events.STAGE} ON CONFLICT DO NOTHING "
                f"RETURNING account_id, user_id, event, occurred_at, value) "
                f"INSERT INTO {events.NEW} (account_id, day, user_id, event, value) "
                f"SELECT account_id, (occurred_at AT TIME ZONE 'UTC')::date, user_id, event, "
                f"value FROM new",
            )
            if args.no_user_trigger:
                step(
                    "(trigger off)",
                    "ALTER TABLE accounts_usagepresence DISABLE TRIGGER metrics_usageuser_added",
                )
            with connection.execute_wrapper(wrapper):
                events.apply_new_rollups()
            raise Rollback
    except Rollback:
        pass
    wall = time.monotonic() - wall
    total = sum(s for s, _ in spent.values())
    print(f"PostgreSQL alone ({wall:.1f} s wall, load {os.getloadavg()[0]:.2f}):")
    print("| step | calls | PG CPU s | µs/row |\n|---|---:|---:|---:|")
    for name, (seconds, calls) in spent.items():
        if seconds >= 0.01:
            print(f"| {name} | {calls} | {seconds:.2f} | {seconds / rows_done * 1e6:.2f} |")
    print(f"| all of the above | | {total:.2f} | {total / rows_done * 1e6:.2f} |")


if __name__ == "__main__":
    main()
