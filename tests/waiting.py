"""What the tests that run real processes (a ``run_pipeline`` subprocess, a Celery worker)
wait on and look at: a condition with a deadline, and who holds the pipeline's lock; and
another process holding embedded mode's pipeline lock (the OS lock of its file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
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


# Another process's hold of embedded mode's lock file, as ``pipeline._file_lock`` takes it
# (a ``run_pipeline`` from cron): held until the process is killed or its stdin closes
_HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def hold_lock_file(
    path: Path, *, code: str = _HOLD, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """A process of its own holding the OS lock of ``path`` (``code`` run with ``path`` as
    its argument, in ``cwd`` with ``env``; it prints "held" once it holds it); returned once
    it does. The caller ends it (``kill()``, or closing its stdin) and waits for it."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    line = child.stdout.readline()
    if line != "held\n":
        child.kill()
        pytest.fail(f"the lock's holder did not start: {line}{child.stderr.read()}")
    return child


def lock_file_free(path: Path) -> bool:
    """Whether no process holds the OS lock of ``path`` now (tried, and let go at once)."""
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
