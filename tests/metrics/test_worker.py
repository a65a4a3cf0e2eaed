"""A real Celery worker on Redis runs the nightly pipeline (health fanned out into chunk
tasks) on a small book and leaves exactly the snapshots of the eager, one-process run.

Runs only with services: REDIS_URL and a PostgreSQL DATABASE_URL (skipped otherwise). The
worker is a subprocess (``celery -A config worker --pool=solo -Q celery``) pointed at this
test's database; the test's rows are committed (``transaction=True``) so it sees them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings

from config import settings as project_settings
from config.celery import QUEUES
from config.celery import app as celery_app
from metrics import pipeline, tasks
from metrics.models import HealthSnapshot, KpiSnapshot, PipelineRun
from tests.metrics.test_tasks import build_book, snapshot_rows

SERVICES = bool(os.environ.get("REDIS_URL")) and os.environ.get("DATABASE_URL", "").startswith(
    ("postgres://", "postgresql://")
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not SERVICES, reason="needs REDIS_URL and a PostgreSQL DATABASE_URL"),
    pytest.mark.django_db(transaction=True),
]

WORKER_START_TIMEOUT = 30  # seconds until the worker has taken the first task
RUN_TIMEOUT = 180  # seconds for the whole run through the worker (a loaded 2-core CI box)


def _database_url() -> str:
    """The test database (pytest-django's ``test_…`` name) as a DATABASE_URL."""
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"


def _start_worker(log_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY")
        or "worker-test-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # the tests' webhook receivers listen on 127.0.0.1 (tests.outbox.test_outbox.Receiver)
        "OUTBOX_ALLOW_PRIVATE": "true",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["-Q", ",".join(QUEUES), "--without-gossip", "--without-mingle", "-l", "INFO"]
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()  # warm shutdown: finishes the task in hand
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def _wait_for_run(as_of, *, exclude: int, worker, log_path) -> PipelineRun:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = PipelineRun.objects.filter(as_of=as_of).exclude(pk=exclude).first()
        if run is not None and run.status != PipelineRun.Status.RUNNING:
            return run
        if worker.poll() is not None:
            pytest.fail(f"the worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(
        f"no finished run after {RUN_TIMEOUT}s; worker log:\n{log_path.read_text()[-3000:]}"
    )


def test_a_real_worker_leaves_exactly_the_eager_snapshots(tmp_path, settings):
    assert not celery_app.conf.task_always_eager  # .delay really goes to Redis
    # the worker runs with the project's settings: the eager run gets the same final steps
    settings.PIPELINE_FINAL_HOOKS = project_settings.PIPELINE_FINAL_HOOKS
    day = pipeline.default_as_of()
    build_book(day, n=8)
    eager = pipeline.run_nightly(day)
    expected = snapshot_rows(day)
    assert len(expected["health"]) == 8 and len(expected["kpi"]) == 5
    HealthSnapshot.objects.all().delete()
    KpiSnapshot.objects.all().delete()

    celery_app.control.purge()  # messages left in our queue by an earlier, failed run
    log_path = tmp_path / "worker.log"
    clock = time.monotonic()
    worker = _start_worker(log_path)
    try:
        tasks.run_nightly_pipeline.delay(day.isoformat(), chunk_size=3)
        run = _wait_for_run(day, exclude=eager["run_id"], worker=worker, log_path=log_path)
        seconds = time.monotonic() - clock
    finally:
        _stop(worker)

    assert run.status == PipelineRun.Status.SUCCEEDED, run.error
    assert run.chunks_total == 3  # 3 + 3 + 2 accounts, three chunk tasks
    assert not run.chunks.filter(done_at=None).exists()
    # both runs had the deployed final hooks (playbooks, reports)
    assert [s["name"] for s in run.steps] == [s["name"] for s in eager["steps"]]
    assert [s["name"] for s in run.steps][-2:] == ["playbooks", "reports"]
    assert snapshot_rows(day) == expected
    log = log_path.read_text()
    for name in ("run_nightly_pipeline", "recompute_health_chunk", "continue_nightly_pipeline"):
        assert f"metrics.tasks.{name}" in log, name
    print(f"worker run: {seconds:.1f}s from start to finished run")
