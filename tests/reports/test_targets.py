"""Targets: the defaults, the editor page and the API refuse nonsense with field errors,
the periods each cadence evaluates, the pages' permissions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import ApiToken
from reports import catalog, services
from reports.models import KpiTarget
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def test_defaults_are_loaded_on_a_new_installation_and_reloading_is_idempotent():
    # the migration loaded them: 13 benchmark targets for all accounts, in three tiers
    rows = {t.kpi: t for t in KpiTarget.objects.all()}
    assert len(rows) == len(catalog.DEFAULTS) == 13
    assert (rows["nrr"].direction, rows["nrr"].value, rows["nrr"].cadence) == (
        "at_least",
        Decimal("100"),
        "weekly",
    )
    assert (rows["grr"].value, rows["logo_churn_rate"].direction) == (Decimal("90"), "at_most")
    assert (rows["nps"].value, rows["nps"].cadence) == (Decimal("30"), "monthly")
    assert (rows["ttfv"].value, rows["ttfv"].direction) == (Decimal("30"), "at_most")
    assert rows["dso"].cadence == rows["ces"].cadence == "quarterly"
    # edited, then the defaults again: the edit survives, nothing is added twice
    KpiTarget.objects.filter(kpi="nrr").update(value=105)
    KpiTarget.objects.filter(kpi="dso").delete()
    assert services.targets_load_defaults() == 1  # only DSO comes back
    assert services.targets_load_defaults() == 0
    assert KpiTarget.objects.get(kpi="nrr").value == Decimal("105")
    assert KpiTarget.objects.count() == 13


@pytest.mark.parametrize(
    ("kpi", "value", "message"),
    [
        ("nps", "150", "NPS cannot be above 100, got 150"),
        ("logo_churn_rate", "-1", "Logo churn cannot be below 0%, got -1"),
        ("grr", "120", "GRR cannot be above 100%, got 120"),
        ("ces", "0", "CES cannot be below 1, got 0"),
    ],
)
def test_nonsense_values_are_refused_with_field_errors_in_the_ui(
    client, admin_user, no_default_targets, kpi, value, message
):
    client.force_login(admin_user)  # the whole book is for admins
    before = KpiTarget.objects.count()
    response = client.post(
        "/targets/",
        {
            "kpi": kpi,
            "scope_kind": "all",
            "direction": "at_least",
            "value": value,
            "cadence": "monthly",
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {"value": [message]}
    assert message in response.content.decode()
    assert KpiTarget.objects.count() == before


def test_the_api_refuses_nonsense_and_unknown_scopes_with_field_errors(client, manager):
    client.force_login(manager)
    response = client.post(
        "/api/v1/targets/",
        {
            "kpi": "nps",
            "direction": "at_least",
            "value": "150",
            "cadence": "yearly",
            "scope_kind": "segment",
            "scope_key": "Nowhere",
            "max_change": "-3",
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    body = response.json()
    assert "cadence" in body  # not one of the choices
    response = client.post(
        "/api/v1/targets/",
        {
            "kpi": "nps",
            "direction": "at_least",
            "value": "150",
            "cadence": "monthly",
            "scope_kind": "segment",
            "scope_key": "Nowhere",
            "max_change": "-3",
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"value", "scope_key", "max_change"}
    assert body["value"] == ["NPS cannot be above 100, got 150.00"]
    assert body["scope_key"] == ["no account has segment 'Nowhere': no account has a segment yet"]
    assert not KpiTarget.objects.filter(kpi="nps").exclude(scope_kind="all").exists()


def test_api_patch_is_checked_against_the_whole_target_and_csms_cannot_write(
    client, admin_user, csm
):
    AccountFactory(segment="Enterprise", owner=csm)
    nps = KpiTarget.objects.get(kpi="nps")
    client.force_login(admin_user)  # the whole book and segments are for admins
    bad = client.patch(
        f"/api/v1/targets/{nps.pk}/", {"value": "101"}, content_type="application/json"
    )
    assert bad.status_code == 400 and "value" in bad.json()
    ok = client.patch(
        f"/api/v1/targets/{nps.pk}/",
        {"value": "40", "owner": admin_user.pk},
        content_type="application/json",
    )
    assert ok.status_code == 200, ok.json()
    nps.refresh_from_db()
    assert (nps.value, nps.owner) == (Decimal("40"), admin_user)
    seg = client.post(
        "/api/v1/targets/",
        {
            "kpi": "nps",
            "direction": "at_least",
            "value": "20",
            "cadence": "monthly",
            "scope_kind": "segment",
            "scope_key": "Enterprise",
        },
        content_type="application/json",
    )
    assert seg.status_code == 201, seg.json()
    client.force_login(csm)
    assert client.get("/api/v1/targets/").status_code == 200
    assert (
        client.patch(
            f"/api/v1/targets/{nps.pk}/", {"value": "10"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/targets/{nps.pk}/").status_code == 403


def test_a_read_only_token_cannot_write(client, admin_user):
    _token, key = ApiToken.issue(user=admin_user, name="tests", scope=ApiToken.Scope.READ)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert client.get("/api/v1/targets/", **auth).status_code == 200
    response = client.post(
        "/api/v1/targets/", {"kpi": "nps"}, content_type="application/json", **auth
    )
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]


def test_the_editor_saves_a_target_for_an_owner_and_csms_get_403(client, manager, csm):
    AccountFactory(owner=csm)
    client.force_login(manager)
    response = client.post(
        "/targets/",
        {
            "kpi": "nrr",
            "scope_kind": "owner",
            "scope_key": str(csm.pk),
            "direction": "at_least",
            "value": "95",
            "cadence": "weekly",
            "max_change": "5",
            "owner": manager.pk,
        },
    )
    assert response.status_code == 302
    target = KpiTarget.objects.get(kpi="nrr", scope_kind="owner")
    assert (target.value, target.max_change, target.owner) == (Decimal("95"), Decimal("5"), manager)
    page = client.get("/targets/").content.decode()
    assert "owner&#x27;s book: Cleo (csm@example.com)" in page  # named, not by id
    # the same KPI and scope twice: a field error, not a 500
    again = client.post(
        "/targets/",
        {
            "kpi": "nrr",
            "scope_kind": "owner",
            "scope_key": str(csm.pk),
            "direction": "at_least",
            "value": "90",
            "cadence": "weekly",
        },
    )
    assert again.status_code == 400
    assert again.context["form"].non_field_errors() == [
        "This KPI has a target for this scope already: edit it."
    ]
    client.force_login(csm)
    assert client.get("/targets/").status_code == 403
    assert client.get("/targets/off-track/").status_code == 403
    assert client.get(f"/targets/{target.pk}/").status_code == 403


@pytest.mark.parametrize(
    ("cadence", "day", "period"),
    [
        ("weekly", dt.date(2026, 11, 1), "2026-W44"),  # a Sunday: the Monday run
        ("weekly", dt.date(2026, 10, 31), None),
        ("weekly", dt.date(2027, 1, 3), "2026-W53"),  # ISO year 2026 has 53 weeks
        ("monthly", dt.date(2026, 2, 28), "2026-02"),
        ("monthly", dt.date(2026, 2, 27), None),
        ("quarterly", dt.date(2026, 9, 30), "2026-Q3"),
        ("quarterly", dt.date(2026, 10, 31), None),
    ],
)
def test_the_period_that_ends_on_a_day(cadence, day, period):
    assert catalog.period_ending(cadence, day) == period


def test_previous_period_ends():
    assert catalog.previous_period_end("weekly", dt.date(2026, 11, 1)) == dt.date(2026, 10, 25)
    assert catalog.previous_period_end("monthly", dt.date(2026, 3, 31)) == dt.date(2026, 2, 28)
    assert catalog.previous_period_end("quarterly", dt.date(2026, 12, 31)) == dt.date(2026, 9, 30)
    assert catalog.previous_period_end("quarterly", dt.date(2026, 3, 31)) == dt.date(2025, 12, 31)
    assert catalog.period_ends("monthly", dt.date(2026, 3, 31), 3) == [
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
    ]


@pytest.mark.parametrize("param", ["page", "page_size"])
def test_the_api_list_refuses_a_page_or_size_given_twice_like_the_other_lists(
    client, manager, param
):
    """The targets list pages as the other lists do (``accounts.api.ApiPagination``): given
    twice, DRF's own paginator read the last value (``?page=1&page=2`` was page 2)."""
    client.force_login(manager)
    r = client.get(f"/api/v1/targets/?{param}=1&{param}=2")
    assert r.status_code == 400
    assert r.json() == {param: ["given 2 times (“1”, “2”): give it once"]}


def test_the_api_list_pages_and_sizes_like_the_other_lists(client, manager):
    client.force_login(manager)
    total = KpiTarget.objects.count()
    assert total > 2  # the defaults of a new installation
    first = client.get("/api/v1/targets/", {"page_size": "2"}).json()
    second = client.get("/api/v1/targets/", {"page_size": "2", "page": "2"}).json()
    assert first["count"] == second["count"] == total
    ids = [t["id"] for t in first["results"] + second["results"]]
    assert ids == list(KpiTarget.objects.order_by("pk").values_list("pk", flat=True)[:4])
    r = client.get("/api/v1/targets/", {"page": "0"})
    assert r.status_code == 400 and r.json() == {"page": ["must be a whole number from 1, got '0'"]}
    r = client.get("/api/v1/targets/", {"kpi": "nps"})
    assert r.status_code == 400
    assert r.json() == {"kpi": ["not a parameter of this endpoint; it takes page, page_size"]}
