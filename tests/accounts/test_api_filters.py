"""The list endpoints' query filters through the real API: a timestamp filter takes exactly
YYYY-MM-DD (midnight UTC) or a full ISO timestamp, and a single-valued filter given twice or
given empty is a 400 naming it, in the KPI door's words (tests/metrics/test_door_inputs.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts.models import Account, Activity, TimelineEntry
from playbooks import services as playbook_services
from tests.factories import AccountFactory, ContractFactory, TicketFactory, token_client
from tests.playbooks.helpers import make_playbook

pytestmark = pytest.mark.django_db

# Two rows per endpoint, 30 minutes either side of 1 Oct 2026 00:00 UTC
BEFORE = dt.datetime(2026, 9, 30, 23, 30, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 10, 1, 0, 30, tzinfo=dt.UTC)
FORMS = "use YYYY-MM-DD or 2024-03-01T09:30:00Z"


@pytest.fixture
def book(admin_user):
    """An account with a ticket, an activity and a timeline fact at BEFORE and at AFTER, and
    a second account; returns the first."""
    account = AccountFactory(external_id="A-1", segment="SMB", owner=admin_user)
    AccountFactory(external_id="A-2", segment="Enterprise")
    for when, tag in ((BEFORE, "before"), (AFTER, "after")):
        TicketFactory(account=account, external_id=f"T-{tag}", opened_at=when)
        Activity.objects.create(account=account, kind="call", subject=tag, occurred_at=when)
        TimelineEntry.objects.create(
            account=account, occurred_at=when, kind="ticket_opened", key=tag, title=tag
        )
    Account.objects.filter(external_id="A-1").update(updated_at=BEFORE)
    Account.objects.filter(external_id="A-2").update(updated_at=AFTER)
    return account


def _url(book, name: str) -> str:
    if name == "timeline-list":
        return reverse("api:timeline-list", args=[book.pk])
    return reverse(f"api:{name}")


def _rows(r) -> list[str]:
    """Each row's tag: the ticket's and account's external id, the activity's subject, the
    timeline fact's title."""
    assert r.status_code == 200, r.content
    return sorted(
        row.get("external_id") or row.get("subject") or row["title"] for row in r.json()["results"]
    )


# every timestamp filter of the API: (list, parameter, "after" when the parameter keeps rows
# at or after the instant, "before" when it keeps rows before it)
INSTANT_FILTERS = [
    ("ticket-list", "opened_after", "after"),
    ("ticket-list", "opened_before", "before"),
    ("activity-list", "occurred_after", "after"),
    ("activity-list", "occurred_before", "before"),
    ("account-list", "updated_since", "after"),
    ("timeline-list", "since", "after"),
    ("timeline-list", "until", "before"),
]
EXPECTED = {
    "ticket-list": {"after": ["T-after"], "before": ["T-before"]},
    "activity-list": {"after": ["after"], "before": ["before"]},
    "account-list": {"after": ["A-2"], "before": ["A-1"]},
    "timeline-list": {"after": ["after"], "before": ["before"]},
}


@pytest.mark.parametrize(("name", "param", "side"), INSTANT_FILTERS)
@pytest.mark.parametrize(
    "value",
    [
        "2026-10-01",  # a day: its midnight UTC
        "2026-10-01T00:00Z",
        "2026-10-01T00:00:00Z",
        "2026-10-01T00:00:00.000000+00:00",
        "2026-10-01T02:00:00+02:00",
        "2026-09-30T19:00:00-05:00",
        "2026-10-01T00:00:00",  # no offset: UTC, as in the bodies
    ],
)
def test_a_timestamp_filter_takes_a_day_or_a_full_timestamp(
    admin_user, book, name, param, side, value
):
    r = token_client(admin_user).get(_url(book, name), {param: value})
    assert _rows(r) == EXPECTED[name][side]


