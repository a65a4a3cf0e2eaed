from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Stakeholder
from surveys import services
from surveys.models import Campaign, Invitation, Survey
from tests.factories import AccountFactory, StakeholderFactory

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def make_campaign(kind: str = "nps", **fields) -> Campaign:
    survey = Survey.objects.create(
        name=f"{kind} survey",
        kind=kind,
        question="How likely are you to recommend us to a friend or colleague?",
        follow_up=fields.pop("follow_up", "What is the main reason for your score?"),
        language=fields.pop("language", "en"),
        strings=fields.pop("strings", {}),
    )
    defaults = {"name": f"{kind.upper()} Q1", "status": Campaign.Status.ACTIVE}
    defaults.update(fields)
    return Campaign.objects.create(survey=survey, **defaults)


def make_invitation(
    campaign: Campaign, stakeholder: Stakeholder | None = None, *, now=None, **fields
) -> Invitation:
    stakeholder = stakeholder or StakeholderFactory()
    now = now or timezone.now()
    values = {
        "campaign": campaign,
        "stakeholder": stakeholder,
        "account_id": stakeholder.account_id,
        "email": stakeholder.email.lower(),
        "token": services.new_token(),
        "expires_at": now + dt.timedelta(days=30),
        "sent_at": now,
    }
    values.update(fields)
    return Invitation.objects.create(**values)


@pytest.fixture
def account(db):
    return AccountFactory(name="Acme Corp", segment="Enterprise")


@pytest.fixture
def dana(account):
    return StakeholderFactory(account=account, name="Dana Smith", email="Dana@Acme.example")
