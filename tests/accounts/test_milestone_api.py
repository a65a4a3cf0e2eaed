"""``/api/v1/accounts/<id>/milestones/``: list, record or change (POST), clear (DELETE);
400s name the field and write nothing; 403 for a read-only token; 404 outside the book."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts import utc
from accounts.models import ApiToken, Milestone, TimelineEntry
from tests.accounts.test_api import _api
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


@pytest.fixture
def account(csm):
    return AccountFactory(owner=csm, customer_since=utc.today() - 20 * DAY)


def list_url(account) -> str:
    return reverse("api:milestone-list", kwargs={"account_id": account.pk})


def detail_url(account, kind: str = "first_value") -> str:
    return reverse("api:milestone-detail", kwargs={"account_id": account.pk, "kind": kind})


def test_record_change_list_and_clear(account, csm):
    client = _api(csm)
    day = utc.today() - 5 * DAY
    r = client.post(
        list_url(account), {"reached_on": day.isoformat(), "note": "Go-live"}, format="json"
    )
    assert r.status_code == 201
    assert r.json()["kind"] == "first_value" and r.json()["reached_on"] == day.isoformat()
    assert r.json()["recorded_by_email"] == csm.email
    r = client.post(list_url(account), {"reached_on": (day - DAY).isoformat()}, format="json")
    assert r.status_code == 200  # changed, not created
    listed = client.get(list_url(account)).json()["results"]
    assert [(m["kind"], m["reached_on"], m["note"]) for m in listed] == [
        ("first_value", (day - DAY).isoformat(), "")
    ]
    assert client.get(detail_url(account)).json()["reached_on"] == (day - DAY).isoformat()
    assert client.delete(detail_url(account)).status_code == 204
    assert client.delete(detail_url(account)).status_code == 404  # nothing left to clear
    assert client.get(detail_url(account)).status_code == 404
    kinds = list(TimelineEntry.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["milestone_recorded", "milestone_recorded", "milestone_cleared"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reached_on": "yesterday"}, "reached_on"),
        ({}, "reached_on"),
        ({"reached_on": "2024-01-01", "kind": "churned"}, "kind"),
        ({"reached_on": "2024-01-01", "note": "n" * 501}, "note"),
        ({"reached_on": "__tomorrow__"}, "reached_on"),  # a day in the future
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(account, csm, body, field):
    if body.get("reached_on") == "__tomorrow__":
        body = {"reached_on": (utc.today() + DAY).isoformat()}
    r = _api(csm).post(list_url(account), body, format="json")
    assert r.status_code == 400
    assert list(r.json()) == [field]
    assert isinstance(r.json()[field], list) and r.json()[field][0]
    assert not Milestone.objects.exists() and not TimelineEntry.objects.exists()


def test_a_read_only_token_reads_but_cannot_write(account, csm):
    Milestone.objects.create(account=account, kind="first_value", reached_on=utc.today())
    client = _api(csm, scope=ApiToken.Scope.READ)
    assert client.get(list_url(account)).status_code == 200
    r = client.post(list_url(account), {"reached_on": utc.today().isoformat()}, format="json")
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert client.delete(detail_url(account)).status_code == 403
    assert Milestone.objects.count() == 1 and not TimelineEntry.objects.exists()


def test_outside_the_book_is_a_404_and_nothing_is_written(account, outsider, django_user_model):
    Milestone.objects.create(account=account, kind="first_value", reached_on=utc.today())
    from django.contrib.auth.models import Group

    other = django_user_model.objects.create_user(email="other@example.com", password="x" * 12)
    other.groups.add(Group.objects.get(name="CSM"))
    for user in (outsider, other):
        client = _api(user)
        assert client.get(list_url(account)).status_code == 404
        r = client.post(list_url(account), {"reached_on": "2024-01-01"}, format="json")
        assert r.status_code == 404
        assert client.delete(detail_url(account)).status_code == 404
    assert Milestone.objects.get().reached_on == utc.today()
    assert not TimelineEntry.objects.exists()


def test_the_manager_and_an_admin_may_record(account, manager, admin_user):
    for user in (manager, admin_user):
        r = _api(user).post(list_url(account), {"reached_on": "2024-01-01"}, format="json")
        assert r.status_code in (200, 201)
        assert Milestone.objects.get().recorded_by == user


def test_no_token_is_a_401(account):
    assert _api().get(list_url(account)).status_code == 401
    assert _api().post(list_url(account), {}, format="json").status_code == 401


def test_an_unknown_kind_to_clear_is_a_404(account, csm):
    assert _api(csm).delete(detail_url(account, "renewed")).status_code == 404
