"""SIGKILL the worker in the middle of the nightly pipeline, start another: the pipeline
completes and its snapshots equal those of an uninterrupted run.

Every task of the pipeline is ``acks_late``: a task the killed worker had taken is still
unacknowledged in Redis and goes back to the queue after the visibility timeout (3 s here,
``CELERY_VISIBILITY_TIMEOUT``); the chunks it had finished stay done (``PipelineChunk``), and
the chunk it was in the middle of is redone (its upsert on (account, day) is idempotent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from config.celery import QUEUES
from config.celery import app as celery_app
from metrics import pipeline, tasks
from metrics.models import HealthSnapshot, KpiSnapshot, PipelineChunk, PipelineRun
from tests.metrics.test_tasks import build_book, snapshot_rows
from tests.metrics.test_worker import SERVICES, _database_url, _stop

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not SERVICES, reason="needs REDIS_URL and a PostgreSQL DATABASE_URL"),
    pytest.mark.django_db(transaction=True),
]

TIMEOUT = 180  # seconds for anything we wait on (a loaded 2-core CI box)


def _start(log_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY")
        or "worker-test-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_VISIBILITY_TIMEOUT": "3",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["-Q", ",".join(QUEUES), "--without-gossip", "--without-mingle", "-l", "INFO"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def _wait(predicate, what: str, log_path):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log_path.read_text()[-3000:]}")


def test_sigkill_mid_pipeline_then_a_new_worker_completes_it_with_the_same_snapshots(tmp_path):
    day = pipeline.default_as_of()
    build_book(day, n=24)
    eager = pipeline.run_nightly(day)
    expected = snapshot_rows(day)
    HealthSnapshot.objects.all().delete()
    KpiSnapshot.objects.all().delete()

    celery_app.control.purge()
    log_path = tmp_path / "worker.log"
    first = _start(log_path)
    try:
        tasks.run_nightly_pipeline.delay(day.isoformat(), chunk_size=1)  # 24 chunk tasks
        run = _wait(
            lambda: PipelineRun.objects.filter(as_of=day).exclude(pk=eager["run_id"]).first(),
            "the run to start",
            log_path,
        )
        # some chunks are done, not all: kill it without warning
        _wait(
            lambda: PipelineChunk.objects.filter(run=run).exclude(done_at=None).count() >= 3,
            "three finished chunks",
            log_path,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        run.refresh_from_db()
        assert run.status == PipelineRun.Status.RUNNING  # it really was cut off mid-way
        done_before = PipelineChunk.objects.filter(run=run).exclude(done_at=None).count()
        assert done_before < 24

        second = _start(log_path)
        try:
            _wait(
                lambda: (
                    PipelineRun.objects.filter(pk=run.pk)
                    .exclude(status=PipelineRun.Status.RUNNING)
                    .exists()
                ),
                "the run to finish on the second worker",
                log_path,
            )
        finally:
            _stop(second)
    finally:
        if first.poll() is None:
            first.kill()

    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error
    assert run.chunks_total == 24 and not run.chunks.filter(done_at=None).exists()
    assert snapshot_rows(day) == expected
