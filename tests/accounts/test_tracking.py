"""Segment-compatible tracking: track / identify / group / batch, with a write key."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Account, ApiToken, TrackedUser, UsageEvent
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment(admin_user) -> APIClient:
    """Segment sends its write key as the Basic user name with an empty password."""
    _token, key = ApiToken.issue(user=admin_user, name="segment")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode())
    return client


def _send(client, name, body):
    return client.post(reverse(f"api:{name}"), body, format="json")


def test_identify_and_group_then_track_without_group_id_lands_on_the_account(segment):
    acme = AccountFactory(external_id="ACME")
    AccountFactory(external_id="OTHER")
    r = _send(
        segment,
        "identify",
        {"userId": "u1", "traits": {"email": "ann@acme.example", "plan": "pro"}},
    )
    assert r.status_code == 200, r.json()
    assert r.json()["success"] is True and r.json()["identified"] == 1
    user = TrackedUser.objects.get(user_id="u1")
    assert user.account is None and user.traits["email"] == "ann@acme.example"

    r = _send(segment, "group", {"userId": "u1", "groupId": "ACME", "traits": {"name": "Acme"}})
    assert r.status_code == 200 and r.json()["grouped"] == 1
    r = _send(segment, "identify", {"userId": "u1", "traits": {"plan": "enterprise"}})
    user.refresh_from_db()
    assert user.account == acme  # a later identify without groupId keeps the account
    assert user.traits == {"email": "ann@acme.example", "plan": "enterprise"}  # merged

    track = {
        "userId": "u1",
        "event": "report_created",
        "timestamp": "2024-03-01T09:30:00Z",
        "properties": {"value": 12.5, "color": "blue"},
    }
    r = _send(segment, "track", track)
    assert r.status_code == 200, r.json()
    assert r.json()["events"] == {"received": 1, "created": 1, "unchanged": 0}
    event = UsageEvent.objects.get()
    assert (event.account, event.user_id, event.event, event.value) == (
        acme,
        "u1",
        "report_created",
        12.5,
    )
    assert event.occurred_at == dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)

    r = _send(segment, "track", track)  # Segment retries: the duplicate is not counted again
    assert r.status_code == 200
    assert r.json()["events"] == {"received": 1, "created": 0, "unchanged": 1}
    assert UsageEvent.objects.count() == 1


def test_track_group_id_and_context_group_id_and_fallbacks(segment):
    AccountFactory(external_id="ACME")
    r = _send(segment, "track", {"anonymousId": "anon-1", "event": "signup", "context": {"groupId": "ACME"},
                                 "sentAt": "2024-03-02T10:00:00+02:00", "properties": {"revenue": "99.90"}})  # fmt: skip
    assert r.status_code == 200, r.json()
    event = UsageEvent.objects.get()
    assert (event.user_id, event.value) == ("anon-1", 99.9)
    assert event.occurred_at == dt.datetime(2024, 3, 2, 8, 0, tzinfo=dt.UTC)
    r = _send(
        segment, "track", {"userId": 42, "groupId": "ACME", "event": "login"}
    )  # no timestamp: now
    assert r.status_code == 200
    event = UsageEvent.objects.get(event="login")
    assert event.user_id == "42" and event.value is None


def test_track_without_any_known_account_is_400(segment):
    r = _send(segment, "track", {"userId": "stranger", "event": "login"})
    assert r.status_code == 400
    assert r.json()["messages"] == [
        "request: row 1, column groupId: no account known for user stranger: send groupId "
        "(or context.groupId), or identify/group the user with one first"
    ]
    assert UsageEvent.objects.count() == 0


def test_group_with_unknown_account(segment):
    r = _send(segment, "group", {"userId": "u1", "groupId": "NEW"})
    assert r.status_code == 400
    assert r.json()["messages"][0].startswith("request: row 1, column groupId: unknown account NEW")
    assert not TrackedUser.objects.exists()
    r = _send(segment, "identify", {"userId": "u1", "groupId": "NEW"})
    assert r.status_code == 400 and not TrackedUser.objects.exists()

    # with traits.name the account is created through intake
    r = _send(segment, "group", {"userId": "u1", "groupId": "NEW", "traits": {"name": "New Co"}})
    assert r.status_code == 200, r.json()
    assert r.json()["accounts_created"] == 1
    account = Account.objects.get(external_id="NEW")
    assert account.name == "New Co"
    assert TrackedUser.objects.get(user_id="u1").account == account
    # an existing account is not renamed by tracking
    r = _send(segment, "group", {"userId": "u2", "groupId": "NEW", "traits": {"name": "Renamed"}})
    assert r.status_code == 200 and r.json()["accounts_created"] == 0
    account.refresh_from_db()
    assert account.name == "New Co"


@pytest.mark.parametrize(
    ("name", "body", "column"),
    [
        ("track", {"userId": "u1", "groupId": "ACME"}, "event"),
        ("track", {"groupId": "ACME", "event": "x"}, "userId"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": "x", "timestamp": "soon"}, "timestamp"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": "x", "timestamp": 1709280000}, "timestamp"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": "x", "properties": {"value": "lots"}}, "properties.value"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": "x", "properties": {"value": [1]}}, "properties.value"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": "x", "properties": "v"}, "properties"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": {"name": "x"}}, "event"),
        ("track", {"userId": "u1", "groupId": "ACME", "event": "x" * 201}, "event"),
        ("track", {"userId": "u\x00", "groupId": "ACME", "event": "x"}, "userId"),
        ("track", {"userId": "u" * 201, "groupId": "ACME", "event": "x"}, "userId"),
        ("track", {"userId": "u1", "context": {"groupId": ["ACME"]}, "event": "x"}, "context.groupId"),
        ("track", {"userId": "u1", "context": "ACME", "event": "x"}, "context"),
        ("identify", {"userId": "u1", "traits": ["a"]}, "traits"),
        ("identify", {"userId": "u1", "traits": {"a\x00": "b"}}, "traits"),
        ("identify", {"userId": True}, "userId"),
        ("group", {"userId": "u1"}, "groupId"),
    ],
)  # fmt: skip
def test_bad_calls_are_400_naming_the_segment_field(segment, name, body, column):
    AccountFactory(external_id="ACME")
    r = _send(segment, name, body)
    assert r.status_code == 400, r.json()
    assert r.json()["errors"][0]["column"] == column, r.json()
    assert r.json()["messages"][0].startswith(f"request: row 1, column {column}: ")
    assert not UsageEvent.objects.exists() and not TrackedUser.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"track"', "{", "null", "123"])
def test_not_an_object_is_400(segment, raw):
    r = segment.post(reverse("api:track"), raw, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["messages"]


def test_batch_applies_calls_in_order(segment):
    acme = AccountFactory(external_id="ACME")
    batch = {
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"name": "Ann"}},
            {"type": "group", "userId": "u1", "groupId": "ACME"},
            {"type": "track", "userId": "u1", "event": "a", "timestamp": "2024-03-01T00:00:00Z"},
            {"type": "page", "userId": "u1", "name": "Home"},
            {"type": "group", "userId": "u2", "groupId": "BETA", "traits": {"name": "Beta Inc"}},
            {"type": "track", "userId": "u2", "event": "b", "timestamp": "2024-03-01T00:00:00Z"},
            {"type": "track", "userId": "u1", "event": "a", "timestamp": "2024-03-01T00:00:00Z"},
        ]
    }
    r = _send(segment, "batch", batch)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["events"] == {"received": 3, "created": 2, "unchanged": 1}  # the repeat is a dup
    assert (body["identified"], body["grouped"], body["accounts_created"], body["ignored"]) == (
        1,
        2,
        1,
        1,
    )
    assert UsageEvent.objects.get(event="a").account == acme
    assert UsageEvent.objects.get(event="b").account.external_id == "BETA"
    assert TrackedUser.objects.get(user_id="u2").account.name == "Beta Inc"

    r = _send(segment, "batch", batch)
    assert r.json()["events"] == {"received": 3, "created": 0, "unchanged": 3}
    assert UsageEvent.objects.count() == 2


def test_batch_is_all_or_nothing_with_batch_positions(segment):
    AccountFactory(external_id="ACME")
    batch = [
        {"type": "identify", "userId": "u1", "groupId": "ACME"},
        {"type": "track", "userId": "u1", "event": "ok", "timestamp": "2024-03-01T00:00:00Z"},
        {"type": "track", "userId": "u1", "event": "bad", "timestamp": "2024-02-30T00:00:00Z"},
        {"type": "wave", "userId": "u1"},
    ]
    r = _send(segment, "batch", {"batch": batch})
    assert r.status_code == 400
    assert r.json()["messages"][0].startswith("request: row 4, column type: ")
    r = _send(segment, "batch", {"batch": batch[:3]})
    assert r.status_code == 400
    assert r.json()["messages"][0].startswith("request: row 3, column timestamp: ")
    assert not UsageEvent.objects.exists() and not TrackedUser.objects.exists()
    for body in ({"calls": []}, {"batch": {}}, "x"):
        r = _send(segment, "batch", body)
        assert r.status_code == 400 and r.json()["messages"], body


def test_batch_over_the_limit_is_413(segment, settings):
    settings.EVENT_BATCH_MAX = 2
    r = _send(segment, "batch", {"batch": [{"type": "page", "userId": "u"}] * 3})
    assert r.status_code == 413


def test_tracking_needs_an_admin_write_key(csm, admin_user):
    AccountFactory(external_id="ACME")
    body = {"userId": "u1", "groupId": "ACME", "event": "x"}
    assert APIClient().post(reverse("api:track"), body, format="json").status_code == 401
    for user, scope in ((csm, "write"), (admin_user, "read")):
        _token, key = ApiToken.issue(user=user, name="k", scope=scope)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert client.post(reverse("api:track"), body, format="json").status_code == 403
    assert not UsageEvent.objects.exists()


def test_lone_surrogates_in_ids_and_traits_are_a_400(segment):
    from accounts.models import TrackedUser

    for body in (
        '{"userId": "u\\ud800", "traits": {}}',
        '{"userId": "u1", "traits": {"name": "x\\udfff"}}',
    ):
        r = segment.post("/api/v1/identify", body, content_type="application/json")
        assert r.status_code == 400, r.content
    assert not TrackedUser.objects.exists()
