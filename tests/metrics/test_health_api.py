"""An account's health through the API: the latest snapshot, its history, what changed, and
the health/ARR/renewal/priority the account list and detail take from the standing."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import utc
from accounts.models import Account, Role
from accounts.serializers import HEALTH_BANDS
from config.docs import doc_html
from metrics import health
from metrics.api import HEALTH_DOCS, NO_SNAPSHOT
from metrics.models import AccountStanding, Band, HealthSnapshot
from metrics.services import health_model_ensure_default
from metrics.standings import account_standings_refresh
from tests.conftest import _user
from tests.factories import AccountFactory, ContractFactory, token_client

pytestmark = pytest.mark.django_db

D = dt.date(2024, 3, 31)


def _version():
    return health_model_ensure_default().versions.get(active=True)


# Two components with data and one without. Usage 60 weighs 35, support 100 weighs 15,
# payments (weight 10) has no data and is left out, so the weights are scaled over 35 + 15
# = 50: usage's share 35 / 50 = 0.7, support's 15 / 50 = 0.3, and the score is
# 0.7 × 60 + 0.3 × 100 = 42 + 30 = 72.0: yellow (50 <= 72 < 80).
USAGE = {
    "key": "usage", "label": "Usage", "weight": 35, "share": 0.7, "score": 60.0,
    "computed_score": 60.0, "inputs": {"seat_utilisation": 30.0}, "reason": "usage 60/100",
    "measure_points": {"seat_utilisation": 60.0}, "overridden": False,
}  # fmt: skip
SUPPORT = {
    "key": "support", "label": "Support", "weight": 15, "share": 0.3, "score": 100.0,
    "computed_score": 100.0, "inputs": {"open_escalations": 0}, "reason": "support 100/100",
    "measure_points": {"open_escalations": 100.0}, "overridden": False,
}  # fmt: skip
PAYMENTS = {
    "key": "payments", "label": "Payments", "weight": 10, "share": None, "score": None,
    "computed_score": None, "inputs": {}, "reason": "payments: no data",
    "measure_points": {"overdue_invoices": None}, "overridden": False,
}  # fmt: skip
SCORE = 0.7 * 60 + 0.3 * 100  # 72.0


def _snapshot(account, day=D, *, score=SCORE, overrides=(), computed_score=None, **extra):
    version = _version()
    band = health.band_for(score, green_min=version.green_min, yellow_min=version.yellow_min)
    computed = score if computed_score is None else computed_score
    fields = {
        "account": account,
        "day": day,
        "model_version": version,
        "score": score,
        "band": band,
        "computed_score": computed,
        "computed_band": health.band_for(
            computed, green_min=version.green_min, yellow_min=version.yellow_min
        ),
        "components": [USAGE, SUPPORT, PAYMENTS],
        "left_out": ["payments"],
        "reasons": ["usage 60/100", "support 100/100"],
        "overrides": list(overrides),
    }
    return HealthSnapshot.objects.create(**{**fields, **extra})


@pytest.fixture
def other_csm(db, manager):
    return _user("other@example.com", Role.CSM, manager=manager)


@pytest.fixture
def mine(csm):
    return AccountFactory(owner=csm)


def _latest(client, account):
    return client.get(reverse("health-api:latest", args=[account.pk]))


# --- the latest snapshot ------------------------------------------------------------------


def test_latest_snapshot_shows_the_score_its_components_and_its_model(csm, mine):
    _snapshot(mine, D - dt.timedelta(days=1), score=40.0)
    _snapshot(mine)
    r = _latest(token_client(csm), mine)
    assert r.status_code == 200, r.json()
    body = r.json()
    version = _version()
    assert body == {
        "account_id": mine.pk,
        "day": "2024-03-31",  # the newest of the two days
        "score": 72.0,
        "band": "yellow",
        "overridden": False,
        "computed_score": None,  # only beside an override
        "computed_band": None,
        "components": [USAGE, SUPPORT, PAYMENTS],
        "left_out": ["payments"],
        "reasons": ["usage 60/100", "support 100/100"],
        "overrides": [],
        "model": version.model.name,
        "model_version": version.version,
        "docs": HEALTH_DOCS,
    }
    # the shares of the components with data make the score: 0.7 × 60 + 0.3 × 100
    used = [c for c in body["components"] if c["share"] is not None]
    assert sum(c["share"] * c["score"] for c in used) == pytest.approx(body["score"])
    # the link lands on the health section of docs/metrics.md (GitHub-style heading ids)
    path, anchor = HEALTH_DOCS.split("#")
    assert path == "docs/metrics.md"
    assert doc_html("metrics.md")[1]["Health scores"] == anchor


def test_an_override_shows_the_computed_score_and_band_beside_the_shown_ones(csm, mine):
    override = {
        "id": 7, "component": "", "score": 85.0, "band": "", "reason": "renewal signed",
        "expires_at": "2024-04-30T00:00:00+00:00", "created_by": "csm@example.com",
    }  # fmt: skip
    _snapshot(mine, score=85.0, computed_score=SCORE, overrides=[override])
    body = _latest(token_client(csm), mine).json()
    assert (body["score"], body["band"]) == (85.0, "green")  # 85 >= 80
    assert (body["computed_score"], body["computed_band"]) == (72.0, "yellow")
    assert body["overridden"] is True and body["overrides"] == [override]


def test_a_snapshot_without_data_has_a_null_score_and_band(csm, mine):
    _snapshot(mine, score=None, components=[PAYMENTS], left_out=["payments"], reasons=[])
    body = _latest(token_client(csm), mine).json()
    assert (body["score"], body["band"]) == (None, None)


def test_no_snapshot_yet_is_a_404_that_says_so(csm, mine):
    r = _latest(token_client(csm), mine)
    assert r.status_code == 404 and r.json() == {"detail": NO_SNAPSHOT}


def test_another_csms_account_is_a_404_like_its_detail(csm, other_csm):
    theirs = AccountFactory(owner=other_csm)
    _snapshot(theirs)
    client = token_client(csm)
    detail = client.get(reverse("api:account-detail", args=[theirs.pk]))
    assert detail.status_code == 404
    for name in ("latest", "history", "changes"):
        r = client.get(
            reverse(f"health-api:{name}", args=[theirs.pk]),
            {"start": "2024-03-01", "end": "2024-04-01"} if name == "history" else {},
        )
        # the same answer as the account's detail: nothing says the account exists
        assert r.status_code == 404 and r.json() == detail.json(), name
    # their own CSM and the manager over both see it
    assert _latest(token_client(other_csm), theirs).status_code == 200


def test_an_unknown_account_is_a_404(csm):
    assert _latest(token_client(csm), Account(pk=987654)).status_code == 404


def test_the_health_endpoints_are_read_only(csm, mine):
    _snapshot(mine)
    client = token_client(csm)
    for name in ("latest", "history", "changes"):
        url = reverse(f"health-api:{name}", args=[mine.pk])
        for method in (client.post, client.put, client.patch, client.delete):
            assert method(url, {}, format="json").status_code == 405, (name, method)


# --- history --------------------------------------------------------------------------------


def _history(client, account, **params):
    return client.get(reverse("health-api:history", args=[account.pk]), params)


def test_history_lists_the_days_of_start_up_to_but_not_including_end(csm, mine):
    for n in range(5):  # 2024-03-27 … 2024-03-31
        _snapshot(mine, D - dt.timedelta(days=4 - n), score=60.0 + n)
    r = _history(token_client(csm), mine, start="2024-03-28", end="2024-03-31")
    assert r.status_code == 200, r.json()
    body = r.json()
    # [03-28, 03-31): the 28th, 29th and 30th, scored 60 + 1, 60 + 2, 60 + 3
    assert body["count"] == 3
    version = _version()
    assert body["results"][0] == {
        "day": "2024-03-28",
        "score": 61.0,
        "band": "yellow",
        "overridden": False,
        "model": version.model.name,
        "model_version": version.version,
    }
    assert [(row["day"], row["score"]) for row in body["results"]] == [
        ("2024-03-28", 61.0),
        ("2024-03-29", 62.0),
        ("2024-03-30", 63.0),
    ]


def test_history_components_only_when_asked_and_pages_like_the_other_lists(csm, mine):
    for n in range(5):
        _snapshot(mine, D - dt.timedelta(days=n))
    client = token_client(csm)
    page = _history(client, mine, start="2024-03-01", end="2024-04-01", page_size=2).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    assert "components" not in page["results"][0]
    full = _history(client, mine, start="2024-03-31", end="2024-04-01", components="true").json()
    assert full["results"][0]["components"] == [USAGE, SUPPORT, PAYMENTS]


def test_history_takes_the_kpi_endpoints_period_too(csm, mine):
    _snapshot(mine, dt.date(2024, 2, 29))
    _snapshot(mine, D)
    body = _history(token_client(csm), mine, period="month", date="2024-03-15").json()
    assert [row["day"] for row in body["results"]] == ["2024-03-31"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start": "2024-03-31", "end": "2024-03-01"}, "end", "must be after start (2024-03-31)"),
        ({"start": "2024-03-01", "end": "2024-03-01"}, "end", "must be after start (2024-03-01)"),
        ({"start": "yesterday", "end": "2024-03-01"}, "start", "use YYYY-MM-DD"),
        ({"end": "2024-03-01"}, "start", "required (YYYY-MM-DD), unless period is given"),
        ({"period": "week"}, "period", '"week" is not a valid choice: month, quarter, year.'),
        ({"start": "1800-01-01", "end": "2024-03-01"}, "start", "must be on or after 1900-01-01"),
        (
            {"start": "2024-03-01", "end": "2024-04-01", "components": "maybe"},
            "components",
            "boolean",
        ),
        (
            {"start": "2024-03-01", "end": "2024-04-01", "page_size": "0"},
            "page_size",
            "whole number",
        ),
        # the KPI endpoints' checks (today is utc.today(); these are years after it)
        (
            {"start": "2100-01-01", "end": "2100-02-01"},
            "start",
            "the period starts on 2100-01-01, after today (",
        ),
        # a period around a future date: the error is on the date the caller gave
        (
            {"period": "year", "date": "2100-06-01"},
            "date",
            "the year containing 2100-06-01 starts on 2100-01-01, after today (",
        ),
        ({"start": "2024-03-01", "end": "2024-04-01", "start ": "x"}, "start ", "not a param"),
    ],
)
def test_bad_history_parameters_are_400_naming_the_parameter(csm, mine, params, field, message):
    _snapshot(mine)
    r = _history(token_client(csm), mine, **params)
    assert r.status_code == 400, r.json()
    assert field in r.json() and message in r.json()[field][0], r.json()


HISTORY_TAKES = (
    "not a parameter of this endpoint; it takes start, end, period, date, components, page, "
    "page_size"
)


@pytest.mark.parametrize(
    "params",
    [{"segment": "XL"}, {"owner": "csm@example.com"}, {"account": ""}, {"foo": "bar"}],
)
def test_history_refuses_what_it_does_not_take_the_kpi_scope_too(csm, mine, params):
    """The KPI endpoints' period, not their scope: the account is in the path."""
    _snapshot(mine)
    url = reverse("health-api:history", args=[mine.pk])
    r = token_client(csm).get(url, {"start": "2024-03-01", "end": "2024-04-01", **params})
    assert r.status_code == 400, r.json()
    assert r.json() == {name: [HISTORY_TAKES] for name in params}


