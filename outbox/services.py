"""Writes and delivery of the outbox (see ``models.Message`` for why it exists).

    email_enqueue(key=..., to=[...], subject=..., text=..., html=..., source=..., headers={...})
    webhook_enqueue(key=..., url=..., body={...}, secret=..., source=...)
    messages_enqueue([email_message(...), webhook_message(...), ...])  # many at once

All are idempotent on ``key``: a second call returns the first call's row (or, for
``messages_enqueue``, leaves that message out of what it returns). Delivery is
enqueued after the surrounding transaction commits; ``messages_deliver_due`` (the sweeper,
every minute) picks up whatever was never enqueued (the broker was down) or waits for a retry.

Delivery guarantees: a row is claimed by a conditional UPDATE before it is sent, so two
workers (or a task run twice) never both send it. A worker killed *after* sending and before
recording it leaves the claim to expire and the message is sent again: at least once, never
concurrently. Emails carry a Message-ID and webhooks an ``X-OpenCS-Delivery`` header derived
from the key, so a receiver can drop that rare repeat."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from email.utils import formataddr, parseaddr
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import destinations, signing
from .models import DeferredTask, Message

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 120  # a claim outlives any single send (the webhook timeout is 5 s)
BACKOFF_BASE = 30  # seconds before the 2nd attempt; doubles each time
BACKOFF_MAX = 60 * 60
SWEEP_LIMIT = 500  # messages one sweep delivers; the next sweep takes the rest
HEADER_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,75}")  # an email header's name
# headers the email itself sets: a caller's would be a second, conflicting line
OWN_HEADERS = frozenset(
    {"to", "from", "cc", "bcc", "subject", "message-id", "date", "content-type",
     "content-transfer-encoding", "mime-version", "reply-to"}
)  # fmt: skip


def email_enqueue(
    *,
    key: str,
    to: list[str],
    subject: str,
    text: str,
    html: str = "",
    source: str = "",
    attachments: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    from_name: str = "",
) -> Message:
    """Queue one email (text, optionally with an HTML alternative) to ``to``. Text
    attachments (a CSV report): ``[{"filename", "content", "mimetype"}]``; extra header lines
    (``{"List-Unsubscribe": "<https://…>"}``): ``headers``; ``from_name``: the name shown
    as the sender, at ``DEFAULT_FROM_EMAIL``'s address (``sender_address``)."""
    return _enqueue(
        email_message(
            key=key,
            to=to,
            subject=subject,
            text=text,
            html=html,
            source=source,
            attachments=attachments,
            headers=headers,
            from_name=from_name,
        )  # fmt: skip
    )


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The header lines of an email a person can stop: ``url`` is the page that stops it,
    and ``List-Unsubscribe-Post`` (RFC 8058) lets the mail program's own button stop it with
    one POST of ``List-Unsubscribe=One-Click`` there, without a session."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def email_message(
    *,
    key: str,
    to: list[str],
    subject: str,
    text: str,
    html: str = "",
    source: str = "",
    attachments: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    from_name: str = "",
) -> Message:
    """The unsaved message ``email_enqueue`` queues (checked), for ``messages_enqueue``."""
    errors: dict[str, list[str]] = {}
    if not to:
        errors["to"] = ["At least one recipient is needed."]
    for address in to:
        try:
            validate_email(address)
        except ValidationError:
            errors.setdefault("to", []).append(f"{address!r} is not an email address.")
    if not subject.strip():
        errors["subject"] = ["The subject is empty."]
    if "\n" in subject or "\r" in subject:
        errors["subject"] = ["The subject must be one line."]
    for name, value in (headers or {}).items():
        if not HEADER_NAME_RE.fullmatch(str(name)) or name.lower() in OWN_HEADERS:
            errors.setdefault("headers", []).append(f"{name!r} is not a header this can add.")
        elif not isinstance(value, str) or "\n" in value or "\r" in value:
            errors.setdefault("headers", []).append(f"{name}: the value must be one line of text.")
    if "\n" in from_name or "\r" in from_name:
        errors["from_name"] = ["The sender's name must be one line."]
    if errors:
        raise ValidationError(errors)
    payload = {"to": list(to), "subject": subject, "text": text, "html": html}
    if headers:
        payload["headers"] = dict(headers)
    if from_name.strip():
        payload["from_name"] = from_name.strip()
    if attachments:
        payload["attachments"] = [
            {"filename": a["filename"], "content": a["content"], "mimetype": a["mimetype"]}
            for a in attachments
        ]
    return _message(kind=Message.Kind.EMAIL, key=key, payload=payload, source=source)


def webhook_enqueue(
    *, key: str, url: str, body: dict[str, Any], secret: str = "", source: str = ""
) -> Message:
    """Queue one JSON POST to ``url``; signed when a secret is given (``signing``)."""
    return _enqueue(webhook_message(key=key, url=url, body=body, secret=secret, source=source))


