"""First answers recorded in batches (surveys.answer_batch): answers that arrive while a
batch is being written are recorded together by the next one statement; each request still
gets its own outcome, and what a batch does not record goes Django's way. A batch is held
in place by locking its invitation's row from another connection, so what queues behind it
is known. PostgreSQL only (elsewhere the lean path, and so batching, is off)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import TimelineEntry
from config import wsgi
from surveys import answer_batch, services
from surveys.models import Invitation, Response

from .conftest import make_campaign, make_invitation
from .conftest import wsgi_post as post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="batches need PostgreSQL"),
]


class Held:
    """The invitation's row locked by another connection: a batch that answers it waits in
    its UPDATE until ``release``."""

    def __init__(self, invitation: Invitation):
        params = connection.get_connection_params()
        self.conn = psycopg.connect(**params)
        self.conn.execute(
            "SELECT 1 FROM surveys_invitation WHERE id = %s FOR UPDATE", [invitation.pk]
        )

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _posting(token: str, score: str, results: list) -> threading.Thread:
    """POST an answer from a thread of its own, as a gunicorn thread would; a request that
    goes Django's way opens that thread's connection, closed when it ends."""

    def answer():
        try:
            results.append(post(f"/s/{token}/", {"score": score}))
        finally:
            connection.close()

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


def _waiting(count: int, deadline: float = 10) -> None:
    """Until ``count`` answers wait for the next batch."""
    end = time.monotonic() + deadline
    while len(answer_batch.answers._waiting) < count:
        assert time.monotonic() < end, "the answers did not queue"
        time.sleep(0.01)


def _blocked_batch(invitation: Invitation, results: list) -> tuple[Held, threading.Thread]:
    """A first batch (one answer to ``invitation``) waiting on the row lock."""
    held = Held(invitation)
    first = _posting(invitation.token, "7", results)
    end = time.monotonic() + 10
    while answer_batch.answers._waiting or answer_batch.answers._thread is None:
        assert time.monotonic() < end, "the first batch did not start"
        time.sleep(0.01)
    time.sleep(0.1)  # in its statement, waiting on the lock
    return held, first


def test_answers_that_arrive_during_a_batch_are_recorded_by_one_statement(dana, django_served):
    campaign = make_campaign("nps")
    blocker, *others = [make_invitation(campaign) for _ in range(5)]
    results: list = []
    held, first = _blocked_batch(blocker, results)
    threads = [_posting(invitation.token, str(k), results) for k, invitation in enumerate(others)]
    _waiting(4)
    held.release()
    for thread in [first, *threads]:
        thread.join(10)
    assert [status for status, _, _ in results] == ["302 Found"] * 5
    assert django_served == []  # all five recorded by the batches
    answers = Response.objects.filter(invitation__in=others)
    assert sorted(answers.values_list("score", flat=True)) == [0, 1, 2, 3]
    # one statement: one created_at for the four (the batch's), another for the first one
    assert answers.values("created_at").distinct().count() == 1
    assert Response.objects.get(invitation=blocker).created_at != answers.first().created_at
    assert TimelineEntry.objects.filter(kind=services.FACT_KIND).count() == 5
    for invitation in others:
        invitation.refresh_from_db()
        assert invitation.responded_at == Response.objects.get(invitation=invitation).answered_at


def test_two_answers_to_one_link_never_share_a_batch_and_the_later_counts(dana, django_served):
    campaign = make_campaign("nps")
    blocker, invitation = make_invitation(campaign), make_invitation(campaign, dana)
    results: list = []
    held, first = _blocked_batch(blocker, results)
    earlier = _posting(invitation.token, "2", results)
    _waiting(1)
    later = _posting(invitation.token, "9", results)
    _waiting(2)
    held.release()
    for thread in (first, earlier, later):
        thread.join(10)
    assert [status for status, _, _ in results] == ["302 Found"] * 3
    # the second answer to the link waited for the batch after the first one's; there it
    # was no first answer, so Django's path recorded it as a change
    assert django_served == [1]
    rows = Response.objects.filter(invitation=invitation).order_by("id")
    assert list(rows.values_list("score", "is_current")) == [(2, False), (9, True)]


def test_a_rate_limited_answer_in_a_batch_gets_djangos_429_counted_once(
    dana, django_served, settings
):
    """The batch counts its answers' rate limits in one round trip: the queued answers
    from one address are the 2nd and 3rd hits of a limit of 2 (the blocked batch's answer
    was the 1st), so the 3rd goes Django's way, which renders 429 without counting again."""
    settings.SURVEY_RATE_PER_IP = 2
    campaign = make_campaign("nps")
    blocker, allowed, refused = (make_invitation(campaign) for _ in range(3))
    results: list = []
    held, first = _blocked_batch(blocker, results)
    threads = [_posting(allowed.token, "4", results)]
    _waiting(1)
    threads.append(_posting(refused.token, "5", results))
    _waiting(2)
    held.release()
    for thread in [first, *threads]:
        thread.join(10)
    assert sorted(status for status, _, _ in results) == [
        "302 Found", "302 Found", "429 Too Many Requests"
    ]  # fmt: skip
    assert django_served == [1]
    assert sorted(Response.objects.values_list("invitation", flat=True)) == sorted(
        [blocker.pk, allowed.pk]
    )


