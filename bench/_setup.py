"""Shared by the bench scripts: run from the repository root with the project's venv.

Every script reads the same environment as ``manage.py`` (``DATABASE_URL``,
``DJANGO_SECRET_KEY``); the numbers in docs/benchmarks.md were taken on PostgreSQL."""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"  # generated files, git-ignored
OUT = ROOT / "bench" / "out"  # logs and results, git-ignored


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process of this host (a PostgreSQL backend), from
    /proc; None when it cannot be read (gone, or on another machine). Clock ticks: 10 ms
    steps."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu_of(connection):
    """A function returning the CPU seconds spent so far by the PostgreSQL backend of
    ``connection`` (same host)."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return lambda: process_cpu(pid) or 0.0


def statement_label(sql: str) -> str:
    """A short name for an intake statement: its first two words and the first table."""
    sql = re.sub(r"\s+", " ", sql).strip()
    for table in ("accounts_usage\\w+", "metrics_\\w+", "intake_\\w+", "accounts_\\w+"):
        found = re.findall(table, sql)
        if found:
            return f"{' '.join(sql.split()[:2])} … {found[0]}"[:90]
    return sql[:60]


class StatementCPU:
    """The backend CPU of ``connection`` per intake statement: ``spent[label] = [seconds,
    calls]``. The object is a ``connection.execute_wrapper``; ``now()`` is the backend's CPU
    so far, ``add(label, since)`` counts a statement that started at ``since``."""

    def __init__(self, connection):
        self.now = backend_cpu_of(connection)
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])

    def add(self, label: str, since: float) -> None:
        entry = self.spent[label]
        entry[0] += self.now() - since
        entry[1] += 1

    def __call__(self, execute, sql, params, many, context):
        before = self.now()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(statement_label(sql), before)
