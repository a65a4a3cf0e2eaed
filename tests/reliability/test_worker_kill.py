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
from collections import Counter

import pytest
from django.conf import settings

from config import settings as project_settings
from config.celery import QUEUES
from config.celery import app as celery_app
from metrics import pipeline, tasks
from metrics.models import HealthSnapshot, KpiSnapshot, PipelineChunk, PipelineRun
from outbox.models import Message
from playbooks import services as playbook_services
from playbooks.models import Cta, Playbook
from tests.metrics.test_tasks import build_book, snapshot_rows
from tests.metrics.test_worker import SERVICES, _database_url, _stop
from tests.outbox.test_outbox import Receiver
from tests.playbooks.helpers import make_playbook
from tests.waiting import wait_until

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
        # emails are "sent" into the worker's memory: the test counts outbox rows
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "OUTBOX_ALLOW_PRIVATE": "true",  # the webhook receiver listens on 127.0.0.1
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["-Q", ",".join(QUEUES), "--without-gossip", "--without-mingle", "-l", "INFO"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def _wait(predicate, what: str, log_path):
    return wait_until(
        predicate,
        what,
        timeout=TIMEOUT,
        log=lambda: f"; worker log:\n{log_path.read_text()[-3000:]}",
    )


def _ctas() -> list[tuple]:
    return sorted(Cta.objects.values_list("account__external_id", "playbook__name", "status"))


def test_sigkill_mid_pipeline_then_a_new_worker_completes_it_with_the_same_snapshots(
    tmp_path, settings
):
    day = pipeline.default_as_of()
    build_book(day, n=24)
    # the deployed pipeline ends with the playbooks; this one opens a CTA for every account
    # using its seats
    # and sends each a signed webhook call and its owner an email
    settings.PIPELINE_FINAL_HOOKS = project_settings.PIPELINE_FINAL_HOOKS
    settings.OUTBOX_ALLOW_PRIVATE = True  # saving the receiver's 127.0.0.1 address
    receiver = Receiver()
    Playbook.objects.all().delete()  # the starters: this test is about its own
    make_playbook(
        "seat_utilisation",
        {"at_least": 1},
        name="Welcome",
        email_owner=True,
        webhook_url=receiver.url,
        webhook_secret="s3cret",
    )
    eager = pipeline.run_nightly(day)
    expected = snapshot_rows(day)
    expected_ctas = _ctas()
    assert len(expected_ctas) >= 5  # the playbook really fired
    HealthSnapshot.objects.all().delete()
    KpiSnapshot.objects.all().delete()
    Cta.objects.all().delete()
    Message.objects.all().delete()

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
            # the outbox delivers on the second worker; wait until nothing is left to send
            _wait(
                lambda: not Message.objects.exclude(status=Message.Status.SENT).exists(),
                "every email and webhook call to be sent",
                log_path,
            )
        finally:
            _stop(second)
    finally:
        if first.poll() is None:
            first.kill()
        receiver.close()

    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error
    assert run.chunks_total == 24 and not run.chunks.filter(done_at=None).exists()
    assert snapshot_rows(day) == expected
    # no duplicate CTA, email or webhook call
    assert _ctas() == expected_ctas
    webhooks = Message.objects.filter(kind=Message.Kind.WEBHOOK)
    assert webhooks.count() == len(expected_ctas) == len(receiver.calls)
    keys = [
        {k.lower(): v for k, v in c["headers"].items()}["x-opencs-delivery"] for c in receiver.calls
    ]
    assert len(set(keys)) == len(keys)
    # one email per owner's new CTAs: each one by one up to OPENED_MAIL_SINGLE, else one
    # that lists them (the night opens them all in one batch), and never one twice
    emails = Message.objects.filter(kind=Message.Kind.EMAIL)
    per_owner = Counter(Cta.objects.exclude(owner=None).values_list("owner_id", flat=True))
    single = playbook_services.OPENED_MAIL_SINGLE
    assert emails.count() == sum(n if n <= single else 1 for n in per_owner.values())
    assert emails.count() == len(set(emails.values_list("key", flat=True)))
