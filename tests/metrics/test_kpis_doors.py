"""The KPI doors: GET /api/v1/kpis/ (report, movements, cohorts) and ``manage.py kpis``,
including bad input (400 / CommandError naming the field) and the caller's visible scope."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from metrics.kpis import period_bounds, period_resolve
from tests.factories import AccountFactory, ContractFactory

pytestmark = pytest.mark.django_db

Q1 = {"start": "2024-01-01", "end": "2024-04-01"}


def _api(user) -> APIClient:
    client = APIClient()
    _token, key = ApiToken.issue(user=user, name="tests", scope=ApiToken.Scope.READ)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def book(csm, manager):
    """The CSM's account grows 100 → 150; another CSM's (not under the manager) churns 1000."""
    mine = AccountFactory(external_id="mine", name="Mine", owner=csm, segment="SMB")
    ContractFactory(account=mine, start_date=dt.date(2023, 1, 1), end_date=dt.date(2024, 1, 31))
    ContractFactory(account=mine, start_date=dt.date(2024, 2, 1), mrr=Decimal("150.00"))
    stranger = User.objects.create_user(email="other@example.com")
    theirs = AccountFactory(external_id="theirs", name="Theirs", owner=stranger, segment="ENT")
    ContractFactory(
        account=theirs,
        start_date=dt.date(2023, 1, 1),
        end_date=dt.date(2024, 2, 29),
        mrr=Decimal("1000.00"),
    )
    return mine, theirs


def test_admin_gets_every_kpi_over_the_whole_book(admin_user, book):
    r = _api(admin_user).get(reverse("kpis:report"), Q1)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["period"] == {
        "start": "2024-01-01",
        "end": "2024-04-01",
        "days": 91,
        "as_of": "2024-03-31",
        "requested_end": "2024-04-01",
        "to_date": False,
    }
    assert body["revenue"]["mrr_start"]["value"] == "1100.00"  # 100 + 1000
    assert body["revenue"]["mrr_end"]["value"] == "150.00"
    # NRR = (1100 + 50 − 0 − 1000) / 1100 × 100
    assert Decimal(body["retention"]["nrr"]["value"]) == Decimal(150) * 100 / Decimal(1100)
    assert set(body) >= {"adoption", "support", "billing", "voice_of_customer", "cohorts", "docs"}


def test_csm_over_all_sees_only_their_book(csm, book):
    body = _api(csm).get(reverse("kpis:report"), Q1).json()
    assert body["revenue"]["mrr_start"]["value"] == "100.00"
    assert Decimal(body["retention"]["nrr"]["value"]) == Decimal(150)  # 150 / 100 × 100
    assert body["revenue"]["churn_mrr"]["value"] == "0.00"


def test_csm_cannot_name_an_account_outside_their_book(csm, book):
    r = _api(csm).get(reverse("kpis:report"), {**Q1, "account": "theirs"})
    assert r.status_code == 400
    assert "theirs" in r.json()["account"][0]


def test_csm_learns_nothing_about_segments_and_owners_outside_their_book(csm, book):
    # "ENT" and other@example.com exist, but only outside the CSM's book: the same 400 as
    # for names that exist nowhere
    api = _api(csm)
    for params, field in (
        ({"segment": "ENT"}, "segment"),
        ({"segment": "NOWHERE"}, "segment"),
        ({"owner": "other@example.com"}, "owner"),
        ({"owner": "nobody@example.com"}, "owner"),
    ):
        r = api.get(reverse("kpis:report"), {**Q1, **params})
        assert r.status_code == 400 and field in r.json(), (params, r.content)
    assert api.get(reverse("kpis:report"), {**Q1, "segment": "SMB"}).status_code == 200


def test_manager_sees_the_team_book_not_others(manager, book):
    body = _api(manager).get(reverse("kpis:movements"), Q1).json()
    assert body["movements"]["expansion"]["accounts"][0]["external_id"] == "mine"
    assert body["movements"]["churn"] == {"amount": "0.00", "accounts": []}


def test_movements_drill_down(admin_user, book):
    body = _api(admin_user).get(reverse("kpis:movements"), Q1).json()
    assert body["start_mrr"] == "1100.00" and body["end_mrr"] == "150.00"
    churn = body["movements"]["churn"]
    assert churn["amount"] == "1000.00"
    assert churn["accounts"] == [
        {
            "id": book[1].pk,
            "external_id": "theirs",
            "name": "Theirs",
            "segment": "ENT",
            "m0": "1000.00",
            "m1": "0.00",
            "amount": "1000.00",
        }
    ]
    assert body["movements"]["expansion"]["amount"] == "50.00"


def test_cohorts_endpoint(admin_user):
    a = AccountFactory()
    ContractFactory(account=a, start_date=dt.date(2024, 1, 10), end_date=dt.date(2024, 2, 15))
    body = _api(admin_user).get(reverse("kpis:cohorts"), Q1).json()
    [row] = body["rows"]
    # joined 01-10; a customer on 02-01 (k=0), gone on 03-01 and 04-01
    assert (row["cohort"], row["size"]) == ("2024-01", 1)
    assert [c["logos"] for c in row["columns"]] == ["100", "0", "0"]


@pytest.mark.parametrize("params", [Q1, {"period": "year"}])  # a period cut to date too
def test_the_three_endpoints_give_the_same_period(admin_user, book, params):
    api = _api(admin_user)
    periods = [
        api.get(reverse(name), params).json()["period"]
        for name in ("kpis:report", "kpis:movements", "kpis:cohorts")
    ]
    assert periods[0] == periods[1] == periods[2]
    assert set(periods[0]) >= {"start", "end", "days", "as_of", "requested_end", "to_date"}


def test_scope_filters(admin_user, book):
    api = _api(admin_user)
    ent = api.get(reverse("kpis:report"), {**Q1, "segment": "ENT"}).json()
    assert ent["revenue"]["mrr_start"]["value"] == "1000.00"
    by_owner = api.get(reverse("kpis:report"), {**Q1, "owner": "CSM@example.com"}).json()
    assert by_owner["revenue"]["mrr_start"]["value"] == "100.00"
    one = api.get(reverse("kpis:report"), {**Q1, "account": "theirs"}).json()
    assert one["scope"]["account"] == "theirs"
    assert Decimal(one["retention"]["logo_churn_rate"]["value"]) == 100


def test_period_shortcuts(admin_user, book):
    api = _api(admin_user)
    body = api.get(reverse("kpis:report"), {"period": "month", "date": "2024-02-14"}).json()
    assert (body["period"]["start"], body["period"]["end"]) == ("2024-02-01", "2024-03-01")
    body = api.get(reverse("kpis:report"), {"period": "quarter", "date": "2024-05-31"}).json()
    assert (body["period"]["start"], body["period"]["end"]) == ("2024-04-01", "2024-07-01")
    body = api.get(reverse("kpis:report"), {"period": "year"}).json()
    today = dt.datetime.now(dt.UTC).date()
    start, end = period_bounds("year", today)
    # the current year is reported to date: through today, the end asked for kept beside
    tomorrow = today + dt.timedelta(days=1)
    assert body["period"]["start"] == start.isoformat()
    assert body["period"]["end"] == min(end, tomorrow).isoformat()
    assert body["period"]["requested_end"] == end.isoformat()
    assert body["period"]["to_date"] is (end > tomorrow)


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"start": "2024-04-01", "end": "2024-04-01"}, "end", "after start"),
        ({"start": "2024-04-01", "end": "2024-01-01"}, "end", "after start"),
        (
            {"start": "2024-13-01", "end": "2024-04-01"},
            "start",
            "2024-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12",
        ),
        ({"start": "yesterday", "end": "2024-04-01"}, "start", "“yesterday” is not a date"),
        ({"end": "2024-04-01"}, "start", "required"),
        ({}, "start", "required"),
        ({**Q1, "segment": "Nope"}, "segment", "Nope"),
        ({**Q1, "owner": "nobody@example.com"}, "owner", "nobody@example.com"),
        ({**Q1, "account": "ghost"}, "account", "ghost"),
        ({"period": "week"}, "period", "week"),
        ({**Q1, "period": "month"}, "period", "not both"),
        ({**Q1, "date": "2024-02-01"}, "date", "period"),
        ({"start": "0001-01-01", "end": "2024-04-01"}, "start", "on or after 1900-01-01"),
        ({**Q1, "segment": "a\x00b"}, "segment", "Null characters are not allowed"),
        ({"start": "2024-01-01", "end": "9999-12-31"}, "end", "on or before 2999-12-31"),
        ({"start": "1950-01-01", "end": "2024-04-01"}, "end", "at most 20 years"),
        ({"start": "2000-01-01", "end": "2020-01-06"}, "end", "on or before 2020-01-01"),
        ({"period": "year", "date": "9999-06-01"}, "date", "between 1900-01-01 and 2999-12-31"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(admin_user, book, params, field, words):
    r = _api(admin_user).get(reverse("kpis:report"), params)
    assert r.status_code == 400, r.content
    assert words in " ".join(r.json()[field])


@pytest.mark.parametrize(
    ("start", "latest"),
    [
        ("2000-01-01", "2020-01-01"),
        ("2000-02-29", "2020-02-29"),
        ("2004-02-29", "2024-02-29"),
        ("2080-02-29", "2100-02-28"),  # 2100 has no 29 February: the day before 1 March
        ("2001-03-01", "2021-03-01"),
    ],
)
def test_a_period_is_at_most_20_calendar_years(start, latest):
    start_day, latest_day = dt.date.fromisoformat(start), dt.date.fromisoformat(latest)
    assert period_resolve(start=start_day, end=latest_day) == (start_day, latest_day)
    with pytest.raises(ValidationError) as caught:
        period_resolve(start=start_day, end=latest_day + dt.timedelta(days=1))
    words = caught.value.message_dict["end"][0]
    assert words.startswith(
        f"a period can be at most 20 years long: end on or before {latest}, 20 years after "
        f"start ({start})"
    )
    assert ("2100 has no 29 February" in words) == (latest == "2100-02-28")


def test_every_kpi_endpoint_needs_a_caller(book):
    for name in ("kpis:report", "kpis:movements", "kpis:cohorts"):
        assert APIClient().get(reverse(name), Q1).status_code == 401


def test_session_auth_works_too(client, csm, book):
    client.force_login(csm)
    r = client.get(reverse("kpis:report"), Q1)
    assert r.status_code == 200
    assert r.json()["revenue"]["mrr_start"]["value"] == "100.00"


def test_schema_documents_the_kpi_endpoints(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    for path in ("/api/v1/kpis/", "/api/v1/kpis/movements/", "/api/v1/kpis/cohorts/"):
        operation = schema["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert names >= {"start", "end", "period", "date", "segment", "owner", "account"}
        assert {"200", "400", "401"} <= set(operation["responses"])
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        period = schema["components"]["schemas"][ok.rsplit("/", 1)[1]]["properties"]["period"]
        assert "#/components/schemas/KpiPeriod" in json.dumps(period)
    value = schema["components"]["schemas"]["Kpi"]["properties"]["value"]
    assert {"type": "object", "additionalProperties": {"type": "string"}} in value["anyOf"]
    assert "adoption.feature_adoption" in value["description"] and value["nullable"] is True


# --- the command ----------------------------------------------------------------------------


def _kpis(*args) -> str:
    out = io.StringIO()
    call_command("kpis", *args, stdout=out)
    return out.getvalue()


def test_command_json_is_the_report(book):
    body = json.loads(_kpis("--start", "2024-01-01", "--end", "2024-04-01", "--json"))
    assert body["revenue"]["mrr_start"]["value"] == "1100.00"
    assert Decimal(body["retention"]["grr"]["value"]) == Decimal(100) * 100 / Decimal(1100)


def test_command_table_shows_values_and_inputs(book):
    out = _kpis("--start", "2024-01-01", "--end", "2024-04-01", "--segment", "SMB", "--movements")
    assert "scope: segment=SMB" in out
    assert "mrr_start" in out and "100.00 USD" in out
    # NRR 150 % with its inputs; n/a where there is no denominator
    assert "150.0 %" in out and "start_mrr=100.00 expansion=50.00" in out
    assert "n/a" in out
    assert "Expansion: 50.00" in out and "mine" in out


def test_command_on_an_empty_book_says_there_is_no_cohort():
    """A new installation: every ratio is n/a, and the cohorts' heading is not left with
    nothing under it."""
    out = _kpis("--start", "2024-01-01", "--end", "2024-04-01")
    assert "nrr                                         n/a %" in out
    heading, after = out.split("Cohorts (% of logos / % of first-month MRR retained, k = 0, 1, …)")
    assert after.lstrip("\n").startswith(
        "  none: no account first paid from 2024-01-01 to 2024-03-31"
    )


def test_command_scope_by_owner_and_account(book):
    body = json.loads(
        _kpis(
            "--period", "quarter", "--date", "2024-02-01", "--owner", "other@example.com", "--json"
        )
    )
    assert body["revenue"]["churn_mrr"]["value"] == "1000.00"
    body = json.loads(
        _kpis("--start", "2024-01-01", "--end", "2024-04-01", "--account", "mine", "--json")
    )
    assert body["revenue"]["mrr_end"]["value"] == "150.00"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--start", "2024-04-01", "--end", "2024-01-01"], "--end: must be after start"),
        (
            ["--start", "2024-02-30", "--end", "2024-04-01"],
            "--start: 2024-02-30 is not a valid date",
        ),
        (["--end", "2024-04-01"], "--start: required"),
        (
            ["--start", "2024-01-01", "--end", "2024-04-01", "--segment", "Nope"],
            "--segment: no account you can see has segment 'Nope'",
        ),
        (
            ["--start", "2024-01-01", "--end", "2024-04-01", "--owner", "x@y.z"],
            "--owner: no account you can see is owned by",
        ),
        (
            ["--start", "2024-01-01", "--end", "2024-04-01", "--account", "ghost"],
            "--account: no account",
        ),
    ],
)
def test_command_bad_input_is_a_clear_error(book, args, words):
    with pytest.raises(CommandError, match=words):
        _kpis(*args)


# --- periods reaching past today: reported to date, said plainly ----------------------------


@pytest.fixture
def scheduled_end(csm):
    """One account paying 100 a month since 2020 whose contract is scheduled to end in ten
    days: it has not churned yet."""
    today = dt.datetime.now(dt.UTC).date()
    acc = AccountFactory(external_id="leaving", name="Leaving", owner=csm, segment="SMB")
    ContractFactory(
        account=acc,
        start_date=dt.date(2020, 1, 1),
        end_date=today + dt.timedelta(days=10),
        mrr=Decimal("100.00"),
    )
    return today


def test_api_future_end_is_cut_to_date_and_says_so(admin_user, scheduled_end):
    today = scheduled_end
    start = today.replace(day=1)
    asked = today + dt.timedelta(days=60)  # the contract's last day (today + 10) is before
    r = _api(admin_user).get(
        reverse("kpis:report"), {"start": start.isoformat(), "end": asked.isoformat()}
    )
    assert r.status_code == 200, r.content
    body = r.json()
    tomorrow = today + dt.timedelta(days=1)
    period = body["period"]
    assert period["end"] == tomorrow.isoformat()
    assert period["as_of"] == today.isoformat()
    assert period["requested_end"] == asked.isoformat()
    assert period["to_date"] is True
    assert "to date" in period["note"] and today.isoformat() in period["note"]
    # m0 = 100 on start, m1 = 100 on tomorrow (the contract runs to today + 10): no churn,
    # NRR = (100 + 0 − 0 − 0) / 100 × 100 = 100. Uncut, end = today + 60 > today + 10 gave
    # m1 = 0: churn 100 and NRR 0.
    assert body["revenue"]["churn_mrr"]["value"] == "0.00"
    assert Decimal(body["retention"]["nrr"]["value"]) == Decimal(100)
    # the movements and cohorts doors cut the same way
    for name in ("kpis:movements", "kpis:cohorts"):
        r = _api(admin_user).get(
            reverse(name), {"start": start.isoformat(), "end": asked.isoformat()}
        )
        assert r.status_code == 200, r.content
        assert r.json()["period"]["end"] == tomorrow.isoformat()
        assert r.json()["period"]["to_date"] is True
    r = _api(admin_user).get(
        reverse("kpis:movements"), {"start": start.isoformat(), "end": asked.isoformat()}
    )
    assert r.json()["movements"]["churn"]["amount"] == "0.00"


def test_api_end_of_tomorrow_is_not_cut(admin_user, scheduled_end):
    today = scheduled_end
    tomorrow = today + dt.timedelta(days=1)
    r = _api(admin_user).get(
        reverse("kpis:report"),
        {"start": today.replace(day=1).isoformat(), "end": tomorrow.isoformat()},
    )
    assert r.status_code == 200, r.content
    period = r.json()["period"]
    assert period["end"] == period["requested_end"] == tomorrow.isoformat()
    assert period["to_date"] is False and "note" not in period


def test_api_period_starting_after_today_is_a_400(admin_user, scheduled_end):
    later = scheduled_end + dt.timedelta(days=1)
    r = _api(admin_user).get(
        reverse("kpis:report"),
        {"start": later.isoformat(), "end": (later + dt.timedelta(days=30)).isoformat()},
    )
    assert r.status_code == 400
    assert "after today" in r.json()["start"][0]


def test_command_current_quarter_is_to_date(scheduled_end):
    today = scheduled_end
    start, end = period_bounds("quarter", today)
    body = json.loads(_kpis("--period", "quarter", "--json"))
    tomorrow = today + dt.timedelta(days=1)
    assert body["period"]["start"] == start.isoformat()
    assert body["period"]["end"] == min(end, tomorrow).isoformat()
    assert body["period"]["requested_end"] == end.isoformat()
    # m0 = 100 on the quarter's first day, m1 = 100 on tomorrow: no churn yet
    assert body["revenue"]["churn_mrr"]["value"] == "0.00"
    # a far end: the table says plainly that the figures are to date
    out = _kpis("--start", start.isoformat(), "--end", (today + dt.timedelta(days=60)).isoformat())
    assert "TO DATE ONLY" in out and f"through {today}" in out
    assert f"[{start}, {tomorrow})" in out


def test_command_period_starting_after_today_is_refused(scheduled_end):
    later = scheduled_end + dt.timedelta(days=5)
    with pytest.raises(CommandError, match="--start: the period starts on .* after today"):
        _kpis("--start", later.isoformat(), "--end", (later + dt.timedelta(days=30)).isoformat())