def test_a_batch_that_fails_whole_writes_nothing_and_each_answer_goes_djangos_way(dana):
    """Another first answer to one of the links commits between the batch's read and its
    insert (here: a current answer that the invitation does not show yet): the unique
    constraint fails the whole statement, nothing of the batch is written, and each answer
    comes back False for Django's path."""
    campaign = make_campaign("csat")
    raced, other = make_invitation(campaign, dana), make_invitation(campaign)
    now = timezone.now()
    Response.objects.create(
        invitation=raced, campaign=campaign, account=raced.account, stakeholder=dana,
        kind="csat", score=4, answered_at=now, is_current=True,
    )  # fmt: skip
    answers = [(raced.token, "1", "", now), (other.token, "5", "fine", now)]
    assert services.first_answers_only(answers) == [False, False]
    assert not Response.objects.filter(invitation=other).exists()
    assert not TimelineEntry.objects.exists()
    other.refresh_from_db()
    assert other.responded_at is None
    # Django's way then records it
    status, _, _ = post(f"/s/{other.token}/", {"score": "5"}, app=wsgi.survey_answers)
    assert status == "302 Found" and Response.objects.get(invitation=other).score == 5


def test_a_batch_reports_each_answer_on_its_own(dana):
    """One statement, four answers: recorded, unknown link, score off the scale, closed."""
    campaign = make_campaign("ces")
    good, bad_score = make_invitation(campaign, dana), make_invitation(campaign)
    closed = make_invitation(campaign, expires_at=timezone.now() - timezone.timedelta(days=1))
    now = timezone.now()
    answers = [(good.token, "6", "ok", now), ("x" * 43, "6", "", now),
               (bad_score.token, "9", "", now), (closed.token, "6", "", now)]  # fmt: skip
    assert services.first_answers_only(answers) == [True, False, False, False]
    assert list(Response.objects.values_list("invitation", "score", "comment")) == [
        (good.pk, 6, "ok")
    ]


def test_a_batch_thread_error_sends_each_answer_djangos_way(dana, django_served, monkeypatch):
    invitation = make_invitation(make_campaign("nps"), dana)

    def failing(answers):  # after the rate limits were counted
        raise RuntimeError("the batch failed")

    monkeypatch.setattr(services, "first_answers_only", failing)
    status, _, _ = post(f"/s/{invitation.token}/", {"score": "8"})
    assert status == "302 Found" and django_served == [1]
    assert Response.objects.get(invitation=invitation).score == 8


def test_stop_ends_the_thread_and_closes_its_connection(dana):
    invitation = make_invitation(make_campaign("nps"), dana)
    assert post(f"/s/{invitation.token}/", {"score": "8"})[0] == "302 Found"
    thread = answer_batch.answers._thread
    assert thread is not None and thread.is_alive()

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = backends()
    answer_batch.answers.stop()
    assert not thread.is_alive() and answer_batch.answers._thread is None
    end = time.monotonic() + 5
    while backends() != before - 1:  # the thread's own connection is gone
        assert time.monotonic() < end
        time.sleep(0.05)
