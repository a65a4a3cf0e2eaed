"""Write a usage-events CSV (the import contract's columns) for accounts in the database.

    .venv/bin/python bench/gen_events.py --rows 1000000 --out bench/data/events_1m.csv
    .venv/bin/python bench/gen_events.py --rows 5000000 --out bench/data/events_5m.csv --seed 2

Accounts come from the database (seed them first, e.g. ``seed_demo --accounts 100000``).
Events spread evenly over the last ``--days`` days (default 365) in time order, as an
analytics export would be, with each row's timestamp unique in the file (microseconds carry
``--seed``), so every row is a new event: files with different seeds never share an event,
and the import's ``created`` count equals its row count. ``.gz`` output is gzip-compressed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import time
from datetime import UTC, datetime, timedelta

from _setup import django_setup

HEADER = ["account_external_id", "user_id", "event", "occurred_at", "value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--seed", type=int, default=1, help="0..999; distinct files, distinct events"
    )
    parser.add_argument("--users-per-account", type=int, default=40)
    parser.add_argument(
        "--accounts",
        type=int,
        default=0,
        help="use only the first N accounts (0: all); with --days 7 a week of a book's usage",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=365,
        help="spread over the last N days (365: a history backfill; 1: yesterday's feed)",
    )
    args = parser.parse_args()
    if not 0 <= args.seed < 1000:
        parser.error("--seed must be 0..999")

    django_setup()
    from accounts.demo import EVENT_WEIGHTS
    from accounts.models import Account

    accounts = Account.objects.order_by("id").values_list("external_id", flat=True)
    accounts = list(accounts[: args.accounts] if args.accounts else accounts)
    if not accounts:
        raise SystemExit("no accounts in the database: run seed_demo first")
    rng = random.Random(args.seed)
    names = [n for n, _ in EVENT_WEIGHTS]
    weights = [w for _, w in EVENT_WEIGHTS]
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    span_us = int((end - start).total_seconds() * 1_000_000)
    step_us = span_us // args.rows // 1000 * 1000  # a multiple of 1 ms: seeds never collide
    if step_us < 1000:
        raise SystemExit("too many rows for --days at 1 ms apart")
    start_us = int(start.timestamp()) * 1_000_000 + args.seed

    began = time.monotonic()
    opener = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        batch = []
        for i in range(args.rows):
            ts = start_us + i * step_us
            secs, micros = divmod(ts, 1_000_000)
            when = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            account = rng.randrange(len(accounts))
            event = rng.choices(names, weights)[0]
            value = int(10 + 2000 * rng.random() ** 3) if event == "export_run" else ""
            batch.append(
                (
                    accounts[account],
                    f"u{account}-{rng.randrange(args.users_per_account)}",
                    event,
                    f"{when}.{micros:06d}Z",
                    value,
                )
            )
            if len(batch) >= 10_000:
                writer.writerows(batch)
                batch = []
        writer.writerows(batch)
    print(
        f"{args.rows:,} events for {len(accounts):,} accounts -> {args.out} "
        f"in {time.monotonic() - began:.1f}s"
    )


if __name__ == "__main__":
    main()
