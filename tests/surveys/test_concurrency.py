"""Concurrent submissions for one invitation on PostgreSQL leave one current response (the
row lock in response_record; the partial unique constraint behind it)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from surveys.models import Response

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
