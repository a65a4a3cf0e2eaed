"""Concurrent writes to ONE CTA on PostgreSQL: what users do (tick steps, comment, change
the status, reassign, PATCH through the API) and what the system does (the escalation
sweep, the nightly outcome recording) at the same time lose no update and duplicate
nothing.

Each actor is a thread with its own database connection. Where an interleaving matters it
is forced, not hoped for: the first actor stops right after a chosen query (a Django
``execute_wrapper``) while still inside its transaction; the second actor then runs until it
either finishes or waits on a row lock (seen in ``pg_stat_activity``); then the first goes
on. ``test_the_harness_catches_a_missing_lock`` shows that the same interleaving loses the
close when ``_locked`` takes no row lock, so these tests can fail."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, TimelineEntry
from outbox.models import Message
from playbooks import services
from playbooks.models import Cta, CtaComment, CtaStatus, Notification, Outcome
from tests.factories import AccountFactory

from .helpers import activity, at, make_playbook

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks need PostgreSQL (DATABASE_URL)"
    ),
    pytest.mark.django_db(transaction=True),  # each thread commits on its own connection
]
DAYS = dt.timedelta
WAIT = 30  # seconds: how long a step of the choreography may take before the test gives up


def _in_thread(fn: Callable[[], object], outcome: dict, name: str) -> threading.Thread:
    def run():
        try:
            outcome[name] = fn()
        except BaseException as exc:  # reported by the test
            outcome[name] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def race(first: Callable, second: Callable, *, pause_after: str) -> dict:
    """Run ``first`` until just after its first query matching ``pause_after`` (a regex on
    the SQL), hold it there, run ``second`` until it finishes or waits on a lock, then let
    ``first`` finish. Returns each one's result (or exception) by name."""
    paused, go_on = threading.Event(), threading.Event()
    outcome: dict = {}

    def pausing(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not paused.is_set() and re.search(pause_after, sql):
            paused.set()
            assert go_on.wait(WAIT), "nobody released the first actor"
        return result

    def first_paused():
        with connection.execute_wrapper(pausing):
            return first()

    one = _in_thread(first_paused, outcome, "first")
    assert paused.wait(WAIT), f"the first actor never ran a query matching {pause_after!r}"
    two = _in_thread(second, outcome, "second")
    deadline = time.monotonic() + WAIT
    while two.is_alive() and not _someone_waits_on_a_lock():
        assert time.monotonic() < deadline, "the second actor neither finished nor waited"
        time.sleep(0.01)
    outcome["second_waited"] = two.is_alive()
    go_on.set()
    one.join(WAIT)
    two.join(WAIT)
    assert not one.is_alive() and not two.is_alive()
    return outcome


def together(*actions: Callable[[], object]) -> list:
    """Start every action at the same moment (a barrier), each in its own thread."""
    barrier = threading.Barrier(len(actions))
    outcome: dict = {}
    threads = [
        _in_thread(lambda a=a: (barrier.wait(WAIT), a())[1], outcome, str(i))
        for i, a in enumerate(actions)
    ]
    for t in threads:
        t.join(WAIT * 3)
    return [outcome[str(i)] for i in range(len(actions))]


def _timeline(cta: Cta) -> list[str]:
    return sorted(
        TimelineEntry.objects.filter(key__startswith=f"cta:{cta.pk}:").values_list(
            "kind", flat=True
        )
    )


def _fresh(cta: Cta) -> Cta:
    return Cta.objects.get(pk=cta.pk)


# the read in ``services._locked`` (the CTA with its playbook), with or without FOR UPDATE
LOCKED_READ = r'FROM "playbooks_cta" INNER JOIN "playbooks_playbook"'


@pytest.fixture
def cta(csm):
    """An open CTA with two steps on the CSM's account (the CSM's manager can act on it)."""
    playbook = make_playbook("ticket_escalated", priority="medium")
    return services.cta_open(playbook=playbook, account=AccountFactory(owner=csm), evidence="x")


def _steps(cta: Cta):
    return list(cta.steps.order_by("position"))


# --- users -------------------------------------------------------------------------------------


def test_two_users_ticking_steps_a_comment_and_a_status_change_all_land(cta, csm, manager):
    first, second = _steps(cta)
    results = together(
        lambda: services.cta_step_complete(cta=cta, step=first, user=csm),
        lambda: services.cta_step_complete(cta=cta, step=second, user=manager),
        lambda: services.cta_comment_add(cta=cta, body="Called Dana", user=csm),
        lambda: services.cta_start(cta=cta, user=manager),
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert cta.steps.filter(done_at__isnull=True).count() == 0
    assert {s.done_by_id for s in cta.steps.all()} == {csm.pk, manager.pk}
    assert list(CtaComment.objects.filter(cta=cta).values_list("body", flat=True)) == [
        "Called Dana"
    ]
    assert _fresh(cta).status == CtaStatus.IN_PROGRESS
    # one entry per action; started only if cta_start found the CTA still open
    timeline = _timeline(cta)
    assert timeline.count("cta_step_done") == 2 and timeline.count("cta_comment") == 1
    assert timeline.count("cta_opened") == 1 and timeline.count("cta_started") <= 1


def test_a_step_ticked_while_the_cta_is_closed_does_not_reopen_it(cta, csm, manager):
    """The step holds the row lock; the close waits, then closes what is now in progress."""
    step = _steps(cta)[0]
    outcome = race(
        lambda: services.cta_step_complete(cta=cta, step=step, user=csm),
        lambda: services.cta_close(cta=cta, status=CtaStatus.DONE, note="sorted", user=manager),
        pause_after=LOCKED_READ,
    )
    assert not isinstance(outcome["first"], BaseException), outcome
    assert not isinstance(outcome["second"], BaseException), outcome
    final = _fresh(cta)
    assert (final.status, final.close_note) == (CtaStatus.DONE, "sorted") and final.closed_at
    assert cta.steps.get(pk=step.pk).done_at is not None
    assert _timeline(cta) == ["cta_closed", "cta_opened", "cta_step_done"]
    assert outcome["second_waited"]  # the close queued behind the step's lock


def test_the_harness_catches_a_missing_lock(cta, csm, manager, monkeypatch):
    """The same interleaving with ``_locked`` reading without FOR UPDATE: the close does not
    wait, and the step, resuming with the CTA it read as open, tries to put the closed CTA
    back in progress. Only the database's check (closed_at only when done or cancelled)
    stops it, so the user's tick is lost to an IntegrityError (a 500 through the API). This
    is what the test above would see if someone removed the lock."""
    monkeypatch.setattr(
        services, "_locked", lambda c: Cta.objects.select_related("playbook").get(pk=c.pk)
    )
    step = _steps(cta)[0]
    outcome = race(
        lambda: services.cta_step_complete(cta=cta, step=step, user=csm),
        lambda: services.cta_close(cta=cta, status=CtaStatus.DONE, note="sorted", user=manager),
        pause_after=LOCKED_READ,
    )
    assert not outcome["second_waited"]
    assert isinstance(outcome["first"], IntegrityError), outcome
    assert "cta_closed_only_when_done" in str(outcome["first"])
    assert cta.steps.get(pk=step.pk).done_at is None  # the tick is lost
    assert _timeline(cta) == ["cta_closed", "cta_opened"]


def test_a_reassignment_and_a_close_at_once(cta, csm, manager):
    outcome = race(
        lambda: services.cta_reassign(cta=cta, owner=manager, user=csm),
        lambda: services.cta_close(cta=cta, status=CtaStatus.CANCELLED, note="dup", user=csm),
        pause_after=LOCKED_READ,
    )
    assert not isinstance(outcome["first"], BaseException), outcome
    final = _fresh(cta)
    assert (final.owner_id, final.status, final.close_note) == (
        manager.pk,
        CtaStatus.CANCELLED,
        "dup",
    )
    assert _timeline(cta) == ["cta_closed", "cta_opened", "cta_reassigned"]
    assert outcome["second_waited"]


def _api(user) -> Client:
    _token, key = ApiToken.issue(user=user, name="race", scope=ApiToken.Scope.WRITE)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def test_two_api_patches_at_once(cta, csm, manager):
    """A ticks the first step and comments; B ticks the second and closes. Whoever comes
    second sees the other's work: B after A closes a CTA with both steps done; A after B
    is refused whole (400, the CTA is done) and writes nothing."""
    first, second = _steps(cta)
    url = reverse("playbooks-api:cta-detail", args=[cta.pk])
    a, b = _api(csm), _api(manager)
    outcome = race(
        lambda: a.patch(url, {"steps_done": [first.pk], "comment": "A was here"}, "application/json"),
        lambda: b.patch(url, {"steps_done": [second.pk], "status": "done", "note": "B"}, "application/json"),
        pause_after=LOCKED_READ,
    )  # fmt: skip
    assert (outcome["first"].status_code, outcome["second"].status_code) == (200, 200)
    final = _fresh(cta)
    assert (final.status, final.close_note) == (CtaStatus.DONE, "B")
    assert cta.steps.filter(done_at__isnull=True).count() == 0
    assert CtaComment.objects.filter(cta=cta).count() == 1
    assert _timeline(cta) == [
        "cta_closed", "cta_comment", "cta_opened", "cta_step_done", "cta_step_done",
    ]  # fmt: skip
    assert outcome["second_waited"]
    # the other order: B's close first, then A is refused and leaves no trace
    other = services.cta_open(
        playbook=cta.playbook, account=AccountFactory(owner=csm), evidence="y"
    )
    first, second = _steps(other)
    url = reverse("playbooks-api:cta-detail", args=[other.pk])
    outcome = race(
        lambda: b.patch(url, {"steps_done": [second.pk], "status": "done", "note": "B"}, "application/json"),
        lambda: a.patch(url, {"steps_done": [first.pk], "comment": "A was here"}, "application/json"),
        pause_after=LOCKED_READ,
    )  # fmt: skip
    assert (outcome["first"].status_code, outcome["second"].status_code) == (200, 400)
    assert outcome["second"].json() == {"status": ["the CTA is done"]}
    assert other.steps.get(pk=first.pk).done_at is None
    assert CtaComment.objects.filter(cta=other).count() == 0
    assert _timeline(other) == ["cta_closed", "cta_opened", "cta_step_done"]
    assert outcome["second_waited"]


# --- the system --------------------------------------------------------------------------------


def _overdue(cta: Cta) -> None:
    Cta.objects.filter(pk=cta.pk).update(due_at=timezone.now() - DAYS(hours=1))


def _escalation_mail(cta: Cta):
    return Message.objects.filter(key=f"cta:{cta.pk}:escalated:email")


def test_a_cta_closed_while_the_sweep_reads_it_is_not_escalated(cta, csm, manager):
    """The sweep has read the CTA as overdue; the CSM closes it before the sweep writes."""
    _overdue(cta)
    outcome = race(
        services.ctas_escalate_overdue,
        lambda: services.cta_close(cta=cta, status=CtaStatus.DONE, note="done", user=csm),
        pause_after=r'FROM "playbooks_cta"',
    )
    assert not outcome["second_waited"] and outcome["first"] == 0, outcome
    final = _fresh(cta)
    assert final.status == CtaStatus.DONE and final.escalated_at is None
    assert not Notification.objects.exists() and not _escalation_mail(cta).exists()
    assert _timeline(cta) == ["cta_closed", "cta_opened"]


def test_a_close_that_holds_the_lock_makes_the_sweep_skip_the_cta(cta, csm):
    """The close holds the row lock when the sweep reads and tries to flag the CTA; the
    sweep's conditional UPDATE waits, then sees the CTA closed."""
    _overdue(cta)
    outcome = race(
        lambda: services.cta_close(cta=cta, status=CtaStatus.DONE, note="done", user=csm),
        services.ctas_escalate_overdue,
        pause_after=LOCKED_READ,
    )
    assert outcome["second"] == 0, outcome
    assert _fresh(cta).escalated_at is None and not Notification.objects.exists()
    assert outcome["second_waited"]


def test_a_cta_snoozed_while_the_sweep_reads_it_is_not_escalated(cta, csm):
    _overdue(cta)
    until = timezone.now().date() + DAYS(3)
    outcome = race(
        services.ctas_escalate_overdue,
        lambda: services.cta_snooze(cta=cta, until=until, user=csm),
        pause_after=r'FROM "playbooks_cta"',
    )
    assert outcome["first"] == 0, outcome
    final = _fresh(cta)
    assert final.snoozed_until == until and final.escalated_at is None
    assert not Notification.objects.exists() and not _escalation_mail(cta).exists()


def test_two_sweeps_and_a_comment_at_once_escalate_once(cta, csm, manager):
    _overdue(cta)
    results = together(
        services.ctas_escalate_overdue,
        services.ctas_escalate_overdue,
        lambda: services.cta_comment_add(cta=cta, body="on it", user=csm),
    )
    assert sorted(results[:2]) == [0, 1], results
    assert _fresh(cta).escalated_to == manager
    assert Notification.objects.filter(user=manager).count() == 1
    assert _escalation_mail(cta).count() == 1
    assert _timeline(cta) == ["cta_comment", "cta_escalated", "cta_opened"]


@pytest.fixture
def touched(csm, day):
    """A CTA whose success condition (a CSM touch after opening) is met tonight."""
    playbook = make_playbook("ticket_escalated", success="touched", success_days=7)
    account = AccountFactory(owner=csm)
    cta = services.cta_open(playbook=playbook, account=account, evidence="x", as_of=day - DAYS(3))
    activity(account, at(day - DAYS(1)))
    return cta


AWAITING_QUERY = r'FROM "playbooks_cta" WHERE .*"playbooks_cta"\."outcome" = '


def test_a_close_while_the_outcome_is_recorded_keeps_the_users_close(touched, csm, day):
    """The nightly evaluation has read the CTA as open with its success met; the CSM closes
    it (done, with a note) before the evaluation writes. The outcome is recorded, and the
    CSM's close (time, note) is kept, not replaced by "Closed automatically"."""
    outcome = race(
        lambda: services.playbooks_evaluate_all(as_of=day),
        lambda: services.cta_close(cta=touched, status=CtaStatus.DONE, note="QBR held", user=csm),
        pause_after=AWAITING_QUERY,
    )
    assert not isinstance(outcome["first"], BaseException), outcome
    assert outcome["first"]["successes"] == 1
    final = _fresh(touched)
    assert (final.status, final.close_note, final.outcome) == (
        CtaStatus.DONE,
        "QBR held",
        Outcome.SUCCESS,
    )
    assert final.closed_at == outcome["second"].closed_at
    assert _timeline(touched) == ["cta_closed", "cta_opened", "cta_outcome"]


def test_a_cancel_while_the_outcome_is_recorded_stays_cancelled(touched, csm, day):
    """A cancelled CTA gets no outcome (as when the evaluation runs after the cancel)."""
    outcome = race(
        lambda: services.playbooks_evaluate_all(as_of=day),
        lambda: services.cta_close(cta=touched, status=CtaStatus.CANCELLED, note="dup", user=csm),
        pause_after=AWAITING_QUERY,
    )
    assert not isinstance(outcome["first"], BaseException), outcome
    assert outcome["first"]["successes"] == 0
    final = _fresh(touched)
    assert (final.status, final.close_note, final.outcome) == (CtaStatus.CANCELLED, "dup", "")
    assert _timeline(touched) == ["cta_closed", "cta_opened"]


def test_a_reassignment_while_the_outcome_is_recorded_is_kept(touched, csm, manager, day):
    outcome = race(
        lambda: services.playbooks_evaluate_all(as_of=day),
        lambda: services.cta_reassign(cta=touched, owner=manager, user=csm),
        pause_after=AWAITING_QUERY,
    )
    assert not isinstance(outcome["first"], BaseException), outcome
    final = _fresh(touched)
    assert (final.owner_id, final.status, final.outcome) == (
        manager.pk,
        CtaStatus.DONE,
        Outcome.SUCCESS,
    )
    assert final.close_note.startswith("Closed automatically")
    assert _timeline(touched) == ["cta_opened", "cta_outcome", "cta_reassigned"]
