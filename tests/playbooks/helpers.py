"""Shared builders for the playbook tests: playbooks through the service, rows through the
factories (the same tables the imports write)."""

from __future__ import annotations

import datetime as dt
import uuid

from accounts.models import Activity, TimelineEntry
from metrics import services as metrics_services
from metrics.models import HealthSnapshot
from playbooks import services
from tests.factories import ContractFactory, StakeholderFactory, TicketFactory, failed_invoice


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def make_playbook(trigger: str, params: dict | None = None, **changes):
    config = {
        "name": f"{trigger} {uuid.uuid4().hex[:6]}",
        "trigger": trigger,
        "trigger_params": params or {},
        "cta_title": f"Act on {trigger}",
        "cta_type": "risk",
        "priority": "high",
        "steps": [{"title": "Call", "due_days": 0}, {"title": "Follow up", "due_days": 7}],
        "owner_rule": "account_csm",
        "success": "steps_done",
        "success_params": {},
        "success_days": 30,
        "cooldown_days": 30,
        **changes,
    }
    return services.playbook_create(config=config)


def events(account, day: dt.date, *, n: int, users: int = 1, name: str = "login") -> None:
    """``n`` events on ``day`` by ``users`` distinct users, loaded through the intake (the
    rollups and the first-usage fact are kept, as for any import)."""
    from django.db import transaction

    from accounts.intake import events as intake_events

    rows = []
    for i in range(n):
        when = at(day, 8 + i % 10) + dt.timedelta(seconds=i)
        user = f"u{i % users}"
        key = intake_events.dedup_key(account.pk, user, name, when, None)
        rows.append((account.pk, user, name, when, None, key))
    with transaction.atomic():
        intake_events.events_load(rows)


def snapshot(account, day: dt.date, *, score: float, band: str) -> HealthSnapshot:
    """A health snapshot recorded earlier (the history a rule compares with)."""
    metrics_services.health_model_ensure_default()
    version = metrics_services.health_model_for(account)
    return HealthSnapshot.objects.create(
        account=account, day=day, model_version=version, score=score, band=band,
        computed_score=score, computed_band=band,
    )  # fmt: skip


def red_data(account, day: dt.date) -> None:
    """Data the default health model scores 0 (red) on ``day``: 10 seats and nobody active,
    two open escalations, two overdue invoices with 3 failed payments, no champion."""
    ContractFactory(account=account, start_date=day - dt.timedelta(days=200), quantity=10)
    for _ in range(2):
        TicketFactory(account=account, opened_at=at(day - dt.timedelta(days=3)), escalated=True)
        failed_invoice(account, day)
    StakeholderFactory(account=account, role="user")


def survey_answer(account, day: dt.date, *, score: int = 3, kind: str = "nps") -> TimelineEntry:
    """The fact the surveys app writes for an answer (CONTRACTS.md)."""
    return TimelineEntry.objects.create(
        account=account,
        occurred_at=at(day, 11),
        kind="survey_answer",
        key=f"survey-response:{uuid.uuid4().int % 10**9}",
        title=f"{kind.upper()} {score} from Dana Smith",
        data={
            "response_id": 1, "survey_kind": kind, "score": score, "unhappy": True,
            "stakeholder_id": None, "comment": "too slow",
        },
    )  # fmt: skip


def activity(account, when: dt.datetime) -> Activity:
    return Activity.objects.create(account=account, kind="call", occurred_at=when, subject="QBR")