def test_history_a_period_of_today_is_fine(csm, mine):
    r = _history(token_client(csm), mine, period="month")
    assert r.status_code == 200, r.json()


def test_changes_refuse_what_they_do_not_take(csm, mine):
    _snapshot(mine)
    url = reverse("health-api:changes", args=[mine.pk])
    r = token_client(csm).get(url, {"from": "2024-03-01", "form": "2024-03-01"})
    assert r.status_code == 400
    assert r.json() == {"form": ["not a parameter of this endpoint; it takes from, to"]}


def test_history_reads_a_fixed_number_of_queries(csm, mine, django_assert_num_queries):
    for n in range(30):
        _snapshot(mine, D - dt.timedelta(days=n))
    client = token_client(csm)
    url = reverse("health-api:history", args=[mine.pk])
    params = {"start": "2024-01-01", "end": "2024-04-01", "components": "true"}
    client.get(url, params)  # the token's last_used_at is written once a minute: warm it
    # token, the user's groups (role), the account (visible?), count, page (with the model
    # version and model joined)
    with django_assert_num_queries(5):
        assert client.get(url, params).json()["count"] == 30


# --- what changed ---------------------------------------------------------------------------


def _changes(client, account, **params):
    return client.get(reverse("health-api:changes", args=[account.pk]), params)


