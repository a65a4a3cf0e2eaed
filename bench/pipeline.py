"""Time the nightly pipeline (issue 3) and the reads around it, on the database in the
environment (``DATABASE_URL``; the figures in docs/benchmarks.md are PostgreSQL).

    .venv/bin/python bench/pipeline.py --as-of 2026-11-21
    .venv/bin/python bench/pipeline.py --as-of 2026-11-21 --worker   # fanned out, real worker

Prints, in one run:

1. the nightly pipeline for ``--as-of``, in this process (``metrics.pipeline.run_nightly``),
   or with ``--worker`` through a real Celery worker started here (``celery -A config
   worker``, prefork, ``--concurrency``; needs ``REDIS_URL``): each step's wall time and the
   total. On a book whose pipeline already ran for a later day, the run rebuilds that day's
   history only and prints the steps it skipped (standings, playbooks, alerts): time the
   whole night on a copy whose latest run is older than ``--as-of``;
2. a bare ``SELECT account_id, count(*) FROM accounts_usageevent WHERE occurred_at`` in
   the 90 days ending with ``--as-of`` ``GROUP BY account_id``, timed in the same run, and
   the ratio pipeline / bare query;
3. peak resident memory: this process's ``ru_maxrss`` and the largest of its forked
   children's (in-process mode: the health chunks' processes), or the largest
   ``VmHWM`` over the worker's processes, read from /proc while it runs, and the worker
   parent's ``ru_maxrss`` from ``os.wait4`` (worker mode);
4. one account's incremental recompute (``services.health_snapshots_record`` for one
   account id, what ``metrics.tasks.recompute_account_health`` calls) over ``--accounts``
   random accounts: p50, p95, max;
5. the one-year KPI query: ``metrics.kpis.kpi_report`` over every account for the 365 days
   ending with ``--as-of`` (twice: the second run has a warm cache).

Appends one JSON line to bench/out/pipeline.jsonl. Timing never goes into a test."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _setup import OUT, ROOT, django_setup


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class GcClock:
    """Seconds this process spent in the garbage collector, per generation, and how many
    full (generation 2) passes it made: ``gc.callbacks`` around each collection."""

    def __init__(self):
        self.seconds = [0.0, 0.0, 0.0]
        self.full_passes = 0
        self._began = 0.0

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.seconds[info["generation"]] += time.perf_counter() - self._began
        self.full_passes += info["generation"] == 2

    def report(self) -> dict:
        return {
            "seconds": [round(value, 2) for value in self.seconds],
            "full_passes": self.full_passes,
            # what one more full pass finds unreachable right after the run: cyclic garbage
            # the run left (e.g. frozen while alive-looking at a step's start)
            "cyclic_garbage_after": gc.collect(),
        }


def bare_group_by(as_of: dt.date) -> tuple[float, int]:
    """Seconds of the bare GROUP BY account over the 90 days ending with ``as_of``."""
    from django.db import connection

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=90)
    began = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT account_id, count(*) FROM accounts_usageevent"
            " WHERE occurred_at >= %s AND occurred_at < %s GROUP BY account_id",
            [start, end],
        )
        rows = cursor.fetchall()
    return time.monotonic() - began, len(rows)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            todo.append(child)
    return found


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_in_worker(as_of: dt.date, *, concurrency: int) -> tuple[dict, dict]:
    """Start a Celery worker, send the nightly task, wait for the run to finish, stop the
    worker. Returns the run summary and the memory figures."""
    from metrics import pipeline
    from metrics.models import PipelineRun
    from metrics.tasks import run_nightly_pipeline

    if not os.environ.get("REDIS_URL"):
        raise SystemExit("--worker needs REDIS_URL (the broker)")
    OUT.mkdir(parents=True, exist_ok=True)
    log = open(OUT / "pipeline_worker.log", "wb")  # noqa: SIM115 - closed below
    from config.celery import QUEUES

    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork"]
    cmd += ["--concurrency", str(concurrency), "-Q", ",".join(QUEUES), "--loglevel", "WARNING"]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    worker = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    peak = {"kib": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in [worker.pid, *_descendants(worker.pid)]:
                peak["kib"] = max(peak["kib"], _hwm_kib(pid))
            stop.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        time.sleep(8)  # the worker connects and forks its pool
        before = PipelineRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        began = time.monotonic()
        run_nightly_pipeline.delay(as_of.isoformat())
        run = None
        while time.monotonic() - began < 3600:
            run = PipelineRun.objects.filter(pk__gt=before, as_of=as_of).order_by("-pk").first()
            if run is not None and run.status != PipelineRun.Status.RUNNING:
                break
            time.sleep(0.25)
        wall = time.monotonic() - began
    finally:
        stop.set()
        watcher.join()
        worker.send_signal(signal.SIGTERM)
        _pid, _status, usage = os.wait4(worker.pid, 0)
        log.close()
    if run is None or run.status != PipelineRun.Status.SUCCEEDED:
        raise SystemExit(f"the run did not succeed: {run and run.status} {run and run.error}")
    result = pipeline.summary(run)
    result["wall_seconds"] = round(wall, 2)  # from sending the task to seeing it finished
    memory = {
        "worker_peak_rss_mib": round(peak["kib"] / 1024),
        "worker_parent_ru_maxrss_mib": round(usage.ru_maxrss / 1024),
        "concurrency": concurrency,
    }
    return result, memory


def incremental(as_of: dt.date, n: int, seed: int) -> dict:
    from accounts.models import Account
    from metrics import services

    ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    sample = random.Random(seed).sample(ids, min(n, len(ids)))
    services.health_snapshots_record(account_ids=[sample[0]], as_of=as_of)  # warm-up
    times = []
    for account_id in sample:
        began = time.monotonic()
        services.health_snapshots_record(account_ids=[account_id], as_of=as_of)
        times.append((time.monotonic() - began) * 1000)
    return {
        "accounts": len(sample),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(_percentile(times, 95), 1),
        "max_ms": round(max(times), 1),
    }


def kpi_year(as_of: dt.date) -> dict:
    from metrics import kpis

    end = as_of + dt.timedelta(days=1)
    start = end - dt.timedelta(days=365)
    runs = []
    for _ in range(2):
        began = time.monotonic()
        report = kpis.kpi_report(start=start, end=end)
        runs.append(round(time.monotonic() - began, 2))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seconds": runs,
        "accounts_with_contracts": report["scope"]["accounts_with_contracts"],
    }


def book() -> dict:
    from django.db import connection

    tables = {
        "accounts": "accounts_account",
        "contracts": "accounts_contract",
        "tickets": "accounts_ticket",
        "invoices": "accounts_invoice",
        "stakeholders": "accounts_stakeholder",
        "events": "accounts_usageevent",
        "usage_days": "accounts_usagedaily",
    }
    out = {}
    with connection.cursor() as cursor:
        for name, table in tables.items():
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            out[name] = cursor.fetchone()[0]
        cursor.execute("SELECT min(occurred_at), max(occurred_at) FROM accounts_usageevent")
        first, last = cursor.fetchone()
        out["events_from"] = first and first.date().isoformat()
        out["events_to"] = last and last.date().isoformat()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--worker", action="store_true", help="fan out through a real worker")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=50, help="incremental sample size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["incremental", "kpi", "book"])
    args = parser.parse_args()
    django_setup()
    from django.db import connection

    from metrics import pipeline

    result: dict = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "as_of": args.as_of.isoformat(),
        "mode": "worker" if args.worker else "in-process",
        "loadavg_before": os.getloadavg(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "vendor": connection.vendor,
    }
    if "book" not in args.skip:
        result["book"] = book()
        print("book:", json.dumps(result["book"]))

    if args.worker:
        summary, memory = run_in_worker(args.as_of, concurrency=args.concurrency)
        total = summary["wall_seconds"]
    else:
        began = time.monotonic()
        with GcClock() as collector:
            summary = pipeline.run_nightly(args.as_of)
        total = time.monotonic() - began
        # this process's only (the forked health chunks' collectors are their own)
        result["gc"] = collector.report()
        memory = {
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            # the largest of the processes forked for the health chunks (their RSS counts the
            # pages they still share with this one: this + 2 × it is an upper bound)
            "forked_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            ),
        }
    bare, groups = bare_group_by(args.as_of)
    result.update(
        pipeline={
            "steps": {s["name"]: s["seconds"] for s in summary["steps"]},
            "total_seconds": round(total, 2),
            "run": summary,
        },
        bare_group_by={"seconds": round(bare, 2), "accounts": groups},
        ratio=round(total / bare, 1) if bare else None,
        memory=memory,
    )
    print(f"nightly pipeline as of {args.as_of} ({result['mode']}):")
    if summary.get("past"):  # an older day than the book's latest run: its history only
        print(f"  {summary['past']}: the steps acting on the present were skipped")
    for step in summary["steps"]:
        if "skipped" in step:
            print(f"  {step['name']:<16}  skipped: {step['skipped']}")
            continue
        print(f"  {step['name']:<16} {step['seconds']:8.2f} s")
        if step["name"] == "playbooks":  # what the step did: opened, escalated … (its counts)
            done = {k: v for k, v in step.items() if isinstance(v, int) and k != "seconds"}
            print(f"  {'':<16} {json.dumps(done)}")
    print(f"  {'total':<16} {total:8.2f} s")
    print(f"bare GROUP BY account over 90 days: {bare:.2f} s ({groups} accounts)")
    print(f"ratio pipeline / bare GROUP BY: {result['ratio']}")
    print("memory:", json.dumps(memory))
    if "gc" in result:
        print("garbage collector (this process):", json.dumps(result["gc"]))

    if "incremental" not in args.skip:
        result["incremental"] = incremental(args.as_of, args.accounts, args.seed)
        print("one account's incremental recompute:", json.dumps(result["incremental"]))
    if "kpi" not in args.skip:
        result["kpi_year"] = kpi_year(args.as_of)
        print("one-year KPI report, all accounts:", json.dumps(result["kpi_year"]))
    result["loadavg_after"] = os.getloadavg()
    print("load average before/after:", result["loadavg_before"], result["loadavg_after"])
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "pipeline.jsonl", "a") as fh:
        fh.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