def webhook_message(
    *, key: str, url: str, body: dict[str, Any], secret: str = "", source: str = ""
) -> Message:
    """The unsaved message ``webhook_enqueue`` queues (checked), for ``messages_enqueue``."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError({"url": [f"{url!r} is not an http(s) URL."]}) from None
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"body": [f"The body is not JSON-serialisable: {exc}"]}) from None
    payload = {"url": url, "body": body}
    return _message(
        kind=Message.Kind.WEBHOOK, key=key, payload=payload, source=source, secret=secret
    )


def _message(*, kind: str, key: str, payload: dict, source: str, secret: str = "") -> Message:
    if not key or len(key) > 200:
        raise ValidationError({"key": ["A key of 1 to 200 characters is needed."]})
    return Message(
        key=key,
        kind=kind,
        payload=payload,
        source=source[:100],
        secret=secret,
        max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
        next_attempt_at=timezone.now(),
    )


DELIVER_CHUNK = 50  # messages per delivery task when many are queued at once


def _deliver_on_commit(messages: Sequence[Message]) -> None:
    """Send the delivery tasks of ``messages`` (saved: they have ids) when the surrounding
    transaction commits (right away outside one; never after a rollback): ``deliver_message``
    for a single message, else ``deliver_messages`` for each ``DELIVER_CHUNK`` of them.

    Only ``messages_enqueue`` hands over more than one: ``email_enqueue`` and
    ``webhook_enqueue`` cost a task per message. A survey round queues its invitations
    through ``messages_enqueue`` (``surveys.mail.invitation_emails``, 1,000 at a time), so
    10,000 invitations are 200 tasks, not 10,000. A task that cannot reach the broker is
    kept as a ``DeferredTask`` (``task_enqueue``); the sweeper delivers due messages anyway."""
    from .tasks import deliver_message, deliver_messages  # tasks import this module

    if len(messages) == 1:
        transaction.on_commit(partial(task_enqueue, deliver_message, args=[messages[0].pk]))
        return
    for start in range(0, len(messages), DELIVER_CHUNK):
        ids = [m.pk for m in messages[start : start + DELIVER_CHUNK]]
        transaction.on_commit(partial(task_enqueue, deliver_messages, args=[ids]))


def _enqueue(new: Message) -> Message:
    fields = ("kind", "payload", "source", "secret", "max_attempts", "next_attempt_at")
    message, created = Message.objects.get_or_create(
        key=new.key, defaults={f: getattr(new, f) for f in fields}
    )
    if created:
        _deliver_on_commit([message])
    return message


def messages_enqueue(messages: Sequence[Message]) -> list[Message]:
    """Queue many messages (built by ``email_message`` / ``webhook_message``) at once, each
    idempotent on its key like ``email_enqueue``: two queries whatever their number (the
    keys there already, one insert). Returns the messages queued by this call."""
    fresh: dict[str, Message] = {}
    for message in messages:
        fresh.setdefault(message.key, message)
    if not fresh:
        return []
    there = set(Message.objects.filter(key__in=list(fresh)).values_list("key", flat=True))
    new = [m for key, m in fresh.items() if key not in there]
    if not new:
        return []
    try:
        with transaction.atomic():
            created = Message.objects.bulk_create(new)
    except IntegrityError:  # a concurrent call queued some of these meanwhile: one by one
        created = []
        for message in new:
            message.pk = None
            try:
                with transaction.atomic():
                    message.save(force_insert=True)
            except IntegrityError:
                continue
            created.append(message)
    _deliver_on_commit(created)
    return created


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError as KombuOperationalError

    errors: list[type[BaseException]] = [KombuOperationalError, ConnectionError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError

        errors.append(RedisConnectionError)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(errors)


def task_enqueue(task: Any, *, args: Sequence[Any] = (), countdown: float | None = None) -> bool:
    """Send a Celery task, or, when the broker cannot be reached, keep the call as a
    ``DeferredTask`` row that the sweeper sends once the broker is back. Returns True when
    it went to the broker (or ran, in eager mode), False when it was deferred.

    Only broker errors are caught: in eager mode the task runs here and its own errors
    propagate as they always do. A deferred call loses its countdown (it was a debounce;
    by the time the broker is back the wait is over)."""
    try:
        task.apply_async(tuple(args), countdown=countdown)
        return True
    except _broker_errors() as exc:
        logger.warning("broker unreachable, %s%s deferred: %s", task.name, tuple(args), exc)
        DeferredTask.objects.create(
            name=task.name, args=list(args), last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return False


def deferred_tasks_send(*, limit: int = SWEEP_LIMIT) -> int:
    """Send the task calls kept while the broker was away, oldest first; each row is
    deleted once its call reached the broker. Returns how many were sent."""
    sent = 0
    for deferred in DeferredTask.objects.order_by("id")[:limit]:
        try:
            current_app.send_task(deferred.name, args=deferred.args, kwargs=deferred.kwargs)
        except _broker_errors() as exc:
            DeferredTask.objects.filter(pk=deferred.pk).update(
                attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            break  # still away: the next sweep tries again
        DeferredTask.objects.filter(pk=deferred.pk).delete()
        sent += 1
    return sent


def backoff(attempts: int) -> dt.timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 30 s, 1, 2, 4 … min, ≤ 1 h."""
    return dt.timedelta(seconds=min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1)))


