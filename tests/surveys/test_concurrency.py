"""Concurrent submissions for one invitation on PostgreSQL leave one current response (the
row lock in response_record; the partial unique constraint behind it), and the first-answer
fast path outside a transaction (one prepared statement) stays exact when it loses a race or
its connection."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import TimelineEntry
from surveys import services
from surveys.models import AnswerToAnnounce, Response

from .conftest import make_campaign, make_invitation

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL (DATABASE_URL)"
)

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_for_one_invitation_leave_one_current_response(dana):
    invitation = make_invitation(make_campaign("nps"), dana)
    url = reverse("surveys:respond", args=[invitation.token])
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post(score: int) -> None:
        try:
            client = Client()  # the whole request stack, its own database connection
            barrier.wait()
            statuses.append(client.post(url, {"score": str(score)}).status_code)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(s,)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and statuses == [302] * THREADS
    assert Response.objects.filter(invitation=invitation).count() == THREADS  # history kept
    current = Response.objects.filter(invitation=invitation, is_current=True)
    assert current.count() == 1
    # the current one is the last written
    assert current.get().pk == Response.objects.filter(invitation=invitation).latest("id").pk


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_current_response(dana):
    invitation = make_invitation(make_campaign("nps"), dana)
    fields = {
        "invitation": invitation,
        "account_id": invitation.account_id,
        "kind": "nps",
        "score": 5,
        "answered_at": invitation.created_at,
    }
    Response.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.create(**fields)


@pytest.mark.django_db(transaction=True)
def test_a_first_answer_outside_a_transaction_is_one_prepared_statement(
    client, dana, django_assert_num_queries, settings
):
    """The page's request runs in autocommit: a first answer is one WITH … INSERT that reads
    the invitation and writes the answer, its own transaction (no BEGIN/COMMIT); a changed
    answer runs it (which writes nothing, the invitation has an answer), then takes the
    locked path (BEGIN, locking read, demotion, insert, COMMIT)."""
    settings.SURVEY_ANNOUNCE_INLINE = False
    invitation = make_invitation(make_campaign("csat"), dana)
    url = reverse("surveys:respond", args=[invitation.token])
    with django_assert_num_queries(1) as first:
        assert client.post(url, {"score": "2", "comment": "slow"}).status_code == 302
    assert [q["sql"].split()[0] for q in first.captured_queries] == ["WITH"]
    with django_assert_num_queries(6) as changed:
        assert client.post(url, {"score": "5"}).status_code == 302
    assert [q["sql"].split()[0] for q in changed.captured_queries] == [
        "WITH", "BEGIN", "SELECT", "UPDATE", "WITH", "COMMIT"
    ]  # fmt: skip
    rows = Response.objects.order_by("id").values_list("score", "comment", "is_current")
    assert list(rows) == [(2, "slow", False), (5, "", True)]
    # the statement is prepared on this connection once it has run often enough
    # (DATABASES OPTIONS prepare_threshold): answer more people from the same connection
    people = [make_invitation(invitation.campaign) for _ in range(6)]
    for person in people:
        page = reverse("surveys:respond", args=[person.token])
        assert client.post(page, {"score": "4"}).status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        prepared = [(" ".join(sql.split())[:14], *plans) for (sql, *plans) in cursor.fetchall()]
    # 8 runs: psycopg runs it 5 times unprepared (prepare_threshold), prepares it on the 6th;
    # runs 6-8 reuse one generic plan (config.db._generic_plans), never a custom one
    assert prepared == [("WITH sent AS (", 3, 0)]


@pytest.mark.django_db(transaction=True)
def test_a_first_answer_that_lost_the_race_is_recorded_as_a_change(dana):
    """Two first answers at once: the second statement reads "no answer yet" while the
    first is not committed, waits on the partial unique index, and fails whole when the
    first commits; that answer then goes through the locked path as a change."""
    invitation = make_invitation(make_campaign("nps"), dana)
    written, go_on = threading.Event(), threading.Event()
    first: list = []

    def first_answer() -> None:
        try:
            with transaction.atomic():  # the locked path, held open until told
                first.append(services.response_record(token=invitation.token, score=3))
                written.set()
                go_on.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_answer)
    thread.start()
    assert written.wait(10)
    result: list = []
    second = threading.Thread(
        target=lambda: (
            result.append(
                services.response_record(token=invitation.token, score=10, comment="better")
            ),
            connections.close_all(),
        )
    )
    second.start()
    with connection.cursor() as cursor:  # until the second statement waits on the first
        for _ in range(200):
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second answer never waited on the first")
    go_on.set()
    thread.join()
    second.join()
    rows = list(Response.objects.order_by("id").values_list("pk", "score", "is_current"))
    assert rows == [(first[0].pk, 3, False), (result[0].pk, 10, True)]
    # nothing half-written by the failed statement: one fact per response, one per answer
    facts = TimelineEntry.objects.filter(kind="survey_answer").order_by("id")
    assert [f.data["response_id"] for f in facts] == [first[0].pk, result[0].pk]
    assert AnswerToAnnounce.objects.count() in (0, 2)  # 0 when announced inline


def _terminate(backend_pid: int) -> None:
    with connections["default"].cursor() as cursor:  # another thread: its own connection
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def _on_another_connection(func, *args) -> None:
    thread = threading.Thread(target=lambda: (func(*args), connections.close_all()))
    thread.start()
    thread.join()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_seen_without_a_round_trip(dana, monkeypatch, settings):
    """A reused connection gets no SELECT 1 before the answer while its socket is quiet; one
    that the server ended (its FATAL message waiting on the socket) gets Django's check,
    which replaces it, and the answer is recorded."""
    settings.SURVEY_ANNOUNCE_INLINE = False
    from config.db import _quiet

    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    pid = _backend_pid()
    assert _quiet(connection.connection)
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    token = make_invitation(make_campaign("csat"), dana).token
    invitation = make_invitation(make_campaign("nps"), dana)
    connection.health_check_done = False  # a new request on the reused connection
    services.response_record(token=token, score=4)
    assert checks == [] and _backend_pid() == pid  # no SELECT 1: the socket was quiet
    _on_another_connection(_terminate, pid)
    time.sleep(0.2)
    assert not _quiet(connection.connection)
    connection.health_check_done = False  # the next request
    services.response_record(token=invitation.token, score=8)
    assert checks == [1] and _backend_pid() != pid
    assert Response.objects.get(invitation=invitation).score == 8
    assert Response.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_first_answer_on_a_lost_connection_is_retried_once(dana, monkeypatch, settings):
    """A peer gone without a word (here: the server ended the connection, and the passive
    check is told the socket is quiet) fails the statement; it is sent again once on a new
    connection, and the answer is recorded once."""
    settings.SURVEY_ANNOUNCE_INLINE = False
    import config.db

    invitation = make_invitation(make_campaign("nps"), dana)
    pid = _backend_pid()
    _on_another_connection(_terminate, pid)
    time.sleep(0.2)
    monkeypatch.setattr(config.db, "_quiet", lambda conn: True)
    connection.health_check_enabled, connection.health_check_done = True, False
    response = services.response_record(token=invitation.token, score=9)
    assert _backend_pid() != pid
    rows = list(Response.objects.values_list("pk", "score", "is_current"))
    assert rows == [(response.pk, 9, True)]
    assert TimelineEntry.objects.filter(kind="survey_answer").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_retry_after_a_commit_it_did_not_hear_of_records_nothing_twice(dana, monkeypatch):
    """The connection is lost after the server committed the first attempt: the retry finds
    the invitation answered at the request's own time and returns that answer."""
    invitation = make_invitation(make_campaign("nps"), dana)
    real = services.prepared_cursor
    calls = []

    class LostAfterCommit:
        def __init__(self, cursor):
            self.cursor = cursor

        def execute(self, sql, params):
            self.cursor.execute(sql, params)
            self.cursor.fetchone()
            _on_another_connection(_terminate, _backend_pid())
            time.sleep(0.2)
            self.cursor.execute("SELECT 1")  # the lost connection fails now

    from contextlib import contextmanager

    @contextmanager
    def losing_once():
        with real() as cursor:
            calls.append(1)
            yield LostAfterCommit(cursor) if len(calls) == 1 else cursor

    monkeypatch.setattr(services, "prepared_cursor", losing_once)
    response = services.response_record(token=invitation.token, score=4, comment="hm")
    assert len(calls) == 2
    rows = list(Response.objects.values_list("pk", "score", "comment", "is_current"))
    assert rows == [(response.pk, 4, "hm", True)]
    assert TimelineEntry.objects.filter(kind="survey_answer").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("kind", "score", "name"), [("ces", "2", "Dana Smith"), ("nps", 10, "")])
