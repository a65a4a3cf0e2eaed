"""Time the one-year KPI report (issue 3: ``metrics.kpis.kpi_report`` over every account for
the 365 days ending with ``--as-of``) by part, on the database in the environment.

    .venv/bin/python bench/kpi_year.py --as-of 2026-11-21              # per-part seconds
    .venv/bin/python bench/kpi_year.py --as-of 2026-11-21 --explain    # + EXPLAIN ANALYZE
    .venv/bin/python bench/kpi_year.py --as-of 2026-11-21 --profile    # + cProfile top 30

Runs the report ``--runs`` times (default 2: the second has a warm cache) and prints, for
the last run, the wall and CPU seconds of each part of the report (the functions of
``metrics.kpis`` it calls) and of each SQL statement (``connection.execute_wrapper``). When
PostgreSQL runs on this host, each run and each statement also gets the CPU seconds its
backend spent (``/proc``; ``db_cpu``): on a shared machine, wall times grow with the load,
CPU seconds much less. ``db_cpu`` is the main connection's backend only: outside a
transaction on PostgreSQL the report reads the usage totals and the ticket figures on a
second connection (``kpis._report``), whose backend is not counted.
``bench/pipeline.py`` step 5 times the same call after a nightly run. The stored usage
windows (``metrics.UsageWindow``) of ``--as-of`` + 1 are used when present: run
``manage.py run_pipeline --as-of <as-of>`` first to measure the report as it runs after a
night. Appends one JSON line to bench/out/kpi_year.jsonl. Timing never goes into a test."""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import io
import json
import os
import pstats
import time
from collections import defaultdict

from _setup import OUT, django_setup, process_cpu

PARTS = {
    "revenue": [
        "contract_facts",
        "classify",
        "renewal_rate",
        "lifetime_kpis",
        "cohort_table",
        "book_summary",
    ],
    "adoption": ["usage_totals", "usage_inputs", "adoption_kpis", "ttfv"],
    "support": ["support_kpis", "billing_kpis", "voice_of_customer_kpis"],
}


def instrument(timings: dict) -> None:
    """Wrap the report's parts so each call adds its wall and CPU seconds to ``timings``."""
    from metrics import kpis
    from metrics.kpis import adoption, revenue, support

    modules = {"revenue": revenue, "adoption": adoption, "support": support}
    depth = [0]

    def wrap(name, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            depth[0] += 1
            w, c = time.monotonic(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                entry = timings[name]
                entry[0] += time.monotonic() - w
                entry[1] += time.process_time() - c

        return timed

    for module_name, names in PARTS.items():
        module = modules[module_name]
        for name in names:
            fn = getattr(module, name, None)
            if fn is None:
                continue
            wrapped = wrap(f"{module_name}.{name}", fn)
            setattr(module, name, wrapped)
            # the package and sibling modules imported some of them by name
            for other in (kpis, adoption, revenue, support):
                if getattr(other, name, None) is fn:
                    setattr(other, name, wrapped)
    kpis.to_json = wrap("to_json", kpis.to_json)


def _backend_pid(connection) -> int | None:
    """The PostgreSQL backend serving ``connection``, when the server runs on this host (its
    CPU time is what a statement costs, whatever else is running)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if process_cpu(pid) is not None else None


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of the backend ``pid`` (0 without one)."""
    return 0.0 if pid is None else process_cpu(pid) or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each statement")
    parser.add_argument("--profile", action="store_true", help="cProfile the last run")
    args = parser.parse_args()
    django_setup()
    from django.db import connection

    from metrics import kpis

    end = args.as_of + dt.timedelta(days=1)
    start = end - dt.timedelta(days=365)
    timings: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    instrument(timings)
    statements: list[tuple[float, str, object, float]] = []
    backend = _backend_pid(connection)

    def record(execute, sql, params, many, context):
        began, cpu = time.monotonic(), _cpu_seconds(backend)
        try:
            return execute(sql, params, many, context)
        finally:
            used = _cpu_seconds(backend) - cpu
            statements.append((time.monotonic() - began, sql, params, used))

    runs = []
    for i in range(args.runs):
        timings.clear()
        statements.clear()
        last = i == args.runs - 1
        profiler = cProfile.Profile() if last and args.profile else None
        w, c, b = time.monotonic(), time.process_time(), _cpu_seconds(backend)
        with connection.execute_wrapper(record):
            if profiler:
                profiler.enable()
            report = kpis.kpi_report(start=start, end=end)
            if profiler:
                profiler.disable()
        runs.append(
            {
                "wall": round(time.monotonic() - w, 3),
                "cpu": round(time.process_time() - c, 3),
                "db_cpu": round(_cpu_seconds(backend) - b, 2),
            }
        )
    result = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "database": connection.settings_dict["NAME"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "loadavg": os.getloadavg(),
        "runs": runs,
        "parts": {name: [round(w, 3), round(c, 3)] for name, (w, c) in timings.items()},
        "queries": len(statements),
        "sql_seconds": round(sum(s[0] for s in statements), 3),
        "backend_cpu_seconds": round(sum(s[3] for s in statements), 2) if backend else None,
        "accounts_with_contracts": report["scope"]["accounts_with_contracts"],
    }
    print(f"kpi_report {start} .. {end}: runs {runs}, load {result['loadavg']}")
    print(f"{'part':<36}{'wall s':>9}{'cpu s':>9}")
    for name, (w, c) in sorted(timings.items(), key=lambda item: -item[1][0]):
        print(f"{name:<36}{w:9.3f}{c:9.3f}")
    print(
        f"{len(statements)} statements, {result['sql_seconds']} s in execute"
        + (f", {result['backend_cpu_seconds']} s of backend CPU" if backend else "")
        + " (wall, backend CPU):"
    )
    for seconds, sql, _params, cpu in sorted(statements, key=lambda s: -s[0]):
        print(f"  {seconds:7.3f} s {cpu:6.2f} s  {' '.join(sql.split())[:140]}")
    if args.explain and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for _seconds, sql, params, _cpu in sorted(statements, key=lambda s: -s[0])[:8]:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                print("\n" + " ".join(sql.split())[:300])
                print("\n".join(row[0] for row in cursor.fetchall()))
    if args.profile:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "kpi_year.jsonl", "a") as fh:
        fh.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
