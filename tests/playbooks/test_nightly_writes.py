"""The writes of a busy night (outcomes recorded and CTAs closed, pending CTAs promoted,
overdue ones escalated, new ones opened with their emails) take a fixed number of queries,
whatever the number of CTAs; a CTA changed by hand since the night read it keeps what it has."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Ticket, TimelineEntry
from outbox import services as outbox
from outbox.models import Message
from playbooks import services
from playbooks.models import Cta, CtaStatus, Notification, Outcome, Playbook
from tests.factories import AccountFactory, TicketFactory, UserFactory

from .helpers import activity, at, make_playbook

pytestmark = pytest.mark.django_db
DAYS = dt.timedelta


def _busy_night(day: dt.date, n: int) -> dict:
    """``n`` CTAs of each kind of write, under playbooks of their own (the playbooks of an
    earlier call are switched off and its tickets solved first, its CTAs are settled); returns the
    night's counts and its number of queries."""
    Playbook.objects.update(enabled=False)
    Ticket.objects.update(status="solved", resolved_at=at(day - DAYS(1)))
    csm = UserFactory(manager=UserFactory())
    # disabled: they only hold the CTAs opened by hand below (outcomes, pending)
    touched = make_playbook("ticket_escalated", success="touched", success_days=7, enabled=False)
    waiting = make_playbook("ticket_escalated", priority="low", email_owner=True, enabled=False)
    make_playbook("ticket_escalated", priority="medium", email_owner=True)  # opens tonight

    def opened(playbook, as_of):
        account = AccountFactory(owner=csm)
        return services.cta_open(playbook=playbook, account=account, evidence="x", as_of=as_of)

    for _ in range(n):
        won = opened(touched, day - DAYS(3))
        activity(won.account, at(day - DAYS(1)))  # touched after opening: success, closed
        lost = opened(touched, day - DAYS(9))  # deadline day - 2 passed: failure, stays open
        Cta.objects.filter(pk=lost.pk).update(due_at=timezone.now() - DAYS(hours=1))  # overdue
        pending = opened(waiting, day)
        Cta.objects.filter(pk=pending.pk).update(status=CtaStatus.PENDING)
        Message.objects.filter(key__startswith=f"cta:{pending.pk}:").delete()  # none if pending
        TicketFactory(account=AccountFactory(owner=csm), opened_at=at(day - DAYS(1)),
                      escalated=True)  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        counts = services.playbooks_evaluate_all(as_of=day)
    return {**counts, "queries": len(queries.captured_queries)}


def test_a_busy_night_takes_the_same_queries_for_2_or_6_ctas_of_each_kind(day, settings):
    settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM = 1000
    small = _busy_night(day, 2)
    big = _busy_night(day, 6)
    for night, n in ((small, 2), (big, 6)):
        assert (night["successes"], night["failures"]) == (n, n), night
        assert (night["promoted"], night["escalated"], night["opened"]) == (n, n, n), night
    assert big["queries"] == small["queries"], (small, big)
    # reads: the playbooks, the CTAs awaiting an outcome and their steps, the facts;
    # outcomes: the staged update and the timeline; opening: open and closed CTAs, managers,
    # owners' load, then one batch (CTAs, steps, timeline, accounts, owners, outbox);
    # promoting and escalating: a read, then one batch each, with their savepoints, and the
    # managers told once in a savepoint of its own; then one refresh of the standings of the
    # accounts whose CTAs changed (10); and in each of the three batches that email someone
    # (opened, promoted, escalated) one read of who turned that kind of email off (3)
    assert small["queries"] <= 68, small
    assert Cta.objects.filter(outcome=Outcome.SUCCESS, status=CtaStatus.DONE).count() == 8
    assert Cta.objects.filter(outcome=Outcome.FAILURE, status=CtaStatus.OPEN).count() == 8
    assert Cta.objects.filter(escalated_at__isnull=False).count() == 8
    # written by raw SQL, read back and compared by the ORM like any other timestamp
    now = timezone.now()
    assert Cta.objects.filter(escalated_at__range=(now - DAYS(hours=1), now)).count() == 8
    assert Cta.objects.filter(outcome_at__range=(now - DAYS(hours=1), now)).count() == 16
    # moved into the queue today: due with their last step, 7 days on, by the end of that day
    promoted = Cta.objects.filter(priority="low", status=CtaStatus.OPEN)
    last_step_ends = dt.datetime.combine(now.date() + DAYS(8), dt.time(), tzinfo=dt.UTC)
    assert promoted.filter(due_at=last_step_ends).count() == 8
    # each night's escalations (2, then 6) go to one manager: one notification and one email
    # per night, not one per CTA
    assert Notification.objects.count() == 2
    # emails to the owner: the first night's 2 promoted and 2 newly opened CTAs one by one
    # (4, up to OPENED_MAIL_SINGLE each); the second night's 6 promoted in one email and its
    # 6 opened in another (2); and the manager's escalation email of each night (2)
    assert services.OPENED_MAIL_SINGLE < 6
    assert Message.objects.count() == 4 + 2 + 2
    kinds = TimelineEntry.objects.filter(key__startswith="cta:").values_list("kind", flat=True)
    assert sorted(set(kinds)) == ["cta_escalated", "cta_opened", "cta_outcome"]
    # a second night has nothing left to write
    again = services.playbooks_evaluate_all(as_of=day)
    assert (again["successes"], again["failures"], again["promoted"], again["escalated"]) == (
        0, 0, 0, 0,
    )  # fmt: skip