def test_changes_compare_with_a_week_before_in_words(csm, mine):
    week_before = D - dt.timedelta(days=7)
    fell = {**USAGE, "score": 30.0, "computed_score": 30.0}
    # the same two components with usage 30 instead of 60: 0.7 × 30 + 0.3 × 100 = 51.0
    _snapshot(mine, week_before)
    _snapshot(mine, D - dt.timedelta(days=3), score=10.0)  # in between: not compared
    _snapshot(mine, D, score=0.7 * 30 + 0.3 * 100, components=[fell, SUPPORT, PAYMENTS])
    r = _changes(token_client(csm), mine)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["from"]["day"], body["to"]["day"]) == ("2024-03-24", "2024-03-31")
    assert body["changes"][0] == "score fell from 72 to 51"
    assert body["changes"][1].startswith("usage fell from 60 to 30")
    assert len(body["changes"]) == 2  # support did not change; payments still has no data


def test_changes_between_named_days_take_the_snapshot_on_or_before_each(csm, mine):
    _snapshot(mine, dt.date(2024, 3, 1), score=90.0)
    _snapshot(mine, dt.date(2024, 3, 10), score=SCORE)
    client = token_client(csm)
    body = _changes(client, mine, **{"from": "2024-03-05", "to": "2024-03-20"}).json()
    assert (body["from"]["day"], body["to"]["day"]) == ("2024-03-01", "2024-03-10")
    # 90 green → 72 yellow
    assert body["changes"][0] == "score fell from 90 to 72 (green → yellow)"
    same = _changes(client, mine, **{"from": "2024-03-01", "to": "2024-03-01"})
    assert same.status_code == 400 and "from" in same.json()
    early = _changes(client, mine, **{"from": "2024-02-01", "to": "2024-03-10"})
    assert early.json() == {
        "from": ["no health snapshot on or before 2024-02-01; the earliest is of 2024-03-01"]
    }
    bad = _changes(client, mine, **{"to": "soon"})
    assert bad.status_code == 400 and "to" in bad.json()


