"""The owner's email of new CTAs: one per CTA, or one listing them when a run opens more
than ``OPENED_MAIL_SINGLE`` for the same owner at once (a night's evaluation)."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts import utc
from playbooks import services
from playbooks.models import Cta
from tests.factories import AccountFactory, TicketFactory, UserFactory

from .helpers import at, make_playbook

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


def _escalated_accounts(owner, n: int, day: dt.date) -> list:
    accounts = []
    for i in range(n):
        account = AccountFactory(owner=owner, name=f"{owner.email.split('@')[0]} {i}")
        TicketFactory(account=account, opened_at=at(day - DAYS(1)), escalated=True)
        accounts.append(account)
    return accounts


def test_many_new_ctas_for_one_owner_come_in_one_email_and_a_few_one_by_one(
    day, celery_eager, django_capture_on_commit_callbacks, mailoutbox, settings
):
    settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM = 1000
    busy, quiet = UserFactory(), UserFactory()
    _escalated_accounts(busy, services.OPENED_MAIL_SINGLE + 2, day)  # 5: one email
    _escalated_accounts(quiet, services.OPENED_MAIL_SINGLE, day)  # 3: three emails
    make_playbook("ticket_escalated", email_owner=True)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.playbooks_evaluate(as_of=day)["opened"] == 8

    to_busy = [m for m in mailoutbox if m.to == [busy.email]]
    to_quiet = [m for m in mailoutbox if m.to == [quiet.email]]
    assert len(to_busy) == 1 and len(to_quiet) == 3
    (digest,) = to_busy
    assert digest.subject == "5 new CTAs for you"
    for cta in Cta.objects.filter(owner=busy):
        assert f"{cta.title} — {cta.account.name}: {cta.evidence}" in digest.body
        assert f"/ctas/{cta.pk}/" in digest.body
        # due with its last step L, stored as 00:00 UTC of L + 1: the email says "by L"
        assert cta.due_at.time() == dt.time() and cta.due_at.tzinfo == dt.UTC
        assert f"Due by {utc.day_text(cta.due_at.date() - DAYS(1))}." in digest.body
    assert "?status=active&mine=1" in digest.body
    assert sorted(m.subject for m in to_quiet) == sorted(
        f"New CTA: {c.title} ({c.account.name})" for c in Cta.objects.filter(owner=quiet)
    )

    # a second run opens nothing and sends nothing more
    with django_capture_on_commit_callbacks(execute=True):
        assert services.playbooks_evaluate(as_of=day)["opened"] == 0
    assert len(mailoutbox) == 4
