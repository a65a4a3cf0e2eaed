"""What the tests that run real processes (a ``run_pipeline`` subprocess, a Celery worker)
wait on and look at: a condition with a deadline, and who holds the pipeline's lock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from metrics import pipeline


def wait_until(
    predicate: Callable[[], Any], what: str, *, timeout: float, log: Callable[[], str] = str
) -> Any:
    """``predicate()``'s first true value, polled every 50 ms; the test fails naming ``what``
    (and ``log()``'s text, e.g. a worker's output) when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}{log()}")


def pipeline_lock_holders() -> int:
    """The sessions holding the pipeline's advisory lock in this database (PostgreSQL: an
    advisory lock is per database, and another database's pipeline may run on this server)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s AND objid = %s",
            pipeline.RUN_LOCK,
        )
        return cursor.fetchone()[0]
