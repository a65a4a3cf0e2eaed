"""Celery tasks of the surveys app: thin, each calls one service, each run by beat
(``config/celery.py``). Emails leave through the outbox, whose keys make every send once. A
playbook step that sends a survey is the playbooks' own task
(``playbooks.tasks.start_step_surveys``, calling ``services.campaign_start_for_account``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from . import services

log = logging.getLogger(__name__)

# every task here: acknowledged after it ran, retried with backoff when the database blips
RETRYING = {
    "ignore_result": True,
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**RETRYING)
def send_due_campaigns() -> None:
    """Every minute: scheduled campaigns whose send time came, then event campaigns."""
    sent = services.campaigns_send_due()
    issued = services.event_campaigns_run()
    if sent or any(issued.values()):
        log.info("survey sends: scheduled %s, events %s", sent, issued)


@shared_task(**RETRYING)
def send_survey_reminders() -> None:
    """Hourly: one reminder to non-responders after the campaign's N days."""
    services.invitation_reminders_send()


@shared_task(**RETRYING)
def announce_answers() -> None:
    """Every 5 seconds: the answers recorded since the last run, announced in one batch to
    the playbooks (an unhappy answer's CTA) and the health recompute."""
    announced = services.answers_announce()
    if announced:
        log.info("survey answers announced: %s", announced)
