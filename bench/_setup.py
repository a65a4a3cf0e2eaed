"""Shared by the bench scripts: run from the repository root with the project's venv.

Every script reads the same environment as ``manage.py`` (``DATABASE_URL``,
``DJANGO_SECRET_KEY``); the numbers in docs/benchmarks.md were taken on PostgreSQL."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"  # generated files, git-ignored
OUT = ROOT / "bench" / "out"  # logs and results, git-ignored


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def backend_cpu_of(connection):
    """A function returning the CPU seconds (user + system) spent so far by the PostgreSQL
    backend of ``connection`` (same host, read from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    def backend_cpu() -> float:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    return backend_cpu


def statement_label(sql: str) -> str:
    """A short name for an intake statement: its first two words and the first table."""
    sql = re.sub(r"\s+", " ", sql).strip()
    for table in ("accounts_usage\\w+", "metrics_\\w+", "intake_\\w+", "accounts_\\w+"):
        found = re.findall(table, sql)
        if found:
            return f"{' '.join(sql.split()[:2])} … {found[0]}"[:90]
    return sql[:60]
