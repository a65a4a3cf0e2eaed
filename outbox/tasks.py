"""Celery tasks of the outbox: thin, by id."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=True, acks_late=True)
def deliver_message(message_id: int) -> None:
    """One message, right after the transaction that queued it committed. A failed attempt
    is left for the sweeper, which retries it when its backoff has passed."""
    services.message_deliver(message_id=message_id)


@shared_task(ignore_result=True, acks_late=True)
def deliver_messages(message_ids: list[int]) -> None:
    """Messages queued together, one after the other; each is claimed on its own, so a
    task run twice (a worker lost mid-way) sends none of them twice."""
    for message_id in message_ids:
        services.message_deliver(message_id=message_id)


@shared_task(ignore_result=True)
def deliver_due_messages() -> None:
    """Sweeper (every minute): task calls kept while the broker was away, then outbox
    retries and messages whose enqueue never reached the broker."""
    services.deferred_tasks_send()
    services.messages_deliver_due()