def test_changes_say_which_snapshot_each_day_came_to(csm, mine):
    _snapshot(mine, dt.date(2024, 3, 4))
    _snapshot(mine, dt.date(2024, 3, 11))
    client = token_client(csm)
    # 03-12 and 03-13 both come to the snapshot of 03-11 (none after it): the message says
    # so, with the days the caller gave, and which from would work
    r = _changes(client, mine, **{"from": "2024-03-12", "to": "2024-03-13"})
    assert r.status_code == 400
    assert r.json() == {
        "from": [
            "2024-03-12 and to (2024-03-13) both come to the snapshot of 2024-03-11, the "
            "latest on or before each (there is none after it up to 2024-03-13): nothing to "
            "compare; give a from before 2024-03-11"
        ]
    }
    r = _changes(client, mine, **{"from": "2024-03-12"})
    assert r.json() == {
        "from": [
            "2024-03-12 comes to the newest snapshot, of 2024-03-11 (the latest on or before "
            "it), which is also the later one: nothing to compare; give a from before "
            "2024-03-11"
        ]
    }
    r = _changes(client, mine, **{"from": "2024-03-13", "to": "2024-03-12"})
    assert r.json() == {"from": ["must be a day before to (2024-03-12), got 2024-03-13"]}
    r = _changes(client, mine, to="2024-03-01")
    assert r.json() == {
        "to": ["no health snapshot on or before 2024-03-01; the earliest is of 2024-03-04"]
    }
    # the answer the message points to
    r = _changes(client, mine, **{"from": "2024-03-10", "to": "2024-03-13"})
    assert r.status_code == 200
    assert (r.json()["from"]["day"], r.json()["to"]["day"]) == ("2024-03-04", "2024-03-11")


def test_changes_with_a_history_shorter_than_a_week_say_where_from_came_from(csm, mine):
    _snapshot(mine, dt.date(2024, 3, 9))
    _snapshot(mine, dt.date(2024, 3, 11))
    r = _changes(token_client(csm), mine)
    # from not given: a week before the newest (03-11) is 03-04, before the first snapshot
    assert r.status_code == 400
    assert r.json() == {
        "from": [
            "not given, so a week before the later snapshot (of 2024-03-11): 2024-03-04; "
            "no health snapshot on or before 2024-03-04; the earliest is of 2024-03-09"
        ]
    }


def test_history_without_a_period_is_the_90_days_ending_with_the_newest_snapshot(
    csm, mine, django_assert_num_queries
):
    for n in range(100):  # 100 days: 2023-12-23 … 2024-03-31
        _snapshot(mine, D - dt.timedelta(days=n))
    client = token_client(csm)
    url = reverse("health-api:history", args=[mine.pk])
    client.get(url)  # the token's last_used_at is written once a minute: warm it
    # the pinned 5 (token, groups, account, count, page) and the newest snapshot's day
    with django_assert_num_queries(6):
        body = client.get(url, {"page_size": 100}).json()
    # [03-31 − 89 days, 03-31 + 1 day) = [2024-01-02, 2024-04-01): 90 days
    assert body["count"] == 90
    days = [row["day"] for row in body["results"]]
    assert (days[0], days[-1]) == ("2024-01-02", "2024-03-31")
    with_components = client.get(url, {"components": "true"}).json()
    assert with_components["count"] == 90 and "components" in with_components["results"][0]


