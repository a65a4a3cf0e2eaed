"""The outbox: idempotent queueing, claim-by-update delivery, bounded retries, signatures."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from outbox import services, signing, tasks
from outbox.models import Message

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook target on 127.0.0.1 that records each call and answers ``status``."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.calls: list[dict] = []
        self.status = status
        self.delay = delay
        self.location = ""  # a Location header to answer with (a redirect)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(
                    {"headers": dict(self.headers), "body": body, "path": self.path}
                )
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    # the receiver listens on 127.0.0.1, an address the outbox refuses unless allowed
    settings.OUTBOX_ALLOW_PRIVATE = True
    r = Receiver()
    yield r
    r.close()


def test_email_is_sent_once_even_when_queued_and_delivered_twice(
    celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.email_enqueue(
            key="cta:1:opened",
            to=["csm@example.com"],
            subject="New CTA",
            text="Call them",
            html="<p>Call them</p>",
            source="playbook:1",
        )
        again = services.email_enqueue(
            key="cta:1:opened", to=["csm@example.com"], subject="New CTA", text="Call them"
        )
    assert again.pk == first.pk and Message.objects.count() == 1
    # a task that runs a second time (acks_late) finds the row already sent
    tasks.deliver_message(first.pk)
    services.messages_deliver_due()
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["csm@example.com"] and sent.subject == "New CTA"
    assert sent.alternatives[0][1] == "text/html"
    assert sent.extra_headers["Message-ID"].startswith("<")
    first.refresh_from_db()
    assert first.status == Message.Status.SENT and first.attempts == 1 and first.sent_at


def test_many_messages_go_to_the_workers_in_chunks_each_sent_once(
    celery_eager, django_capture_on_commit_callbacks, monkeypatch
):
    """120 messages queued together: 3 delivery tasks (50 + 50 + 20), not 120; a chunk run a
    second time (a worker lost mid-way, acks_late) sends nothing again."""
    calls = []
    real = tasks.deliver_messages.apply_async
    monkeypatch.setattr(
        tasks.deliver_messages,
        "apply_async",
        lambda args, **kw: calls.append(list(args[0])) or real(args, **kw),
    )
    messages = [
        services.email_message(key=f"bulk:{i}", to=[f"p{i}@example.com"], subject="Hi", text="x")
        for i in range(120)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        queued = services.messages_enqueue(messages)
    assert [len(ids) for ids in calls] == [50, 50, 20]
    assert sorted(pk for ids in calls for pk in ids) == sorted(m.pk for m in queued)
    assert len(mail.outbox) == 120
    tasks.deliver_messages(calls[0])
    assert len(mail.outbox) == 120
    assert Message.objects.filter(status=Message.Status.SENT).count() == 120


def test_nothing_is_sent_when_the_transaction_rolls_back(
    celery_eager, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.email_enqueue(key="k", to=["a@example.com"], subject="s", text="t")
        raise RuntimeError("the fact that caused the email was not written")
    assert Message.objects.count() == 0 and mail.outbox == []


def test_webhook_is_signed_and_the_receiver_can_verify_it(receiver):
    message = services.webhook_enqueue(
        key="cta:9:webhook",
        url=receiver.url,
        body={"cta": 9, "title": "Renewal"},
        secret="s3cret",
        source="playbook:2",
    )
    services.message_deliver(message_id=message.pk)
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert json.loads(call["body"]) == {"cta": 9, "title": "Renewal"}
    assert signing.verify(
        "s3cret", headers["x-opencs-timestamp"], call["body"], headers["x-opencs-signature"]
    )
    # a body changed in transit, or another secret, does not verify
    assert not signing.verify(
        "s3cret", headers["x-opencs-timestamp"], call["body"] + b" ", headers["x-opencs-signature"]
    )
    assert not signing.verify(
        "other", headers["x-opencs-timestamp"], call["body"], headers["x-opencs-signature"]
    )
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_a_failing_target_is_retried_with_backoff_then_marked_failed(receiver, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    receiver.status = 500
    message = services.webhook_enqueue(key="w", url=receiver.url, body={"n": 1})
    t0 = timezone.now()
    services.message_deliver(message_id=message.pk, now=t0)
    message.refresh_from_db()
    # attempt 1 failed: pending again, 30 s later
    assert message.status == Message.Status.PENDING and message.attempts == 1
    assert "HTTP 500" in message.last_error
    assert message.next_attempt_at - timezone.now() <= dt.timedelta(seconds=30)
    assert message.next_attempt_at - t0 >= dt.timedelta(seconds=29)
    # not due yet: the sweeper leaves it
    assert services.messages_deliver_due(now=t0 + dt.timedelta(seconds=5)) == 0
    assert len(receiver.calls) == 1
    services.messages_deliver_due(now=t0 + dt.timedelta(seconds=31))  # attempt 2
    services.messages_deliver_due(now=t0 + dt.timedelta(minutes=5))  # attempt 3: the last
    services.messages_deliver_due(now=t0 + dt.timedelta(hours=5))  # nothing more
    message.refresh_from_db()
    assert len(receiver.calls) == 3
    assert message.status == Message.Status.FAILED and message.attempts == 3
    # an admin's retry gives it another round
    services.message_retry(message=message)
    receiver.status = 204
    services.messages_deliver_due()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and len(receiver.calls) == 4


def test_a_timeout_counts_as_a_failed_attempt(settings):
    settings.OUTBOX_WEBHOOK_TIMEOUT = 1
    settings.OUTBOX_ALLOW_PRIVATE = True  # the slow receiver is on 127.0.0.1
    slow = Receiver(delay=2.5)
    try:
        message = services.webhook_enqueue(key="slow", url=slow.url, body={})
        services.message_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == Message.Status.PENDING
        assert "timed out" in message.last_error.lower()
    finally:
        slow.close()


def test_a_claimed_message_is_not_sent_by_a_second_worker_until_its_claim_expires(receiver):
    message = services.webhook_enqueue(key="c", url=receiver.url, body={})
    now = timezone.now()
    # worker A claimed it and died before recording the outcome
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENDING, claimed_until=now + dt.timedelta(minutes=2), attempts=1
    )
    assert services.message_deliver(message_id=message.pk, now=now) is None
    assert receiver.calls == []
    # after the claim ran out, the sweeper takes it over
    assert services.messages_deliver_due(now=now + dt.timedelta(minutes=3)) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.attempts == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"to": [], "subject": "s", "text": "t"}, "to"),
        ({"to": ["not-an-address"], "subject": "s", "text": "t"}, "to"),
        ({"to": ["a@example.com"], "subject": "two\nlines", "text": "t"}, "subject"),
        ({"to": ["a@example.com"], "subject": " ", "text": "t"}, "subject"),
    ],
)
def test_bad_emails_are_refused_with_field_errors(kwargs, field):
    with pytest.raises(ValidationError) as info:
        services.email_enqueue(key="bad", **kwargs)
    assert field in info.value.message_dict
    assert Message.objects.count() == 0


def test_bad_webhooks_are_refused_with_field_errors():
    with pytest.raises(ValidationError) as info:
        services.webhook_enqueue(key="bad", url="ftp://example.com/x", body={})
    assert "url" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        services.webhook_enqueue(key="bad", url="http://127.0.0.1/x", body={"d": object()})
    assert "body" in info.value.message_dict
    assert Message.objects.count() == 0


def test_backoff_doubles_and_is_capped():
    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert services.backoff(30).total_seconds() == 3600


def test_timeline_fact_hooks_run_after_commit(settings, db, django_capture_on_commit_callbacks):
    from accounts.services import timeline_facts_recorded

    settings.TIMELINE_FACT_HOOKS = ["tests.outbox.test_outbox.record_hook"]
    _HOOK_CALLS.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        timeline_facts_recorded([3, 1, 3])
    assert _HOOK_CALLS == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert _HOOK_CALLS == [[1, 3]]
    timeline_facts_recorded([])  # no ids: no call
    assert _HOOK_CALLS == [[1, 3]]


_HOOK_CALLS: list[list[int]] = []


def record_hook(ids: list[int]) -> None:
    _HOOK_CALLS.append(ids)


def test_the_sender_may_carry_a_name_and_an_email_may_ask_in_another(
    settings, celery_eager, django_capture_on_commit_callbacks
):
    """DEFAULT_FROM_EMAIL with a display name: the From header keeps it and the Message-ID's
    domain is the address's ("acme.example", not "acme.example>" cut from the header's
    end); an email queued with ``from_name`` (a survey, in the organisation's name) shows
    that name at the same address."""
    settings.DEFAULT_FROM_EMAIL = "Acme CS <cs@acme.example>"
    with django_capture_on_commit_callbacks(execute=True):
        services.email_enqueue(key="k:1", to=["a@example.com"], subject="S", text="T")
        services.email_enqueue(
            key="k:2", to=["a@example.com"], subject="S", text="T", from_name="Acme, Inc."
        )
    plain, named = mail.outbox
    assert plain.from_email == "Acme CS <cs@acme.example>"
    assert plain.extra_headers["Message-ID"].endswith("@acme.example>")
    assert not plain.extra_headers["Message-ID"].endswith(">>")
    # a name with a comma is quoted, as RFC 5322 asks
    assert named.from_email == '"Acme, Inc." <cs@acme.example>'
    assert named.message()["From"] == '"Acme, Inc." <cs@acme.example>'
    # a bare address stays bare
    settings.DEFAULT_FROM_EMAIL = "cs@localhost"
    assert services.sender_address() == ("cs@localhost", "localhost")
    with pytest.raises(ValidationError) as refused:
        services.email_enqueue(key="k:3", to=["a@example.com"], subject="S", text="T",
                               from_name="A\nBcc: x@example.com")  # fmt: skip
    assert refused.value.message_dict == {"from_name": ["The sender's name must be one line."]}