@pytest.mark.parametrize(("name", "param", "side"), INSTANT_FILTERS)
@pytest.mark.parametrize(
    "value", ["20261001", "2026-W40-4", "2026-1-5", "20261001T0930", "2026-10-01 00:00", "now"]
)
def test_a_timestamp_filter_refuses_other_forms_naming_the_parameter(
    admin_user, book, name, param, side, value
):
    r = token_client(admin_user).get(_url(book, name), {param: value})
    assert r.status_code == 400, r.content
    assert r.json() == {param: [f"“{value}” is not a date or timestamp: {FORMS}"]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-13-01", "2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12"),
        (
            "2026-10-01T25:00Z",
            "2026-10-01T25:00Z is not a valid timestamp (2024-03-01T09:30:00Z): "
            "hour must be in 0..23",
        ),
        (
            "9999-12-31T23:00:00-05:00",
            "9999-12-31T23:00:00-05:00 is out of range: it is not a timestamp we can store",
        ),
        (  # "+01:00" typed unencoded into a URL: the "+" arrives as a space
            "2026-10-01T01:00:00 01:00",
            "“2026-10-01T01:00:00 01:00” is not a timestamp: a “+” in a query string reads as "
            "a space, write it as %2B (…T09:30:00%2B01:00)",
        ),
    ],
)
def test_a_timestamp_of_the_right_shape_that_is_no_instant_says_why(
    admin_user, book, value, message
):
    r = token_client(admin_user).get(reverse("api:ticket-list"), {"opened_after": value})
    assert r.status_code == 400
    assert r.json() == {"opened_after": [message]}


def test_a_plus_offset_sent_encoded_is_read(admin_user, book):
    url = reverse("api:ticket-list") + "?opened_after=2026-10-01T01:00:00%2B01:00"
    assert _rows(token_client(admin_user).get(url)) == ["T-after"]


# --- given twice, given empty ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "account-list",
            {"segment": ["SMB", "Enterprise"]},
            "given 2 times (“SMB”, “Enterprise”): give it once",
        ),
        ("account-list", {"owner_email": ["a", "b"]}, "given 2 times (“a”, “b”): give it once"),
        ("account-list", {"q": ["x", "x"]}, "given 2 times (“x”, “x”): give it once"),
        (
            "account-list",
            {"band": ["red", "green", "red"]},
            "given 3 times (“red”, “green”, “red”): give it once",
        ),
        ("account-list", {"segment": ""}, "empty: give a value, or leave segment out"),
        ("account-list", {"owner_email": " "}, "empty: give a value, or leave owner_email out"),
        ("account-list", {"q": ""}, "empty: give a value, or leave q out"),
        (
            "account-list",
            {"updated_since": ""},
            "empty: give a day or a timestamp (YYYY-MM-DD or 2024-03-01T09:30:00Z), "
            "or leave updated_since out",
        ),
        (
            "ticket-list",
            {"opened_after": ["2026-10-01", "2026-10-02"]},
            "given 2 times (“2026-10-01”, “2026-10-02”): give it once",
        ),
        ("ticket-list", {"external_id": ""}, "empty: give a value, or leave external_id out"),
        (
            "ticket-list",
            {"escalated": ["true", "false"]},
            "given 2 times (“true”, “false”): give it once",
        ),
        (
            "contract-list",
            {"active_on": ""},
            "empty: give a day (YYYY-MM-DD), or leave active_on out",
        ),
        ("contract-list", {"product": ["A", "B"]}, "given 2 times (“A”, “B”): give it once"),
        (
            "stakeholder-list",
            {"account_external_id": ""},
            "empty: give a value, or leave account_external_id out",
        ),
        (
            "invoice-list",
            {"status": ["open", "paid"]},
            "given 2 times (“open”, “paid”): give it once",
        ),  # fmt: skip
        ("activity-list", {"author_email": ""}, "empty: give a value, or leave author_email out"),
        (
            "import-list",
            {"kind": ["accounts", "events"]},
            "given 2 times (“accounts”, “events”): give it once",
        ),  # fmt: skip
        ("timeline-list", {"kind": ""}, "empty: give a value, or leave kind out"),
        (
            "timeline-list",
            {"since": ["2026-10-01", "2026-10-01"]},
            "given 2 times (“2026-10-01”, “2026-10-01”): give it once",
        ),  # fmt: skip
    ],
)
def test_a_filter_given_twice_or_empty_is_a_400_naming_it(admin_user, book, name, params, message):
    r = token_client(admin_user).get(_url(book, name), params)
    assert r.status_code == 400, r.content
    assert r.json() == {next(iter(params)): [message]}


