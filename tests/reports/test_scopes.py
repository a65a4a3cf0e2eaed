"""The scope of a target or a scheduled report, for people: an owner's book is chosen by the
owner's name (or typed as an email or full name) and stored as the user id the KPI snapshots
key it by; a segment matches ignoring case and is stored as the accounts spell it; an unknown
one is refused with the ones that exist. The API keeps taking what it took (a user id, the
exact segment) and takes the same friendlier values."""

from __future__ import annotations

import re

import pytest

from reports import services
from reports.models import KpiTarget, ScheduledReport
from tests.conftest import _user
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam(db, manager):
    from accounts.models import Role

    # in the manager's team: their book is the manager's to see
    user = _user("sam@example.com", Role.CSM, first_name="Sam", last_name="Silva", manager=manager)
    AccountFactory(owner=user, segment="SMB")
    AccountFactory(owner=user, segment="Enterprise")
    return user


def _target(**scope):
    return {
        "kpi": "nrr",
        "direction": "at_least",
        "value": "95",
        "cadence": "weekly",
        **scope,
    }


def test_segments_match_ignoring_case_and_unknown_ones_list_the_segments(sam):
    assert services.scope_key_resolve("segment", "SMB") == ("SMB", None)
    assert services.scope_key_resolve("segment", " smb ") == ("SMB", None)
    assert services.scope_key_resolve("segment", "enterPRISE") == ("Enterprise", None)
    _key, problem = services.scope_key_resolve("segment", "Mid-market")
    assert problem == "no account has segment 'Mid-market'; the segments are Enterprise, SMB"
    # two spellings stored: the exact one wins, otherwise ask for it
    AccountFactory(owner=sam, segment="smb")
    assert services.scope_key_resolve("segment", "smb") == ("smb", None)
    _key, problem = services.scope_key_resolve("segment", "Smb")
    assert problem == "segment 'Smb' matches SMB, smb: give the exact spelling"


def test_an_owner_is_named_by_id_email_or_full_name(sam, csm):
    assert services.scope_key_resolve("owner", str(sam.pk)) == (str(sam.pk), None)
    assert services.scope_key_resolve("owner", "SAM@example.com") == (str(sam.pk), None)
    assert services.scope_key_resolve("owner", "sam  silva") == (str(sam.pk), None)
    _key, problem = services.scope_key_resolve("owner", "Nobody")
    # csm owns no account: not a book
    assert problem == (
        "no account owner matches 'Nobody' (a user id, email or full name); "
        "the owners are Sam Silva (sam@example.com)"
    )
    _key, problem = services.scope_key_resolve("owner", str(csm.pk))
    assert problem.startswith(f"no account owner matches '{csm.pk}'")
    twin = _user("sam2@example.com", None, first_name="Sam", last_name="Silva")
    AccountFactory(owner=twin)
    _key, problem = services.scope_key_resolve("owner", "Sam Silva")
    assert problem == (
        "several account owners are named 'Sam Silva': give the email "
        "(sam2@example.com, sam@example.com)"
    )


def test_a_team_is_named_by_its_manager_and_two_managers_of_one_name_ask_for_the_email(
    manager, csm
):
    """Max (manager) leads Cleo (csm). A second Max who leads someone makes "Max" ambiguous:
    the error asks for the email, as for two owners of one name, instead of claiming that
    no manager matches."""
    from accounts.models import Role

    assert services.scope_key_resolve("team", "max") == (str(manager.pk), None)
    twin = _user("max2@example.com", Role.MANAGER, first_name="Max")
    _user("reporter@example.com", Role.CSM, manager=twin)
    _key, problem = services.scope_key_resolve("team", "Max")
    assert problem == (
        "several managers are named 'Max': give the email (manager@example.com, max2@example.com)"
    )
    assert services.scope_key_resolve("team", "MAX2@example.com") == (str(twin.pk), None)
    # a name nobody leading a team has: still the list of the managers
    _key, problem = services.scope_key_resolve("team", "Olga")
    assert problem == (
        "no manager with a team matches 'Olga'; the managers are Max (manager@example.com), "
        "Max (max2@example.com)"
    )


def test_the_editor_offers_the_owners_by_name_and_saves_their_id(client, manager, sam):
    client.force_login(manager)
    page = client.get("/targets/").content.decode()
    assert f'<option value="{sam.pk}">Sam Silva (sam@example.com)</option>' in page
    assert '<datalist id="segment-options"><option value="Enterprise"></option>' in page
    response = client.post("/targets/", _target(scope_kind="owner", book_owner=sam.pk))
    assert response.status_code == 302
    target = KpiTarget.objects.get(kpi="nrr", scope_kind="owner")
    assert target.scope_key == str(sam.pk)
    assert (
        "owner&#x27;s book: Sam Silva (sam@example.com)" in client.get("/targets/").content.decode()
    )
    # the edit page shows the owner chosen, not the id in the text box
    edit = client.get(f"/targets/{target.pk}/")
    assert edit.context["form"]["book_owner"].value() == str(sam.pk)
    assert edit.context["form"]["scope_key"].value() == ""


