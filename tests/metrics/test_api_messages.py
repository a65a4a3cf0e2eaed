"""The API's words for bad query parameters: a day of the right shape that is no day, an
unknown segment (with the ones the caller sees), a parameter a KPI endpoint does not take;
and the one place where a filter that matches nothing is no error (lists)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import AccountFactory, token_client

pytestmark = pytest.mark.django_db

Q1 = {"start": "2024-01-01", "end": "2024-04-01"}


@pytest.fixture
def segments(csm):
    for n, segment in enumerate(("SMB", "Enterprise", "Mid-Market", "SMB", "")):
        AccountFactory(external_id=f"s{n}", owner=csm, segment=segment)


@pytest.mark.parametrize(
    ("url", "params", "field", "message"),
    [
        (
            "kpis:report",
            {"start": "2026-13-01", "end": "2026-12-01"},
            "start",
            "2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12",
        ),
        (
            "kpis:movements",
            {"start": "2026-01-01", "end": "2026-02-30"},
            "end",
            "2026-02-30 is not a valid date (YYYY-MM-DD): day is out of range for month",
        ),
        (
            "kpis:cohorts",
            {"period": "month", "date": "March"},
            "date",
            "“March” is not a date: use YYYY-MM-DD, e.g. 2026-03-01",
        ),
        (
            "api:contract-list",
            {"active_on": "2026-13-01"},
            "active_on",
            "2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12",
        ),
        (
            "api:invoice-list",
            {"issued_after": "01/02/2026x"},
            "issued_after",
            "“01/02/2026x” is not a date: use YYYY-MM-DD, e.g. 2026-03-01",
        ),
    ],
)
def test_a_bad_day_says_what_is_wrong_with_it(admin_user, url, params, field, message):
    r = token_client(admin_user).get(reverse(url), params)
    assert r.status_code == 400, r.content
    assert r.json()[field] == [message]


def test_a_bad_day_in_a_body_says_the_same(admin_user, csm):
    account = AccountFactory(owner=csm)
    client = token_client(admin_user, scope="write")
    r = client.post(
        reverse("api:milestone-list", kwargs={"account_id": account.pk}),
        {"kind": "first_value", "reached_on": "2026-04-31"},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert r.json()["reached_on"] == [
        "2026-04-31 is not a valid date (YYYY-MM-DD): day is out of range for month"
    ]


def test_an_unknown_segment_lists_the_segments_the_caller_sees(csm, segments):
    r = token_client(csm).get(reverse("kpis:movements"), {**Q1, "segment": "smb"})
    assert r.status_code == 400
    assert r.json()["segment"] == [
        "no account you can see has segment 'smb' (segments match exactly: did you mean "
        "'SMB'?); segments you can see: Enterprise, Mid-Market, SMB"
    ]


def test_an_unknown_segment_lists_none_when_there_are_many(csm):
    for n in range(11):
        AccountFactory(external_id=f"m{n}", owner=csm, segment=f"Seg {n:02}")
    r = token_client(csm).get(reverse("kpis:report"), {**Q1, "segment": "Bogus"})
    assert r.json()["segment"] == ["no account you can see has segment 'Bogus'"]


def test_segments_outside_the_book_are_not_listed(csm, admin_user, segments):
    AccountFactory(external_id="x", owner=admin_user, segment="Secret")
    message = token_client(csm).get(reverse("kpis:report"), {**Q1, "segment": "Bogus"}).json()
    assert "Secret" not in message["segment"][0]
    assert message["segment"][0].endswith("segments you can see: Enterprise, Mid-Market, SMB")


@pytest.mark.parametrize("url", ["kpis:report", "kpis:movements", "kpis:cohorts"])
def test_a_parameter_a_kpi_endpoint_does_not_take_is_a_400_naming_it(admin_user, url):
    r = token_client(admin_user).get(reverse(url), {**Q1, "months": "abc"})
    assert r.status_code == 400, r.content
    assert list(r.json()) == ["months"]
    assert r.json()["months"][0].startswith("not a parameter of this endpoint; it takes start,")
    assert token_client(admin_user).get(reverse(url), {**Q1, "format": "json"}).status_code == 200


def test_a_list_filtered_on_an_unknown_segment_is_an_empty_page_by_design(csm, segments):
    # lists filter (an empty page is a normal answer); the KPI endpoints refuse instead,
    # as documented in the README and the filter's help
    r = token_client(csm).get(reverse("api:account-list"), {"segment": "Bogus"})
    assert r.status_code == 200 and r.json()["count"] == 0
    assert (
        token_client(csm).get(reverse("api:account-list"), {"segment": "SMB"}).json()["count"] == 2
    )
