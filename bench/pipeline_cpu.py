"""CPU seconds of each step of the nightly pipeline, in this process and in its PostgreSQL
backend, for comparisons on a shared (loaded) machine where wall time says little.

    .venv/bin/python bench/pipeline_cpu.py --as-of 2026-11-21

Runs ``metrics.pipeline.run_nightly`` once (in one process), like ``bench/pipeline.py``, and
prints per step: wall seconds, this process's CPU seconds (user + system) and the CPU
seconds of the PostgreSQL backend serving it, read from ``/proc/<pid>/stat`` (so the
database must run on this host, and you must be allowed to read its processes), and ("all
pg") of every backend connected to the database, sampled every ``SAMPLE`` seconds by a
watcher thread on a connection of its own (the threads' connections of the health and
standings chunks, the windows' direct read, the KPI snapshots beside the health step; a
backend's last moments before it exits are missed). The process CPU and "all pg" added up
are the work a step costs, whatever else runs on the machine (a step that runs beside
another, the KPI snapshots, is counted in the step it runs beside).
``--redo``: delete the day's health snapshots, their band-change facts, standings and KPI
snapshots first, so a second run of the same day writes them again like the first one
(the playbooks step then meets the CTAs the first run opened). Appends a JSON line to
bench/out/pipeline_cpu.jsonl. Timing never goes into a test."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import threading
import time

from _setup import OUT, django_setup, process_cpu

SAMPLE = 0.2  # seconds between two looks at the database's backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--redo", action="store_true", help="rewrite the day's rows")
    args = parser.parse_args()
    django_setup()
    from django.db import connection

    from metrics import pipeline

    connection.ensure_connection()

    def backend_cpu() -> tuple[int, float]:
        """The main connection's backend and its CPU seconds (the health step closes the
        connection before forking its chunks' processes, and a new backend serves it after:
        the step's "pg cpu" is then 0, its work is in "all pg")."""
        if connection.connection is None:
            return 0, 0.0
        backend = connection.connection.info.backend_pid
        seconds = process_cpu(backend)
        return (0, 0.0) if seconds is None else (backend, seconds)

    def own_cpu() -> float:
        """This process and its children that ended (the health chunks' forked processes)."""
        times = os.times()
        return time.process_time() + times.children_user + times.children_system

    # every backend of this database (the threads' connections too), sampled: pid → the
    # last CPU seconds seen (a backend's last < SAMPLE seconds before it exits are missed)
    seen: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        with psycopg.connect(**params, autocommit=True) as watcher:
            while not stop.is_set():
                pids = watcher.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    seconds = process_cpu(pid)
                    if seconds is not None:
                        seen[pid] = seconds
                stop.wait(SAMPLE)

    def all_backends_cpu() -> float:
        return sum(seen.values())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    time.sleep(2 * SAMPLE)

    if args.redo:
        day = args.as_of.isoformat()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM metrics_healthsnapshot WHERE day = %s", [day])
            cursor.execute(
                "DELETE FROM accounts_timelineentry WHERE key = %s", [f"health-band:{day}"]
            )
            cursor.execute("DELETE FROM metrics_accountstanding")
            cursor.execute("DELETE FROM metrics_kpisnapshot WHERE day = %s", [day])

    figures: list[dict] = []

    def timed(name, step):
        def run(**kwargs):
            wall, cpu, pg = time.monotonic(), own_cpu(), backend_cpu()
            every = all_backends_cpu()
            try:
                return step(**kwargs)
            finally:
                pg_end = backend_cpu()
                time.sleep(2 * SAMPLE)  # the sampler's view of the step's last moments
                figures.append(
                    {
                        "step": name,
                        "wall": round(time.monotonic() - wall - 2 * SAMPLE, 2),
                        "cpu": round(own_cpu() - cpu, 2),
                        "pg_cpu": round(pg_end[1] - pg[1], 2) if pg_end[0] == pg[0] else 0.0,
                        "all_pg_cpu": round(all_backends_cpu() - every, 2),
                    }
                )

        return run

    pipeline.BEFORE_HEALTH = [(n, timed(n, s)) for n, s in pipeline.BEFORE_HEALTH]
    pipeline.HEALTH = (pipeline.HEALTH[0], timed(*pipeline.HEALTH))
    pipeline.AFTER_HEALTH = [(n, timed(n, s)) for n, s in pipeline.AFTER_HEALTH]
    finals = pipeline.final_steps
    pipeline.final_steps = lambda: [(n, timed(n, s)) for n, s in finals()]
    load = os.getloadavg()
    result = pipeline.run_nightly(args.as_of)
    print(f"nightly pipeline as of {args.as_of}: {result['status']} in {result['seconds']} s")
    stop.set()
    watcher.join()
    print(f"  {'step':15s} {'wall':>7s} {'cpu':>7s} {'pg cpu':>7s} {'all pg':>7s} {'cpu+all':>7s}")
    for f in figures:
        both = f["cpu"] + f["all_pg_cpu"]
        print(
            f"  {f['step']:15s} {f['wall']:7.2f} {f['cpu']:7.2f} {f['pg_cpu']:7.2f} "
            f"{f['all_pg_cpu']:7.2f} {both:7.2f}"
        )
    keys = ("wall", "cpu", "pg_cpu", "all_pg_cpu")
    total = {k: round(sum(f[k] for f in figures), 2) for k in keys}
    print(
        f"  {'total':15s} {total['wall']:7.2f} {total['cpu']:7.2f} {total['pg_cpu']:7.2f} "
        f"{total['all_pg_cpu']:7.2f} {total['cpu'] + total['all_pg_cpu']:7.2f}"
    )
    print(f"load average before/after: {load} {os.getloadavg()}")
    OUT.mkdir(exist_ok=True)
    with open(OUT / "pipeline_cpu.jsonl", "a") as out:
        out.write(json.dumps({"as_of": args.as_of.isoformat(), "steps": figures}) + "\n")


if __name__ == "__main__":
    main()