def test_the_one_statement_writes_the_fact_the_model_builds(dana, kind, score, name):
    """Outside a transaction (the fast path), the fact equals what ``_fact`` builds from the
    stored response, field by field: title (the address when the person has no name),
    detail and data (score, unhappy, kind, comment, ids); ``responded_at`` is set."""
    dana.name = name
    dana.save()
    invitation = make_invitation(make_campaign(kind), dana)
    assert not connection.in_atomic_block
    response = services.response_record(token=invitation.token, score=score, comment=" x\x00 ")
    stored = Response.objects.get()
    assert (response.pk, response.score, response.comment) == (stored.pk, int(score), "x")
    assert (stored.kind, stored.source, stored.is_current) == (kind, "link", True)
    expected = services._fact(stored, name or dana.email)
    fact = TimelineEntry.objects.get(kind="survey_answer")
    fields = ("account_id", "occurred_at", "kind", "key", "title", "detail", "data")
    assert [getattr(fact, f) for f in fields] == [getattr(expected, f) for f in fields]
    invitation.refresh_from_db()
    assert invitation.responded_at == stored.answered_at


@pytest.mark.django_db(transaction=True)
def test_the_one_statement_writes_nothing_for_a_refused_answer(dana):
    """Unknown token, bad score, expired invitation, closed campaign: nothing written."""
    from django.utils import timezone

    from surveys import scoring
    from surveys.models import Invitation

    campaign = make_campaign("csat")
    invitation = make_invitation(campaign, dana)
    with pytest.raises(Invitation.DoesNotExist):
        services.response_record(token="x" * 43, score=3)
    with pytest.raises(scoring.ScoreError):
        services.response_record(token=invitation.token, score="9")  # a CSAT is 1-5
    old = make_invitation(campaign, expires_at=timezone.now())
    with pytest.raises(services.InvitationClosed):
        services.response_record(token=old.token, score=3)
    campaign.status = "closed"
    campaign.save()
    with pytest.raises(services.InvitationClosed):
        services.response_record(token=invitation.token, score=3)
    assert Response.objects.count() == 0 and TimelineEntry.objects.count() == 0
    assert AnswerToAnnounce.objects.count() == 0
    assert not Invitation.objects.filter(responded_at__isnull=False).exists()
