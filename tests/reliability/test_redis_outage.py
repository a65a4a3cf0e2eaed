"""Redis goes away: pages keep serving, what users send is stored, and the work it sets off
reaches the queue once Redis is back (outbox.DeferredTask + the per-minute sweeper).

The test runs its own redis-server on a free port (the machine's shared Redis is never
stopped) and points the cache and the Celery broker at it, then stops and restarts it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from kombu import pools as kombu_pools

from accounts.models import Account, ImportRecord
from config.celery import app as celery_app
from metrics import tasks as metrics_tasks
from outbox import services as outbox
from outbox.models import DeferredTask

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs the redis-server binary"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def queued_task_names(self, queue: str) -> list[str]:
        client = redis.Redis.from_url(self.url)
        return [json.loads(m)["headers"]["task"] for m in client.lrange(queue, 0, -1)]


@pytest.fixture
def private_redis(settings, tmp_path):
    server = PrivateRedis()
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    before = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.broker_url = server.url
    celery_app.conf.task_always_eager = False
    _forget_connections()  # connections are made for the new URL
    yield server
    server.stop()
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = before
    _forget_connections()


def _forget_connections():
    """Celery keeps a connection pool and a producer pool made for the broker URL it first
    saw (an earlier test's); drop both so the next publish connects to the URL set now."""
    # kombu registers pools globally by URL: closing only Celery's pool would leave a closed
    # pool registered for the test broker URL, and every later publish there would fail with
    # "Acquire on closed pool"; reset() closes and forgets them all
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu_pools.reset()


def test_with_redis_down_pages_serve_uploads_are_kept_and_sent_when_it_is_back(
    client, admin_user, csm, private_redis, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["metrics.tasks.account_changed"]
    account = Account.objects.create(external_id="A-1", name="Acme", owner=csm)
    private_redis.stop()

    # pages serve (the cache is away, not the site)
    client.force_login(csm)
    assert client.get(reverse("home")).status_code == 200

    # an upload is stored and its import waits for the queue instead of failing
    client.force_login(admin_user)
    upload = SimpleUploadedFile(
        "accounts.csv", b"external_id,name\nA-2,Globex\n", content_type="text/csv"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:import-list"), {"files": [upload]})
    assert response.status_code in (200, 302)
    record = ImportRecord.objects.get()
    assert record.status == ImportRecord.Status.QUEUED
    detail = client.get(reverse("accounts:import-detail", args=[record.uuid]))
    assert detail.status_code == 200

    # new data for an account: its health recompute is kept too (debounce cache is away)
    with django_capture_on_commit_callbacks(execute=True):
        metrics_tasks.account_changed([account.pk])

    kept = list(DeferredTask.objects.values_list("name", "args"))
    assert kept == [
        ("accounts.tasks.run_uploaded_import", [record.pk]),
        ("metrics.tasks.recompute_account_health", [account.pk]),
    ]
    # while Redis is still away the sweeper keeps them
    assert outbox.deferred_tasks_send() == 0 and DeferredTask.objects.count() == 2

    # Redis is back: the sweeper sends both, in order, once
    private_redis.start()
    assert outbox.deferred_tasks_send() == 2
    assert outbox.deferred_tasks_send() == 0
    assert DeferredTask.objects.count() == 0
    # each on its own queue (settings.CELERY_TASK_ROUTES)
    assert private_redis.queued_task_names("ingest") == ["accounts.tasks.run_uploaded_import"]
    assert private_redis.queued_task_names("recompute") == [
        "metrics.tasks.recompute_account_health"
    ]