def test_history_without_a_period_or_snapshots_is_an_empty_list(csm, mine):
    r = _history(token_client(csm), mine)
    assert r.status_code == 200 and r.json()["count"] == 0


def test_changes_without_snapshots_is_a_404(csm, mine):
    r = _changes(token_client(csm), mine)
    assert r.status_code == 404 and r.json() == {"detail": NO_SNAPSHOT}


# --- the account list and detail ------------------------------------------------------------


def test_account_detail_shows_health_arr_renewal_and_priority_of_its_standing(csm, mine):
    today = utc.today()
    renewal = today + dt.timedelta(days=60)
    ContractFactory(account=mine, start_date=today - dt.timedelta(days=30), end_date=renewal,
                    mrr=Decimal("1250.00"))  # fmt: skip
    ContractFactory(account=mine, start_date=today - dt.timedelta(days=30), end_date=None,
                    mrr=Decimal("100.50"))  # fmt: skip
    _snapshot(mine, today)
    account_standings_refresh(account_ids=[mine.pk])
    standing = AccountStanding.objects.get(account=mine)
    r = token_client(csm).get(reverse("api:account-detail", args=[mine.pk]))
    body = r.json()
    assert body["health"] == {
        "score": 72.0,
        "band": "yellow",
        "day": today.isoformat(),
        "overridden": False,
    }
    # ARR = 12 × (1250.00 + 100.50) = 12 × 1350.50 = 16206.00
    assert body["arr"] == "16206.00"
    assert body["renewal_on"] == renewal.isoformat()  # the earliest end in force
    assert body["priority"] == standing.priority


def test_an_account_without_a_standing_has_null_health(csm, mine):
    body = token_client(csm).get(reverse("api:account-detail", args=[mine.pk])).json()
    assert body["health"] is None
    assert (body["arr"], body["renewal_on"], body["priority"]) == (None, None, None)


def _standing(account, band, *, score, day=D, overridden=False):
    _snapshot(account, day, score=score, overrides=[{"id": 1}] if overridden else [])
    return AccountStanding.objects.create(
        account=account,
        day=day,
        score=score,
        band=band,
        overridden=overridden,
        arr=Decimal("1200.00"),
        priority=1.5,
    )


def test_the_list_flags_an_override_in_force_on_the_standings_day(csm):
    from metrics.standings import account_standings_refresh

    plain, overridden = AccountFactory(owner=csm, name="A"), AccountFactory(owner=csm, name="B")
    _snapshot(plain, D, score=SCORE)
    _snapshot(overridden, D, score=85.0, overrides=[{"id": 1}])
    # an override on another day than the standing's does not count
    _snapshot(plain, D - dt.timedelta(days=1), overrides=[{"id": 2}])
    account_standings_refresh(account_ids=[plain.pk, overridden.pk])  # from the day-D ones
    rows = token_client(csm).get(reverse("api:account-list")).json()["results"]
    assert [(row["name"], row["health"]["overridden"]) for row in rows] == [
        ("A", False),
        ("B", True),
    ]


def test_band_filter(csm):
    red, yellow, green = (AccountFactory(owner=csm, name=n) for n in ("R", "Y", "G"))
    AccountFactory(owner=csm, name="none")  # no standing: in no band
    _standing(red, "red", score=20.0)
    _standing(yellow, "yellow", score=SCORE)
    _standing(green, "green", score=90.0)
    client = token_client(csm)
    url = reverse("api:account-list")
    for band, name in (("red", "R"), ("yellow", "Y"), ("green", "G")):
        r = client.get(url, {"band": band})
        assert [row["name"] for row in r.json()["results"]] == [name], band
        assert r.json()["results"][0]["health"]["band"] == band
    assert client.get(url).json()["count"] == 4


@pytest.mark.parametrize("value", ["purple", "", "RED"])
def test_an_unknown_band_is_a_400_naming_the_parameter(csm, value):
    r = token_client(csm).get(reverse("api:account-list"), {"band": value})
    assert r.status_code == 400 and "band" in r.json(), r.json()


