"""Celery tasks of the playbooks app: thin, ids and JSON scalars in, a service call.

The event path: ``timeline_facts_recorded`` is named in ``settings.TIMELINE_FACT_HOOKS``;
``accounts.services.timeline_facts_recorded`` calls it on commit with the ids of new facts
(a survey answer, an escalated ticket, a health band change …). It sends one
``evaluate_timeline_facts`` task per chunk of ids, which evaluates the playbooks whose
trigger reacts to those fact kinds (``rules.EVENT_KINDS``) for those accounts only: a worker
opens the CTA within seconds instead of the next night. The nightly evaluation is the
sweeper: it sees the same facts (its window covers them), and the one-open-CTA constraint
makes the two paths agree whichever runs first."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import shared_task
from django.db import OperationalError

from accounts import utc
from accounts.models import TimelineEntry

from . import rules, services

logger = logging.getLogger(__name__)

CHUNK = 1000  # fact ids per task
RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),  # the database may be back in a moment
    "retry_backoff": True,
    "max_retries": 5,
}


def timeline_facts_recorded(entry_ids: Iterable[int]) -> None:
    """The TIMELINE_FACT_HOOKS entry (called after commit): one task per chunk of ids."""
    ids = sorted(set(entry_ids))
    for start in range(0, len(ids), CHUNK):
        evaluate_timeline_facts.delay(ids[start : start + CHUNK])


@shared_task(ignore_result=True, **RETRY)
def evaluate_timeline_facts(entry_ids: list[int]) -> dict | None:
    """Evaluate the event-like triggers for the accounts of these facts, as of today, and
    the success conditions that react to such facts (a recorded first value closes the
    account's first-value CTA)."""
    kinds = [*rules.EVENT_KINDS, *rules.SUCCESS_EVENT_KINDS]
    rows = list(
        TimelineEntry.objects.filter(pk__in=entry_ids, kind__in=kinds)
        .values_list("account_id", "kind")
        .distinct()
    )
    if not rows:
        return None
    today = utc.today()
    result = None
    trigger_rows = [(a, kind) for a, kind in rows if kind in rules.EVENT_KINDS]
    if trigger_rows:
        triggers = {rules.EVENT_KINDS[kind] for _, kind in trigger_rows}
        accounts = sorted({account_id for account_id, _ in trigger_rows})
        result = services.playbooks_evaluate(
            as_of=today, account_ids=accounts, triggers=triggers, tell_open=True
        )
        logger.info(
            "playbooks: %d fact(s) of %d account(s): %s", len(trigger_rows), len(accounts), result
        )
    success_rows = [(a, kind) for a, kind in rows if kind in rules.SUCCESS_EVENT_KINDS]
    if success_rows:
        outcomes = services.cta_successes_evaluate(
            as_of=today,
            account_ids={a for a, _ in success_rows},
            successes=set().union(*(rules.SUCCESS_EVENT_KINDS[k] for _, k in success_rows)),
        )
        logger.info("playbooks: %d success fact(s): %s", len(success_rows), outcomes)
        result = {**(result or {}), "outcomes": outcomes}
    return result


@shared_task(ignore_result=True, **RETRY)
def escalate_overdue_ctas() -> int:
    """Every 15 minutes: overdue CTAs escalate to the owner's manager (once each)."""
    return services.ctas_escalate_overdue()


@shared_task(ignore_result=True, **RETRY)
def promote_pending_ctas() -> int:
    """Pending CTAs move into owners' queues where there is room under the cap."""
    return services.ctas_promote_pending()


@shared_task(ignore_result=True, **RETRY)
def start_step_surveys(pairs: list[list[int]]) -> None:
    """The survey steps of CTAs just opened, [step id, campaign id] each: the campaign
    starts for the CTA's account (once per CTA, however often this runs). A step that fails
    for its own reasons (a stakeholder's address the mail refuses …) is logged and left to
    do, and the others still run; a lost database connection retries the whole task."""
    failed = 0
    for step_id, campaign_id in pairs:
        try:
            note = services.cta_step_survey_start(step_id=step_id, campaign_id=campaign_id)
        except RETRY["autoretry_for"]:
            raise
        except Exception:
            failed += 1
            logger.exception("playbooks: step %d: survey %d not started", step_id, campaign_id)
            continue
        if note:
            logger.info("playbooks: step %d: %s", step_id, note)
    if failed:
        logger.warning("playbooks: %d of %d survey steps failed", failed, len(pairs))