def test_an_outcome_never_overwrites_a_cta_changed_since_it_was_read(day, csm):
    playbook = make_playbook("ticket_escalated", success="touched", success_days=7)
    ctas = [
        services.cta_open(
            playbook=playbook, account=AccountFactory(owner=csm), evidence="x", as_of=day
        )
        for _ in range(4)
    ]
    # what the night decided from what it read: a success for each, closing it
    decided = [
        services._Decided(
            c.pk, c.account_id, c.playbook_id, c.title, Outcome.SUCCESS, "ok", "Auto"
        )  # fmt: skip
        for c in ctas
    ]
    cancelled, by_hand, done, untouched = ctas  # what happened meanwhile:
    services.cta_close(cta=cancelled, status=CtaStatus.CANCELLED, note="duplicate")
    Cta.objects.filter(pk=by_hand.pk).update(outcome=Outcome.FAILURE, outcome_detail="by hand")
    services.cta_close(cta=done, status=CtaStatus.DONE, note="plan agreed")
    now = timezone.now()
    assert services._outcomes_write(decided, now=now) == {done.pk, untouched.pk}
    for cta in ctas:
        cta.refresh_from_db()
    # cancelled: no outcome (a cancelled CTA never gets one), the close stays
    assert (cancelled.status, cancelled.close_note) == (CtaStatus.CANCELLED, "duplicate")
    assert cancelled.outcome == ""
    # an outcome recorded by hand stays
    assert (by_hand.outcome, by_hand.outcome_detail) == (Outcome.FAILURE, "by hand")
    assert by_hand.status == CtaStatus.OPEN
    # closed by hand: the outcome is recorded, the close stays the CSM's
    assert (done.outcome, done.close_note) == (Outcome.SUCCESS, "plan agreed")
    assert done.closed_at < now
    assert (untouched.outcome, untouched.status, untouched.close_note) == (
        Outcome.SUCCESS, CtaStatus.DONE, "Auto",
    )  # fmt: skip
    assert untouched.closed_at == untouched.outcome_at == now


def test_messages_enqueue_queues_each_key_once():
    def email(key):
        return outbox.email_message(key=key, to=["a@example.com"], subject="s", text="t")

    first = outbox.messages_enqueue([email("k1"), email("k2"), email("k1")])
    assert sorted(m.key for m in first) == ["k1", "k2"] and all(m.pk for m in first)
    again = outbox.messages_enqueue([email("k2"), email("k3")])
    assert [m.key for m in again] == ["k3"]
    assert Message.objects.count() == 3
    assert outbox.messages_enqueue([]) == []
