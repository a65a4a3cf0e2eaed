"""Which CTAs get the room under an owner's cap and which wait, and in what order the waiting
ones move in: by urgency (the due date, a renewal's counted back from the contract end),
then the account's priority points, then ARR; the pending list says so. Through the
evaluation, the CTA page's close form and the CTA list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import utc
from metrics.models import AccountStanding
from playbooks import services
from playbooks.models import Cta, CtaStatus
from playbooks.starters import STARTERS
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta

# days to the contract end -> (priority points, ARR) of the account's standing
BOOK = {
    7: (20, 10_000),
    10: (30, 20_000),
    16: (10, 1_000),
    37: (50, 90_000),  # red, high ARR
    44: (10, 50_000),  # as many points as the 16-day one, more ARR
    64: (90, 5_000),  # the most points, but due weeks later
    77: (0, 5_000),
}


@pytest.fixture
def renewals(csm, settings):
    """The starter renewal playbook (90 days out, steps at days 7, 30 and 45 of that
    window) for one CSM renewing the accounts of ``BOOK``, with a cap of 2."""
    settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM = 2
    playbook = services.playbook_create(config=STARTERS["renewal-prep"])
    today = utc.today()
    accounts = {}
    for days, (points, arr) in BOOK.items():
        account = AccountFactory(owner=csm, name=f"Renews in {days}")
        ContractFactory(account=account, start_date=today - DAYS(300), end_date=today + DAYS(days))
        AccountStanding.objects.create(
            account=account, day=today, priority=points, arr=Decimal(arr)
        )
        accounts[days] = account
    services.playbooks_evaluate(as_of=today, playbooks=[playbook])
    return {days: Cta.objects.get(account=a) for days, a in accounts.items()}


def _status(renewals):
    return {d: Cta.objects.get(pk=c.pk).status for d, c in renewals.items()}


def test_a_renewal_cta_is_due_with_its_last_step_counted_back_from_the_contract_end(
    renewals,
):
    today = utc.today()
    end_of = lambda day: dt.datetime.combine(day + DAYS(1), dt.time(), tzinfo=dt.UTC)  # noqa: E731
    # the proposal is due 45 days before the end: past for the 37-day one (so today),
    # 19 days on for the 64-day one, 32 for the 77-day one: no two share a due date by
    # accident of the moment they opened
    assert renewals[37].due_at == end_of(today)
    assert renewals[64].due_at == end_of(today + DAYS(19))
    assert renewals[77].due_at == end_of(today + DAYS(32))
    for cta in renewals.values():
        last = cta.steps.order_by("position").last()
        assert cta.due_at == end_of(last.due_on)


def test_the_room_under_the_cap_goes_by_due_date_then_priority_points(renewals):
    # due today (renewing within 45 days): 37 (50 points) and 10 (30) take the 2 places;
    # 64 has the most points but is due in 19 days: it waits
    open_now = {d for d, s in _status(renewals).items() if s == CtaStatus.OPEN}
    assert open_now == {37, 10}


def test_closing_a_cta_promotes_the_most_urgent_waiting_one(
    client, csm, renewals, django_capture_on_commit_callbacks
):
    client.force_login(csm)
    promoted = []
    for closing in (37, 10, 7, 44, 16):
        with django_capture_on_commit_callbacks(execute=True):
            r = client.post(
                reverse("playbooks:cta-status", args=[renewals[closing].pk]),
                {"status": "done", "skip_open_steps": "1"},
            )
        assert r.status_code == 302
        status = _status(renewals)
        promoted += [
            d
            for d, s in status.items()
            if s == CtaStatus.OPEN and d not in promoted and d not in (37, 10)
        ]
    # 7 (20 points), then 44 and 16 (10 points each: the higher ARR first), then 64 (due
    # in 19 days), then 77 (in 32): never the 77-day renewal before the 7-day one
    assert promoted == [7, 44, 16, 64, 77]


def test_a_promoted_renewal_keeps_its_schedule_and_none_of_its_steps_is_due_before_today(
    csm, renewals, settings
):
    settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM = 10  # room for every waiting one
    waiting = renewals[64]
    steps_before = list(waiting.steps.order_by("position").values_list("due_on", flat=True))
    later = timezone.now() + DAYS(days=3)
    Cta.objects.filter(status=CtaStatus.OPEN).update(status=CtaStatus.DONE, closed_at=later)
    assert services.ctas_promote_pending(now=later) == 5
    waiting.refresh_from_db()
    assert waiting.status == CtaStatus.OPEN
    steps = list(waiting.steps.order_by("position").values_list("due_on", flat=True))
    day = later.date()
    assert steps == [max(d, day) for d in steps_before] and steps[0] == day
    assert waiting.due_at == dt.datetime.combine(steps[-1] + DAYS(1), dt.time(), tzinfo=dt.UTC)


def test_the_pending_list_is_in_promotion_order_and_says_so(client, admin_user, renewals):
    client.force_login(admin_user)
    body = client.get(reverse("playbooks:cta-list"), {"status": "pending"}).content.decode()
    assert "waiting: promoted soonest due first, then by the account&#x27;s priority points" in (
        body
    )
    rows = [body.index(f'id="cta-{renewals[d].pk}"') for d in (7, 44, 16, 64, 77)]
    assert rows == sorted(rows)
    for d in (37, 10):  # open, not in the pending list
        assert f'id="cta-{renewals[d].pk}"' not in body
    page = client.get(reverse("playbooks:cta-detail", args=[renewals[77].pk])).content.decode()
    assert "Waiting:" in page and "promoted soonest due first" in page