def test_the_editor_takes_a_typed_name_and_a_segment_in_any_case(client, admin_user, sam):
    client.force_login(admin_user)  # segments are for admins
    assert (
        client.post("/targets/", _target(scope_kind="owner", scope_key="Sam Silva")).status_code
        == 302
    )
    assert KpiTarget.objects.get(kpi="nrr", scope_kind="owner").scope_key == str(sam.pk)
    assert (
        client.post("/targets/", _target(scope_kind="segment", scope_key="smb")).status_code == 302
    )
    assert KpiTarget.objects.get(kpi="nrr", scope_kind="segment").scope_key == "SMB"
    bad = client.post("/targets/", _target(scope_kind="segment", scope_key="XL", kpi="grr"))
    assert bad.status_code == 400
    assert bad.context["form"].errors == {
        "scope_key": ["no account has segment 'XL'; the segments are Enterprise, SMB"]
    }
    # owner's book without an owner: said under the owner select
    none = client.post("/targets/", _target(scope_kind="owner", kpi="grr"))
    assert none.context["form"].errors == {
        "book_owner": ["choose the account owner whose book this is"]
    }


def test_a_scheduled_report_for_an_owner_chosen_by_name(client, manager, admin_user, sam):
    client.force_login(manager)
    response = client.post(
        "/reports/scheduled/",
        {
            "name": "Sam weekly",
            "scope_kind": "owner",
            "book_owner": sam.pk,
            "cadence": "weekly",
            "recipients": [manager.pk],
        },
    )
    assert response.status_code == 302
    assert ScheduledReport.objects.get().scope_key == str(sam.pk)
    client.force_login(admin_user)  # segments are for admins
    bad = client.post(
        "/reports/scheduled/",
        {
            "name": "x",
            "scope_kind": "segment",
            "scope_key": "smb ",
            "cadence": "weekly",
            "recipients": [admin_user.pk],
        },
    )
    assert bad.status_code == 302
    assert ScheduledReport.objects.get(name="x").scope_key == "SMB"
    page = client.get("/reports/scheduled/").content.decode()
    assert "owner&#x27;s book: Sam Silva (sam@example.com)" in page and "segment SMB" in page


def test_the_api_keeps_ids_and_takes_the_friendlier_values(
    client, admin_user, sam, no_default_targets
):
    client.force_login(admin_user)  # segments are for admins
    by_id = client.post(
        "/api/v1/targets/",
        _target(scope_kind="owner", scope_key=str(sam.pk)),
        content_type="application/json",
    )
    assert by_id.status_code == 201 and by_id.json()["scope_key"] == str(sam.pk)
    by_email = client.post(
        "/api/v1/targets/",
        _target(kpi="grr", scope_kind="owner", scope_key="sam@example.com"),
        content_type="application/json",
    )
    assert by_email.status_code == 201 and by_email.json()["scope_key"] == str(sam.pk)
    seg = client.post(
        "/api/v1/targets/",
        _target(scope_kind="segment", scope_key="smb"),
        content_type="application/json",
    )
    assert seg.status_code == 201 and seg.json()["scope_key"] == "SMB"
    # a PATCH that names the segment again in another case finds the same target's scope
    pk = seg.json()["id"]
    patched = client.patch(
        f"/api/v1/targets/{pk}/", {"scope_key": "Smb"}, content_type="application/json"
    )
    assert patched.status_code == 200 and patched.json()["scope_key"] == "SMB"
    bad = client.post(
        "/api/v1/targets/",
        _target(kpi="csat", value="80", scope_kind="owner", scope_key="Sam"),
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "scope_key": [
            "no account owner matches 'Sam' (a user id, email or full name); "
            "the owners are Sam Silva (sam@example.com)"
        ]
    }


def test_the_off_track_list_names_the_owner_in_a_fixed_number_of_queries(
    manager, sam, no_default_targets, django_assert_num_queries
):
    KpiTarget.objects.create(
        kpi="nrr", direction="at_least", value=100, cadence="weekly",
        scope_kind="owner", scope_key=str(sam.pk),
    )  # fmt: skip
    KpiTarget.objects.create(kpi="grr", direction="at_least", value=90, cadence="weekly")
    with django_assert_num_queries(3):  # the day, the targets, the owners (no snapshot yet)
        data = services.off_track()
    assert sorted(r["scope"] for r in data["rows"]) == [
        "all accounts",
        "owner's book: Sam Silva (sam@example.com)",
    ]


# --- "?" hints: every KPI name on the targets pages links to its explanation -----------------


def test_every_kpi_on_the_targets_pages_links_to_its_section_of_the_metrics_doc(
    client, admin_user, no_default_targets
):
    from reports import catalog
    from workspace.dashboard import TILES
    from workspace.docs import metrics_html

    ids = set(re.findall(r'<h\d id="([^"]+)"', metrics_html()))
    assert {k.doc_anchor for k in catalog.KPIS.values()} <= ids
    # the same sections as the dashboard's tiles
    for _section, key, _label, _unit, _higher, anchor, _drill in TILES:
        if key in catalog.KPIS:
            assert catalog.KPIS[key].doc_anchor == anchor, key

    services.targets_load_defaults()
    client.force_login(admin_user)  # the defaults are the whole book's
    for url in ("/targets/", "/targets/off-track/"):
        page = client.get(url).content.decode()
        for target in KpiTarget.objects.all():
            hint = (
                f'<a class="hint" href="/docs/metrics/#{target.kpi_doc_anchor}" '
                f'title="How is {target.kpi_label} computed?"'
            )
            assert hint in page, (url, target.kpi)
        assert set(re.findall(r'/docs/metrics/#([\w-]+)"', page)) <= ids
    page = client.get("/targets/").content.decode()
    assert '<a href="/docs/metrics/#billing-billing">DSO</a>' in page  # the review tiers
    assert '<a href="/docs/metrics/#basics-mrr-customers-the-two-days-of-a-period">MRR</a>' in page
