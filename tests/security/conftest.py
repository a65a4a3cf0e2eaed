"""Shared by the security tests: one object of each kind in the CSM's book."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from accounts.models import (
    Account,
    Activity,
    ApiToken,
    Contract,
    ImportRecord,
    Invoice,
    Milestone,
    Stakeholder,
    Ticket,
)
from playbooks.services import cta_email_token
from reports.models import KpiTarget
from reports.services import unsubscribe_token
from surveys.models import Campaign, Invitation, Survey


@pytest.fixture
def world(admin_user, manager, csm, outsider):
    """One object of each kind, in the CSM's book (so the manager sees it too)."""
    account = Account.objects.create(external_id="A-1", name="Acme", owner=csm)
    objects = {
        "account": account,
        "contract": Contract.objects.create(
            account=account, external_id="C-1", start_date=dt.date(2024, 1, 1), mrr=100
        ),
        "stakeholder": Stakeholder.objects.create(
            account=account, email="dana@acme.example", name="Dana"
        ),
        "ticket": Ticket.objects.create(
            account=account, external_id="T-1", opened_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
        ),
        "invoice": Invoice.objects.create(
            account=account,
            external_id="I-1",
            issued_on=dt.date(2024, 1, 1),
            due_on=dt.date(2024, 1, 31),
            amount=100,
        ),
        "activity": Activity.objects.create(
            account=account,
            kind="note",
            occurred_at=dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
            subject="Kick-off",
        ),
        "milestone": Milestone.objects.create(
            account=account, kind="first_value", reached_on=dt.date(2024, 1, 20)
        ),
        "import_record": ImportRecord.objects.create(
            origin="cli", kind="accounts", user=admin_user, errors=[], per_kind={}
        ),
    }
    from metrics.services import health_model_ensure_default

    objects["health_model"] = health_model_ensure_default()
    _health(account)
    from metrics.models import HealthAssignmentRule

    objects["health_rule"] = HealthAssignmentRule.objects.create(
        model=objects["health_model"], segment="Enterprise"
    )
    from playbooks import services as playbook_services

    objects["playbook"] = playbook_services.playbook_create(
        config={
            "name": "Matrix playbook",
            "trigger": "ticket_escalated",
            "cta_title": "Escalation",
            "cta_type": "risk",
            "priority": "high",
            "steps": [{"title": "Call", "due_days": 0}],
            "owner_rule": "account_csm",
            "success": "steps_done",
            "success_days": 7,
            "cooldown_days": 7,
        }  # fmt: skip
    )
    objects["cta"] = playbook_services.cta_open(
        playbook=objects["playbook"], account=account, evidence="1 open escalated ticket"
    )
    survey = Survey.objects.create(name="NPS", kind="nps", question="Recommend us?")
    objects["campaign"] = Campaign.objects.create(name="NPS", survey=survey, status="active")
    objects["invitation"] = Invitation.objects.create(
        campaign=objects["campaign"],
        stakeholder=objects["stakeholder"],
        account=account,
        email="dana@acme.example",
        token="t" * 43,
        expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
    )
    objects["theme"] = _theme(objects)
    objects["kpi_target"] = KpiTarget.objects.create(
        kpi="nrr",
        scope_kind="owner",
        scope_key=str(csm.pk),
        direction="at_least",
        value=100,
        cadence="weekly",
    )
    objects["api_token"] = ApiToken.issue(user=admin_user, name="Matrix", scope="read")[0]
    objects["digest_link"] = SimpleNamespace(token=unsubscribe_token(csm))
    objects["cta_email_link"] = SimpleNamespace(token=cta_email_token(csm.pk, "opened"))
    users = {"outsider": outsider, "csm": csm, "manager": manager, "admin": admin_user}
    return objects, users


def _theme(objects):
    """A feedback theme holding the ticket's text (voice app)."""
    from voice.models import TextSentiment, Theme, ThemeRun, ThemeText

    ticket = objects["ticket"]
    text = TextSentiment.objects.create(
        source="ticket", source_id=ticket.pk, account=ticket.account, occurred_at=ticket.opened_at,
        text=ticket.subject, score=None,
    )  # fmt: skip
    run = ThemeRun.objects.create(as_of=dt.date(2024, 1, 5), status="succeeded")
    theme = Theme.objects.create(run=run, rank=1, label="export slow", texts=1, quotes=[text.pk])
    ThemeText.objects.create(theme=theme, text=text, account=ticket.account, similarity=1.0)
    return theme


def _health(account):
    """Two weekly health snapshots of the account and its standing, so the health
    endpoints answer with data (and "what changed" has two snapshots to compare)."""
    from metrics.services import health_snapshots_record
    from metrics.standings import account_standings_refresh

    for day in (dt.date(2024, 1, 24), dt.date(2024, 1, 31)):
        health_snapshots_record(as_of=day, account_ids=[account.pk], announce=False)
    account_standings_refresh(account_ids=[account.pk])