def _claimable(now: dt.datetime) -> Q:
    due = Q(status=Message.Status.PENDING, next_attempt_at__lte=now)
    abandoned = Q(status=Message.Status.SENDING, claimed_until__lt=now)
    return due | abandoned


def message_deliver(*, message_id: int, now: dt.datetime | None = None) -> Message | None:
    """Claim the message if it is due, send it, record the outcome.

    Returns the message, or None when it was not claimable (already sent, failed for good,
    not due yet, or claimed by another worker)."""
    now = now or timezone.now()
    claimed = Message.objects.filter(_claimable(now), pk=message_id).update(
        status=Message.Status.SENDING,
        claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    if not claimed:
        return None
    message = Message.objects.get(pk=message_id)
    try:
        SENDERS[message.kind](message)
    except Exception as exc:  # noqa: BLE001 - any failure of the far side is a failed attempt
        error = f"{type(exc).__name__}: {exc}"[:2000]
        # a refused destination stays refused: failed at once, not retried into the wall
        if message.attempts >= message.max_attempts or isinstance(
            exc, destinations.DestinationRefused
        ):
            message.status = Message.Status.FAILED
            logger.warning("outbox %s failed for good: %s", message.key, error)
        else:
            message.status = Message.Status.PENDING
            message.next_attempt_at = timezone.now() + backoff(message.attempts)
        message.last_error = error
        message.claimed_until = None
        message.save(
            update_fields=["status", "next_attempt_at", "last_error", "claimed_until", "updated_at"]
        )
        return message
    message.status = Message.Status.SENT
    message.sent_at = timezone.now()
    message.claimed_until = None
    message.last_error = ""
    message.save(update_fields=["status", "sent_at", "claimed_until", "last_error", "updated_at"])
    return message


def messages_deliver_due(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """The sweeper: deliver every message that is due (or whose claim expired), oldest
    first, at most ``limit``. Returns how many were sent."""
    now = now or timezone.now()
    ids = list(
        Message.objects.filter(_claimable(now))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    sent = 0
    for message_id in ids:
        message = message_deliver(message_id=message_id, now=now)
        sent += bool(message and message.status == Message.Status.SENT)
    return sent


def message_retry(*, message: Message) -> Message:
    """An admin's "try again" on a failed message: one more round of attempts."""
    Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.PENDING,
        next_attempt_at=timezone.now(),
        max_attempts=F("attempts") + settings.OUTBOX_MAX_ATTEMPTS,
    )
    message.refresh_from_db()
    return message


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def sender_address(from_name: str = "") -> tuple[str, str]:
    """The From header of an email and the domain of its Message-ID: ``DEFAULT_FROM_EMAIL``
    (an address, or a name and an address: "Acme CS <cs@acme.example>"), its name replaced
    by ``from_name`` when one is given (a survey asks in the name of the organisation:
    ``SURVEY_SENDER_NAME``). The domain is the address's, not the header's last characters
    ("acme.example", not "acme.example>")."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    address = address or settings.DEFAULT_FROM_EMAIL
    name = from_name or name
    domain = address.rpartition("@")[2] or "localhost"
    return (formataddr((name, address)) if name else address), domain


def _send_email(message: Message) -> None:
    p = message.payload
    from_email, domain = sender_address(p.get("from_name", ""))
    email = EmailMultiAlternatives(
        subject=p["subject"],
        body=p["text"],
        from_email=from_email,
        to=p["to"],
        headers={
            **p.get("headers", {}),
            "Message-ID": f"<{_key_digest(message.key)}@{domain}>",
        },
    )
    if p.get("html"):
        email.attach_alternative(p["html"], "text/html")
    for a in p.get("attachments", ()):
        email.attach(a["filename"], a["content"], a["mimetype"])
    email.send(fail_silently=False)


def _send_webhook(message: Message) -> None:
    body = json.dumps(message.payload["body"], separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "opencs-outbox/1",
        signing.TIMESTAMP_HEADER: timestamp,
        signing.DELIVERY_HEADER: _key_digest(message.key),
    }
    if message.secret:
        headers[signing.SIGNATURE_HEADER] = signing.signature(message.secret, timestamp, body)
    # the destination is checked here, on every attempt: the address may have been saved
    # before the check existed, or its name may resolve elsewhere now (``destinations``)
    status = destinations.webhook_post(
        message.payload["url"], body=body, headers=headers,
        timeout=settings.OUTBOX_WEBHOOK_TIMEOUT,
    )  # fmt: skip
    if 300 <= status < 400:
        raise RuntimeError(f"the target answered HTTP {status} (redirects are not followed)")
    if not 200 <= status < 300:
        raise RuntimeError(f"the target answered HTTP {status}")


SENDERS: dict[str, Callable[[Message], None]] = {
    Message.Kind.EMAIL: _send_email,
    Message.Kind.WEBHOOK: _send_webhook,
}
