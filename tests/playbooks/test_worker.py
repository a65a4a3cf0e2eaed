"""The event path with a real Celery worker on Redis: a detractor answer recorded in this
process reaches the worker through TIMELINE_FACT_HOOKS, which opens the CTA and calls the
playbook's webhook (signed) well within a minute; the same task delivered three times opens
one CTA and calls the webhook once.

Runs only with services: REDIS_URL and a PostgreSQL DATABASE_URL (skipped otherwise)."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from accounts.services import timeline_facts_recorded
from config.celery import app as celery_app
from outbox import signing
from outbox.models import Message
from playbooks import tasks
from playbooks.models import Cta
from tests.factories import AccountFactory, UserFactory
from tests.metrics.test_worker import SERVICES, _start_worker, _stop
from tests.outbox.test_outbox import Receiver

from .helpers import make_playbook, survey_answer

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not SERVICES, reason="needs REDIS_URL and a PostgreSQL DATABASE_URL"),
    pytest.mark.django_db(transaction=True),
]
LIMIT = 60  # seconds: the bound from the fact to the CTA


def _wait(condition, *, worker, log_path, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < LIMIT:
        if condition():
            return time.monotonic() - start
        if worker.poll() is not None:
            pytest.fail(f"the worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"{what} not within {LIMIT}s; worker log:\n{log_path.read_text()[-3000:]}")


def test_a_detractor_answer_opens_its_cta_through_a_real_worker(tmp_path, settings):
    assert not celery_app.conf.task_always_eager  # .delay really goes to Redis
    settings.TIMELINE_FACT_HOOKS = ["playbooks.tasks.timeline_facts_recorded"]
    settings.OUTBOX_ALLOW_PRIVATE = True  # saving the receiver's 127.0.0.1 address
    receiver = Receiver()
    account = AccountFactory(owner=UserFactory(), name="Acme")
    make_playbook(
        "survey_unhappy", {"kinds": ["nps"]}, webhook_url=receiver.url, webhook_secret="k3y"
    )
    celery_app.control.purge()
    log_path = tmp_path / "worker.log"
    worker = _start_worker(log_path)
    try:
        entry = survey_answer(account, timezone.now().date())
        timeline_facts_recorded([entry.pk])  # autocommit: the hook runs now
        seconds = _wait(lambda: Cta.objects.exists(), worker=worker, log_path=log_path,
                        what="the CTA")  # fmt: skip
        _wait(lambda: len(receiver.calls) == 1, worker=worker, log_path=log_path,
              what="the webhook call")  # fmt: skip
        # the same fact again, and the task delivered twice more (acks_late redelivery)
        timeline_facts_recorded([entry.pk])
        tasks.evaluate_timeline_facts.delay([entry.pk])
        tasks.evaluate_timeline_facts.delay([entry.pk])
        log = lambda: log_path.read_text()  # noqa: E731
        _wait(lambda: log().count("evaluate_timeline_facts[") >= 8, worker=worker,
              log_path=log_path, what="four evaluations")  # fmt: skip
        time.sleep(1)  # room for a wrong second webhook call to arrive
    finally:
        _stop(worker)
        receiver.close()
    cta = Cta.objects.get()
    assert cta.account == account and "NPS 3 from Dana Smith" in cta.evidence
    assert len(receiver.calls) == 1 and Message.objects.count() == 1
    call = receiver.calls[0]
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert signing.verify("k3y", headers["x-opencs-timestamp"], call["body"],
                          headers["x-opencs-signature"])  # fmt: skip
    print(f"fact → CTA through the worker: {seconds:.1f}s")
