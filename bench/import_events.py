"""Time ``manage.py import_data FILE --kind events`` and measure its peak memory.

    .venv/bin/python bench/import_events.py bench/data/events_1m.csv bench/data/events_5m.csv

Each file is imported by a fresh ``manage.py`` process; the script waits for it with
``os.wait4`` and reports its wall time, events per second (rows / wall time, everything
included: reading, validation, COPY, dedup, rollups, commit) and its peak resident memory
(``ru_maxrss`` of that process alone). Results are appended to bench/out/import_events.jsonl.
Flat memory means the 5M-row file peaks at about the same RSS as the 1M-row one.

It also reports the CPU time of the import's PostgreSQL backend (found by its
``application_name``, read from ``/proc`` every half second, so only when PostgreSQL runs on
this machine): the import is one transaction on one connection, so that backend's CPU time
per row bounds the import's speed, whatever the Python side does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from _setup import OUT, ROOT, process_cpu


class BackendCpu:
    """Samples the CPU seconds of the PostgreSQL backends named ``app`` until stopped."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.seconds: dict[int, float] = {}  # backend pid -> last CPU seconds read
        self.readable = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg  # the project's driver; DATABASE_URL as manage.py reads it

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            while not self._stop.wait(0.5):
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [self.app]
                ).fetchall()
                for (pid,) in pids:
                    seconds = process_cpu(pid)
                    if seconds is None:  # gone, or PostgreSQL is on another machine
                        self.readable = self.readable and pid in self.seconds
                        continue
                    self.seconds[pid] = seconds

    def __enter__(self) -> BackendCpu:
        if os.environ.get("DATABASE_URL"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def total(self) -> float | None:
        return round(sum(self.seconds.values()), 1) if self.seconds and self.readable else None


def run_import(path: str) -> dict:
    cmd = [sys.executable, "manage.py", "import_data", path, "--kind", "events", "--json"]
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    app = f"bench-import-{os.getpid()}"
    began = time.monotonic()
    with (
        open(OUT / "import_events.stdout", "wb") as out,
        open(OUT / "import_events.stderr", "wb") as err,
        BackendCpu(app) as backend,
    ):
        env = {**os.environ, "PGAPPNAME": app}  # libpq names the import's connection
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - began
    result = json.loads((OUT / "import_events.stdout").read_text() or "{}")
    if os.waitstatus_to_exitcode(status) != 0 or result.get("status") != "succeeded":
        sys.stderr.write((OUT / "import_events.stderr").read_text()[-2000:])
        raise SystemExit(f"import of {path} failed: {result.get('status')}")
    rows = result["rows"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "commit": commit,
        "file": path,
        "bytes": os.path.getsize(path),
        "rows": rows,
        "created": result["created"],
        "unchanged": result["unchanged"],
        "seconds": round(seconds, 1),
        "events_per_s": round(rows / seconds),
        "max_rss_mib": round(usage.ru_maxrss / 1024),  # Linux: KiB
        "cpu_user_s": round(usage.ru_utime, 1),
        "cpu_sys_s": round(usage.ru_stime, 1),
        # the import's PostgreSQL backend (sampled: up to half a second is missed at the end)
        "pg_backend_cpu_s": backend.total(),
        # 1-minute load average before and after: other work on the two cores
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    print(
        "| file | rows | created | unchanged | seconds | events/s | max RSS MiB | CPU user s "
        "| PG backend CPU s | load 1m before/after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for path in args.files:
        r = run_import(path)
        with open(OUT / "import_events.jsonl", "a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(
            f"| {os.path.basename(path)} | {r['rows']:,} | {r['created']:,} | {r['unchanged']:,} "
            f"| {r['seconds']} | {r['events_per_s']:,} | {r['max_rss_mib']} | {r['cpu_user_s']} "
            f"| {r['pg_backend_cpu_s']} | {r['load_1m'][0]} / {r['load_1m'][1]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
