"""Which queue each health task lands on, read from a real broker: the night's health chunks
on ``celery`` (compose's ``worker``), so the ``recompute`` queue (``worker-recompute``) holds
only the incremental recomputes, which keep an account's health current within a minute of
its new data also between 02:15 UTC and the end of the night's health step.

The broker is a redis-server of this test's own (the machine's shared Redis is left alone);
what each queue holds is read from its list, as a worker consuming that queue would."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
import redis

from config.celery import app as celery_app
from metrics import pipeline, tasks
from metrics.models import PipelineRun
from tests.factories import AccountFactory
from tests.reliability.test_redis_outage import PrivateRedis, _forget_connections

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs the redis-server binary"),
]


@pytest.fixture
def broker():
    server = PrivateRedis()
    server.start()
    before = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.broker_url = server.url
    celery_app.conf.task_always_eager = False  # sent to the broker, not run here
    _forget_connections()
    yield server
    server.stop()
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = before
    _forget_connections()


def queued(server: PrivateRedis, queue: str) -> list[tuple[str, list, dict]]:
    """(task name, args, kwargs) of each message waiting on ``queue``, oldest first."""
    client = redis.Redis.from_url(server.url)
    found = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu pushes on the left
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args, kwargs))
    return found


def test_the_nights_health_chunks_leave_the_recompute_queue_to_the_incremental_path(
    broker, django_capture_on_commit_callbacks, monkeypatch
):
    accounts = sorted(a.pk for a in AccountFactory.create_batch(5))
    day = pipeline.default_as_of()
    with django_capture_on_commit_callbacks(execute=True):
        summary = pipeline.run_nightly(day, fan_out=True, chunk_size=2)
    assert summary["status"] == "running"  # the chunks wait on the broker
    run_id = summary["run_id"]

    # meanwhile new data arrives: one account's, and an import's of more accounts than
    # the incremental path sends one task each for
    monkeypatch.setattr(tasks, "INCREMENTAL_CHUNK_ABOVE", 3)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_changed([accounts[0]])
    with django_capture_on_commit_callbacks(execute=True):
        tasks.account_changed(accounts)

    chunk = "metrics.tasks.recompute_health_chunk"
    day_iso = day.isoformat()
    assert queued(broker, "celery") == [
        (chunk, [accounts[0:2], day_iso], {"run_id": run_id, "chunk": 0}),
        (chunk, [accounts[2:4], day_iso], {"run_id": run_id, "chunk": 1}),
        (chunk, [accounts[4:5], day_iso], {"run_id": run_id, "chunk": 2}),
    ]
    today = tasks.utc.today().isoformat()
    assert queued(broker, "recompute") == [
        ("metrics.tasks.recompute_account_health", [accounts[0]], {}),
        (chunk, [accounts, today], {}),  # an import's accounts: the incremental chunk
    ]
    assert PipelineRun.objects.get(pk=run_id).chunks_total == 3
