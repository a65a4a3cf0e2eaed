"""Concurrent submissions for one invitation on PostgreSQL leave one current response (the
row lock in response_record; the partial unique constraint behind it), and the first-answer
fast path outside a transaction (two prepared statements) stays exact when it loses a race."""

from __future__ import annotations

import threading

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
def test_a_first_answer_outside_a_transaction_is_two_prepared_statements(
    client, dana, django_assert_num_queries, settings
):
    """The page's request runs in autocommit: a first answer is the invitation read and one
    WITH … INSERT, each its own transaction (no BEGIN/COMMIT); a changed answer reads, then
    takes the locked path (BEGIN, locking read, demotion, insert, COMMIT)."""
    settings.SURVEY_ANNOUNCE_INLINE = False
    invitation = make_invitation(make_campaign("csat"), dana)
    url = reverse("surveys:respond", args=[invitation.token])
    with django_assert_num_queries(2) as first:
        assert client.post(url, {"score": "2", "comment": "slow"}).status_code == 302
    assert [q["sql"].split()[0] for q in first.captured_queries] == ["SELECT", "WITH"]
    with django_assert_num_queries(6) as changed:
        assert client.post(url, {"score": "5"}).status_code == 302
    assert [q["sql"].split()[0] for q in changed.captured_queries] == [
        "SELECT", "BEGIN", "SELECT", "UPDATE", "WITH", "COMMIT"
    ]  # fmt: skip
    rows = Response.objects.order_by("id").values_list("score", "comment", "is_current")
    assert list(rows) == [(2, "slow", False), (5, "", True)]
    # both statements are prepared on this connection once they have run often enough
    # (DATABASES OPTIONS prepare_threshold): answer more people from the same connection
    people = [make_invitation(invitation.campaign) for _ in range(6)]
    for person in people:
        page = reverse("surveys:respond", args=[person.token])
        assert client.post(page, {"score": "4"}).status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [" ".join(sql.split())[:20] for (sql,) in cursor.fetchall()]
    assert sorted(prepared) == ["SELECT i.id, i.campa", "WITH response AS ( I"]


@pytest.mark.django_db(transaction=True)
def test_a_first_answer_that_lost_the_race_is_recorded_as_a_change(dana, monkeypatch):
    """Two first answers read "no answer yet" at once; the partial unique constraint lets one
    insert commit and fails the other whole, which then goes through the locked path as a
    change. Here the second reader is made to see the invitation as it was before the first
    answer committed."""
    invitation = make_invitation(make_campaign("nps"), dana)
    first = services.response_record(token=invitation.token, score=3)
    stale = services._invitation_row

    def as_before_the_first_answer(cursor, **kwargs):
        row = stale(cursor, **kwargs)
        if not kwargs["lock"]:  # the unlocked read of the fast path
            row["responded_at"] = None
        return row

    monkeypatch.setattr(services, "_invitation_row", as_before_the_first_answer)
    second = services.response_record(token=invitation.token, score=10, comment="better")
    rows = list(Response.objects.order_by("id").values_list("pk", "score", "is_current"))
    assert rows == [(first.pk, 3, False), (second.pk, 10, True)]
    # nothing half-written by the failed statement: one fact per response, one per answer
    facts = TimelineEntry.objects.filter(kind="survey_answer").order_by("id")
    assert [f.data["response_id"] for f in facts] == [first.pk, second.pk]
    assert AnswerToAnnounce.objects.count() in (0, 2)  # 0 when announced inline