def test_the_bands_of_the_filter_are_the_health_models(csm):
    # accounts does not import metrics: its copy of the bands must not drift
    assert Band.choices == HEALTH_BANDS


@pytest.mark.parametrize("rows", [2, 12])
def test_the_account_list_reads_a_fixed_number_of_queries(csm, rows, django_assert_num_queries):
    for n in range(rows):
        _standing(AccountFactory(owner=csm), "yellow", score=SCORE, overridden=n % 2 == 0)
    client = token_client(csm)
    url = reverse("api:account-list")
    client.get(url)  # the token's last_used_at is written once a minute: warm it
    # token, the user's groups (role), count, page: the standing (with its override flag)
    # joined and data_as_of as a subquery of the page's query
    with django_assert_num_queries(4):
        r = client.get(url, {"band": "yellow"})
    assert r.json()["count"] == rows
    assert sum(row["health"]["overridden"] for row in r.json()["results"]) == (rows + 1) // 2


# --- schema ---------------------------------------------------------------------------------


def test_the_schema_documents_the_health_endpoints(admin_user):
    r = token_client(admin_user).get("/api/schema/", {"format": "json"})
    schema = json.loads(r.content)
    paths = schema["paths"]
    latest = paths["/api/v1/accounts/{account_id}/health/"]["get"]
    assert {"200", "401", "404"} <= set(latest["responses"])
    history = paths["/api/v1/accounts/{account_id}/health/history/"]["get"]
    names = {p["name"] for p in history["parameters"]}
    assert {"start", "end", "period", "date", "components", "page", "page_size"} <= names
    assert "400" in history["responses"]
    assert "the 90 days ending with the newest snapshot" in history["description"]
    changes = paths["/api/v1/accounts/{account_id}/health/changes/"]["get"]
    assert {"from", "to"} <= {p["name"] for p in changes["parameters"]}
    account = schema["components"]["schemas"]["Account"]["properties"]
    assert {"health", "arr", "renewal_on", "priority"} <= set(account)
    account_list = paths["/api/v1/accounts/"]["get"]
    assert "band" in {p["name"] for p in account_list["parameters"]}


def _scored(account, day, values, overrides=()):
    """A snapshot as the nightly step records it: the default model's score of ``values``."""
    version = _version()
    h = health.score(version.spec(), values, overrides=overrides)
    return HealthSnapshot.objects.create(
        account=account,
        day=day,
        model_version=version,
        score=h.score,
        band=h.band,
        computed_score=h.computed_score,
        computed_band=h.computed_band,
        components=[c.as_json() for c in h.components],
        left_out=list(h.left_out),
        reasons=list(h.reasons),
        overrides=[o.as_json() for o in h.overrides],
    )


def test_changes_say_units_money_and_a_band_override_in_words(csm, mine, settings):
    settings.CURRENCY = "EUR"
    paid = {"overdue_invoices": 0, "overdue_amount": "0.00", "failed_payments_90d": 0}
    _scored(mine, dt.date(2024, 3, 1), {"csat": 80.0, "ces": 5.45, **paid})
    band = health.Override(
        id=1, reason="renewal signed", expires_at="2024-04-30T00:00:00+00:00", band="green"
    )
    owed = {**paid, "overdue_invoices": 1, "overdue_amount": "1200.00"}
    _scored(mine, dt.date(2024, 3, 8), {"csat": 90.0, "ces": 5.5, **owed}, overrides=[band])
    body = _changes(token_client(csm), mine, **{"from": "2024-03-01", "to": "2024-03-08"}).json()
    # default model, only sentiment (10) and payments (10) have data: equal shares.
    # 03-01: CSAT 80 on [50, 100] → 60, CES 5.45 on [1, 7] → 4.45 / 6 = 74.17 → 74.2,
    # sentiment (60 + 74.2) / 2 = 67.1; payments 100; score (67.1 + 100) / 2 = 83.55 → 83.6.
    # 03-08: CSAT 90 → 80, CES 5.5 → 75, sentiment 77.5; one overdue invoice → 40, no failed
    # payment → 100, payments 70; score (77.5 + 70) / 2 = 73.75 → 73.8: yellow, set green
    assert body["changes"] == [
        "score fell from 83.6 to 73.8",
        "band set to green by hand, computed yellow (“renewal signed”)",
        "payments fell from 100 to 70: overdue invoices 0 → 1, overdue amount €0.00 → €1,200.00",
        "sentiment rose from 67.1 to 77.5: CSAT 80% → 90%, CES 5.45 → 5.50",
    ]
