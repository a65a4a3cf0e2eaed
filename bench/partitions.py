"""Compare reads and the retention on two copies of one book: ``accounts_usageevent`` as a
plain table and partitioned by month (migration accounts.0006).

    .venv/bin/python bench/partitions.py \\
        --plain postgres://postgres@127.0.0.1:5432/cs_partition_plain \\
        --partitioned postgres://postgres@127.0.0.1:5432/cs_partition_part --as-of 2026-11-21

For each database, best of ``--repeat`` runs (after one warm-up) of:

1. ``count``: ``SELECT count(*)`` of the events in the 30 days ending with ``--as-of`` (the
   scan alone: what pruning saves), and ``window``: the 30-day read of the health and KPI
   steps, ``SELECT account_id, count(*), count(DISTINCT user_id) … GROUP BY account_id`` over
   the same days: execution time from ``EXPLAIN ANALYZE``, and how many tables the plan
   reads (pruning);
2. ``account``: one account's 30 days (the per-account index), over ``--accounts`` random
   accounts: the total;
3. ``retention``: dropping the raw events of one month (``--month``, default the oldest;
   a full month is the figure that scales): ``DELETE`` of its rows on the plain table,
   ``ALTER TABLE … DETACH PARTITION`` and ``DROP TABLE`` on the partitioned one; each inside
   a transaction that is rolled back, so the databases are left as they were.

Prints a Markdown table with the load average; appends JSON to bench/out/partitions.jsonl.
Timing never goes into a test."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import time

import psycopg
from _setup import OUT

COUNT = (
    "SELECT count(*) FROM accounts_usageevent "
    "WHERE occurred_at >= %(start)s AND occurred_at < %(end)s"
)
WINDOW = (
    "SELECT account_id, count(*), count(DISTINCT user_id) FROM accounts_usageevent "
    "WHERE occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY account_id"
)
ACCOUNT = (
    "SELECT count(*), count(DISTINCT user_id) FROM accounts_usageevent "
    "WHERE account_id = %(account)s AND occurred_at >= %(start)s AND occurred_at < %(end)s"
)


def _plan(cursor, sql: str, params: dict) -> tuple[float, int]:
    """Execution time (ms) and the number of tables the plan scans."""
    cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
    plan = cursor.fetchone()[0][0]
    scanned: set[str] = set()

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            scanned.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return plan["Execution Time"], len(scanned)


def _month(cursor, month: str | None) -> tuple[dt.datetime, dt.datetime]:
    if month:
        start = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=dt.UTC)
    else:
        cursor.execute("SELECT min(occurred_at) FROM accounts_usageevent")
        first = cursor.fetchone()[0].astimezone(dt.UTC)
        start = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def measure(url: str, *, as_of: dt.date, repeat: int, accounts: int, month: str | None) -> dict:
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    window = {"start": end - dt.timedelta(days=30), "end": end}
    out: dict = {}
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE relname = 'accounts_usageevent'")
        out["partitioned"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM accounts_usageevent")
        out["events"] = cursor.fetchone()[0]
        _plan(cursor, COUNT, window)  # warm-up
        out["count_ms"] = round(min(_plan(cursor, COUNT, window)[0] for _ in range(repeat)), 1)
        _plan(cursor, WINDOW, window)  # warm-up
        runs = [_plan(cursor, WINDOW, window) for _ in range(repeat)]
        out["window_ms"] = round(min(ms for ms, _ in runs), 1)
        out["window_tables"] = runs[0][1]

        cursor.execute("SELECT id FROM accounts_account ORDER BY id")
        ids = random.Random(1).sample([r[0] for r in cursor.fetchall()], accounts)
        best = None
        for _ in range(repeat):
            began = time.perf_counter()
            for account in ids:
                cursor.execute(ACCOUNT, {**window, "account": account})
                cursor.fetchall()
            took = (time.perf_counter() - began) * 1000
            best = took if best is None else min(best, took)
        out["account_reads_ms"] = round(best, 1)

        start, stop = _month(cursor, month)
        out["month"] = start.strftime("%Y-%m")
        best, rows = None, 0
        for _ in range(repeat):
            cursor.execute("BEGIN")
            began = time.perf_counter()
            if out["partitioned"]:
                name = f"accounts_usageevent_p{start:%Y%m}"
                cursor.execute(f"SELECT count(*) FROM {name}")
                rows = cursor.fetchone()[0]
                began = time.perf_counter()  # the count is not part of the drop
                cursor.execute(f"ALTER TABLE accounts_usageevent DETACH PARTITION {name}")
                cursor.execute(f"DROP TABLE {name}")
            else:
                cursor.execute(
                    "DELETE FROM accounts_usageevent WHERE occurred_at >= %s AND occurred_at < %s",
                    [start, stop],
                )
                rows = cursor.rowcount
            took = (time.perf_counter() - began) * 1000
            cursor.execute("ROLLBACK")
            best = took if best is None else min(best, took)
        out["retention_ms"] = round(best, 1)
        out["retention_rows"] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", required=True, help="database URL, plain events table")
    parser.add_argument("--partitioned", required=True, help="database URL, partitioned")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--month", help="YYYY-MM whose events are dropped (default: oldest)")
    args = parser.parse_args()
    print(
        "| table | events | 30-day count ms | 30-day read ms | tables read | "
        f"{args.accounts} accounts' 30 days ms | a month dropped ms (rows) | load 1m |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    OUT.mkdir(parents=True, exist_ok=True)
    for label, url in (("plain", args.plain), ("partitioned", args.partitioned)):
        load = os.getloadavg()[0]
        r = measure(
            url, as_of=args.as_of, repeat=args.repeat, accounts=args.accounts, month=args.month
        )
        r.update(label=label, as_of=args.as_of.isoformat(), load_1m=round(load, 2))
        with open(OUT / "partitions.jsonl", "a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(
            f"| {label} | {r['events']:,} | {r['count_ms']} | {r['window_ms']} | "
            f"{r['window_tables']} | "
            f"{r['account_reads_ms']} | {r['retention_ms']} ({r['retention_rows']:,}) | "
            f"{r['load_1m']} → {os.getloadavg()[0]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
