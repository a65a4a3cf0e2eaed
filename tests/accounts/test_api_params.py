"""Every list endpoint of the read API refuses a query parameter it does not take, in the KPI
door's words (``accounts.api_dates.unknown_parameter_errors``), so that a misspelled filter
is a 400 and not a full export; a pagination parameter given twice is a 400; a reversed
range and an unknown timeline kind are a 400 naming what is wrong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from accounts import timeline
from accounts.models import TimelineEntry
from tests.factories import AccountFactory, token_client

pytestmark = pytest.mark.django_db

NOT_TAKEN = "not a parameter of this endpoint; it takes "


@pytest.fixture
def api(admin_user):
    return token_client(admin_user)


@pytest.fixture
def account(admin_user):
    return AccountFactory(external_id="A-1", owner=admin_user)


# every list under /api/v1/: (url name, args needed, what it takes, in the order it says it)
LISTS = [
    ("api:account-list", False, "external_id, segment, owner_email, lifecycle_stage"),
    ("api:contract-list", False, "account_external_id, external_id, product, active_on"),
    ("api:stakeholder-list", False, "account_external_id, external_id, email, role"),
    ("api:ticket-list", False, "account_external_id, external_id, status, priority"),
    ("api:invoice-list", False, "account_external_id, external_id, status, issued_after"),
    ("api:activity-list", False, "account_external_id, kind, author_email"),
    ("api:import-list", False, "status, origin, kind, page, page_size"),
    ("api:timeline-list", True, "kind, since, until, page, page_size"),
    ("api:usage-list", True, "from, to, page, page_size"),
    ("api:milestone-list", True, "page, page_size"),
    ("health-api:history", True, "start, end, period, date, components, page, page_size"),
    ("playbooks-api:playbook-list", False, "page, page_size"),
    ("playbooks-api:cta-list", False, "status, owner, account, playbook, type, priority, page"),
    ("reports-api:target-list", False, "page"),
]


def _list_url(name: str, per_account: bool, account) -> str:
    return reverse(name, args=[account.pk] if per_account else [])


@pytest.mark.parametrize(("name", "per_account", "takes"), LISTS)
def test_a_list_refuses_a_parameter_it_does_not_take(api, account, name, per_account, takes):
    url = _list_url(name, per_account, account)
    assert api.get(url).status_code == 200
    assert api.get(url, {"format": "json"}).status_code == 200  # DRF's own
    r = api.get(url, {"update_since": "2030-01-01", "foo": ""})
    assert r.status_code == 400, r.content
    body = r.json()
    assert set(body) == {"update_since", "foo"}
    assert body["foo"] == body["update_since"]
    assert body["foo"][0].startswith(NOT_TAKEN + takes), body


def test_the_misspelled_filter_of_the_review(api, account):
    r = api.get(reverse("api:account-list"), {"update_since": "2030-01-01"})
    assert r.status_code == 400
    (message,) = r.json()["update_since"]
    assert message == (
        NOT_TAKEN + "external_id, segment, owner_email, lifecycle_stage, parent_external_id, "
        "updated_since, q, band, page, page_size"
    )


def test_details_and_writes_are_not_checked(api, account):
    """Only the lists: a detail, and the Segment-compatible tracking that third-party tools
    call with their own parameters, are as they were."""
    detail = reverse("api:account-detail", args=[account.pk])
    assert api.get(detail, {"cache": "1"}).status_code == 200
    body = {"userId": "u1", "event": "Logged in", "context": {"groupId": "A-1"}}
    r = api.post(reverse("api:track") + "?utm_source=x", body, format="json")
    assert r.status_code != 400 or "utm_source" not in r.json(), r.content


@pytest.mark.parametrize("param", ["page_size", "page"])
def test_pagination_given_twice(api, account, param):
    r = api.get(reverse("api:account-list") + f"?{param}=5&{param}=500")
    assert r.status_code == 400
    assert r.json() == {param: ["given 2 times (“5”, “500”): give it once"]}


def test_unknown_and_repeated_together(api, account):
    r = api.get(reverse("api:ticket-list") + "?status=open&status=closed&stauts=open")
    assert r.status_code == 400
    body = r.json()
    assert body["status"][0].startswith("given 2 times")
    assert body["stauts"][0].startswith(NOT_TAKEN)


# --- reversed ranges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "low", "high", "a", "b", "message"),
    [
        ("api:timeline-list", "since", "until", "2026-11-20", "2026-11-01", "after since"),
        ("api:timeline-list", "since", "until", "2026-11-20", "2026-11-20", "after since"),
        ("api:usage-list", "from", "to", "2026-11-20", "2026-11-01", "on or after from"),
        ("api:ticket-list", "opened_after", "opened_before", "2026-11-20", "2026-11-01", None),
        (
            "api:activity-list",
            "occurred_after",
            "occurred_before",
            "2026-11-20",
            "2026-11-01",
            None,
        ),
        ("api:invoice-list", "issued_after", "issued_before", "2026-11-20", "2026-11-01", None),
        ("api:contract-list", "ends_after", "ends_before", "2026-11-20", "2026-11-01", None),
    ],
)
def test_a_reversed_range_is_a_400_naming_both(api, account, name, low, high, a, b, message):
    per_account = name in ("api:timeline-list", "api:usage-list")
    url = _list_url(name, per_account, account)
    r = api.get(url, {low: a, high: b})
    assert r.status_code == 400, r.content
    (said,) = r.json()[high]
    assert f"{low} ({a}), got {b}" in said
    if message:
        assert said == f"must be {message} ({a}), got {b}"


def test_a_range_in_order_is_fine(api, account):
    usage = _list_url("api:usage-list", True, account)
    assert api.get(usage, {"from": "2026-11-01", "to": "2026-11-01"}).status_code == 200
    tl = _list_url("api:timeline-list", True, account)
    assert api.get(tl, {"since": "2026-11-01", "until": "2026-11-20"}).status_code == 200


# --- timeline kinds --------------------------------------------------------------------------


def test_an_unknown_timeline_kind_lists_the_kinds(api, account):
    TimelineEntry.objects.create(
        account=account, occurred_at="2026-11-01T00:00Z", kind="ticket_opened", key="k", title="t"
    )
    url = _list_url("api:timeline-list", True, account)
    r = api.get(url, {"kind": "bogus"})
    assert r.status_code == 400
    (message,) = r.json()["kind"]
    assert message.startswith('"bogus" is not a valid choice: activity, contract_ended,')
    for kind in ("health_band_changed", "survey_answer", "cta_opened", "payment_failed"):
        assert kind in message  # the apps above accounts register theirs
    assert len(api.get(url, {"kind": "ticket_opened"}).json()["results"]) == 1
    assert api.get(url, {"kind": "cta_closed"}).json()["results"] == []


def test_every_kind_playbooks_write_is_registered():
    """playbooks.services._fact's kinds are literals at each call: each is a known kind."""
    tree = ast.parse(Path("playbooks/services.py").read_text())
    written = {
        node.args[2].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_fact"
    }
    assert written and written <= set(timeline.kinds())