def test_the_usage_days_refuse_a_repeated_or_empty_day(admin_user, book):
    url = reverse("api:usage-list", args=[book.pk])
    r = token_client(admin_user).get(url, {"from": ["2026-10-01", "2026-10-02"]})
    assert r.json() == {"from": ["given 2 times (“2026-10-01”, “2026-10-02”): give it once"]}
    r = token_client(admin_user).get(url, {"to": ""})
    assert r.json() == {"to": ["empty: give a day (YYYY-MM-DD), or leave to out"]}


def test_every_bad_parameter_is_named_at_once(admin_user, book):
    r = token_client(admin_user).get(
        reverse("api:account-list"), {"segment": ["SMB", "SMB"], "q": "", "updated_since": "x"}
    )
    assert r.status_code == 400
    assert set(r.json()) == {"segment", "q"}  # the values are read once each is given once


def test_well_formed_single_filters_still_work(admin_user, book):
    api = token_client(admin_user)
    url = reverse("api:account-list")
    assert _rows(api.get(url, {"segment": "SMB"})) == ["A-1"]
    assert _rows(api.get(url, {"owner_email": admin_user.email.upper()})) == ["A-1"]
    assert _rows(api.get(url, {"q": "A-"})) == ["A-1", "A-2"]
    # a segment no account has is an empty page, as documented (not a 400)
    assert _rows(api.get(url, {"segment": "Bogus"})) == []
    ContractFactory(account=book, external_id="C-1", start_date=dt.date(2026, 1, 1))
    r = api.get(reverse("api:contract-list"), {"active_on": "2026-10-01", "product": "Core"})
    assert r.status_code == 200, r.content


def test_the_cta_status_filter_still_takes_several_values(admin_user):
    account = AccountFactory(owner=admin_user)
    cta = playbook_services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=account, evidence="esc"
    )
    api = token_client(admin_user)
    url = reverse("playbooks-api:cta-list")
    r = api.get(url, {"status": ["open", "done"]})
    assert r.status_code == 200 and [row["id"] for row in r.json()["results"]] == [cta.pk]
    assert api.get(url, {"status": ["done", "cancelled"]}).json()["results"] == []
    r = api.get(url, {"status": ["open", ""]})
    assert r.json() == {"status": ["empty: give a value, or leave status out"]}
    r = api.get(url, {"owner": [admin_user.pk, admin_user.pk]})
    assert r.json() == {"owner": [f"given 2 times (“{admin_user.pk}”, “{admin_user.pk}”): give it once"]}  # fmt: skip


def test_the_schema_says_what_a_timestamp_filter_takes(admin_user):
    schema = token_client(admin_user).get(reverse("api-schema"), {"format": "json"}).json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/tickets/"]["get"]["parameters"]}
    opened_after = params["opened_after"]
    assert "YYYY-MM-DD or 2024-03-01T09:30:00Z" in opened_after["description"]
    assert opened_after["schema"]["type"] == "string"
    assert "format" not in opened_after["schema"]  # not "date-time": a day is taken too


@pytest.mark.parametrize(
    ("name", "param", "kind"),
    [("ticket-list", "opened_after", "date or timestamp"), ("contract-list", "active_on", "date")],
)
def test_a_percent_sign_in_a_bad_value_is_a_400_not_a_500(admin_user, book, name, param, kind):
    r = token_client(admin_user).get(reverse(f"api:{name}"), {param: "50%s"})
    assert r.status_code == 400, r.content
    assert r.json()[param][0].startswith(f"“50%s” is not a {kind}: use YYYY-MM-DD")
