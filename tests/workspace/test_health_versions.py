"""The health model's versions page (history, restore with confirmation, the rescore offer
after a change) and the editor opened with a draft from a link (the backtest's suggested
weights): admins only, bad input is a message that writes nothing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from metrics import services as metrics_services
from metrics.models import HealthModel, HealthModelVersion
from metrics.services import health_model_ensure_default
from tests.factories import health_model_with_rule
from workspace.health_forms import ModelDraft

pytestmark = pytest.mark.django_db


def _reweighted(version: HealthModelVersion, **weights) -> list[dict]:
    return [{**c, "weight": weights.get(c["key"], c["weight"])} for c in version.components]


@pytest.fixture
def model(admin_user):
    """Default v1 (seeded), v2 (usage 50, bands 70/40, by the admin) and v3 (usage 10), active."""
    model = health_model_ensure_default()
    v1 = model.versions.get()
    metrics_services.health_model_version_create(
        model=model,
        components=_reweighted(v1, usage=50),
        green_min=70,
        yellow_min=40,
        created_by=admin_user,
        notes="usage matters more",
    )
    metrics_services.health_model_version_create(
        model=model, components=_reweighted(v1, usage=10), notes="usage matters less"
    )
    return model


def _v(model: HealthModel, n: int) -> HealthModelVersion:
    return model.versions.get(version=n)


def _versions_url(model: HealthModel) -> str:
    return reverse("workspace:health-model-versions", args=[model.pk])


# --- access --------------------------------------------------------------------------------


def test_csm_and_manager_get_403_and_change_nothing(client, csm, manager, model):
    before = list(model.versions.values_list("pk", "active"))
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(_versions_url(model)).status_code == 403
        assert client.get(_versions_url(model), {"restore": _v(model, 1).pk}).status_code == 403
        r = client.post(
            reverse("workspace:health-model-restore", args=[model.pk]),
            {"version": _v(model, 1).pk},
        )
        assert r.status_code == 403
        r = client.post(reverse("workspace:backfill-start"), {"days": "3"})
        assert r.status_code == 403
        r = client.get(
            reverse("workspace:health-model-edit", args=[model.pk]), {"weight_usage": "1"}
        )
        assert r.status_code == 403
    assert list(model.versions.values_list("pk", "active")) == before


# --- the versions page -----------------------------------------------------------------------


def test_versions_page_lists_every_version(client, admin_user, model):
    client.force_login(admin_user)
    r = client.get(_versions_url(model))
    assert r.status_code == 200
    page = r.content.decode()
    rows = re.findall(r'<tbody id="version-(\d+)"', page)
    assert rows == [str(_v(model, n).pk) for n in (3, 2, 1)]  # newest first
    v3_row = page[page.index(f'id="version-{_v(model, 3).pk}"') :]
    v3_row = v3_row[: v3_row.index("</tbody>")]
    assert "active" in v3_row and "usage matters less" in v3_row and "Restore" not in v3_row
    v2_row = page[page.index(f'id="version-{_v(model, 2).pk}"') :]
    v2_row = v2_row[: v2_row.index("</tbody>")]
    # who, why, weights (changed ones in bold) and bands; a restore link with confirmation
    assert "admin@example.com" in v2_row and "usage matters more" in v2_row
    assert "<strong>50</strong>" in v2_row
    assert "<strong>70</strong>" in v2_row and "<strong>40</strong>" in v2_row
    assert f'href="?restore={_v(model, 2).pk}#restore"' in v2_row
    assert "the default model of docs/metrics.md" in page
    headers = re.findall(r'<th scope="col" class="num">([^<]+)</th>', page)
    labels = [c.get("label", c["key"]) for c in _v(model, 3).components]
    assert headers == [*labels, "Green from", "Yellow from"]


def test_each_versions_cells_are_labelled_for_a_phone(client, admin_user, model):
    """On a narrow screen the table stacks (.table-stack) and each cell shows its column's
    name from data-label: every weight and band cell carries its own."""
    client.force_login(admin_user)
    page = client.get(_versions_url(model)).content.decode()
    assert re.search(r'<table class="table table-stack versions-table" id="versions">', page)
    v2_row = page[page.index(f'id="version-{_v(model, 2).pk}"') :]
    v2_row = v2_row[: v2_row.index("</tbody>")]
    labels = re.findall(r'<td class="num version-weight" data-label="([^"]+)">', v2_row)
    components = [c.get("label", c["key"]) for c in _v(model, 2).components]
    assert labels == [*components, "Green from", "Yellow from"]
    assert '<td data-label="Created">' in v2_row


def test_versions_page_queries_are_pinned(client, admin_user, model, django_assert_num_queries):
    """Session, user, the user's groups (role), the model, and every version with its
    author and the version it restores: the same whatever the number of versions."""
    client.force_login(admin_user)
    with django_assert_num_queries(5):
        assert client.get(_versions_url(model)).status_code == 200
    for n in range(5):
        metrics_services.health_model_version_restore(
            model=model, version_id=_v(model, 1 + n % 2).pk, restored_by=admin_user
        )
    with django_assert_num_queries(5):
        r = client.get(_versions_url(model))
    assert r.content.decode().count('<tbody id="version-') == 8
    # the confirmation adds two: the version to restore, and the active one to compare with
    v2 = _v(model, 2)
    with django_assert_num_queries(7):
        r = client.get(_versions_url(model), {"restore": v2.pk})
    assert r.context["confirm"] == v2


def test_restore_asks_for_confirmation_first(client, admin_user, model):
    client.force_login(admin_user)
    v1 = _v(model, 1)
    r = client.get(_versions_url(model), {"restore": v1.pk})
    assert r.status_code == 200
    page = r.content.decode()
    assert "Restore v1?" in page and "Restore v1 as v4" in page
    assert f'name="version" value="{v1.pk}"' in page
    # now (v3) beside what the restore brings back (v1's), changed rows marked
    diff = {w["key"]: (w["now"], w["then"], w["changed"]) for w in r.context["diff"]["weights"]}
    assert diff["usage"] == (10, 35, True) and diff["support"] == (15, 15, False)
    # the same components: the live preview of v1's weights loads beside
    assert r.context["diff"]["same_components"] is True
    assert 'hx-include="#restore-draft"' in page and 'name="draft_label" value="v1"' in page
    assert r.context["diff"]["rules_changed"] == [] and 'id="restore-rules"' not in page
    assert model.versions.count() == 3  # a GET writes nothing


def test_restore_confirmation_names_components_that_score_differently(client, admin_user, model):
    """v4 scores Usage by seat utilisation 0 → 60 (v1: 0 → 50) and locks Support: the
    weights table shows no change for them, so the confirmation names them."""
    v1 = _v(model, 1)
    components = []
    for c in v1.components:
        c = {**c, "measures": [dict(m) for m in c["measures"]]}
        if c["key"] == "usage":
            c["measures"][0] = {**c["measures"][0], "linear": [0, 60]}
        if c["key"] == "support":
            c["locked"] = True
        components.append(c)
    assert v1.components[0]["measures"][0] == {"measure": "seat_utilisation", "linear": [0, 50]}
    metrics_services.health_model_version_create(model=model, components=components)
    client.force_login(admin_user)
    r = client.get(_versions_url(model), {"restore": v1.pk})
    assert r.context["diff"]["rules_changed"] == ["Usage", "Support"]
    page = r.content.decode()
    assert (
        "Beyond the weights, v1 also scores Usage, Support differently: other measures, "
        "points or lock than v4." in page
    )


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("abc", "No version chosen: nothing restored."),
        ("999999", "No version has id 999999: nothing restored."),
        ("other", "Enterprise v1 is a version of Enterprise, not of Default: nothing"),
        ("active", "Default v3 is already the active version: nothing to restore."),
        ("same", "Default v1 has the same components, weights and bands as Default v4"),
    ],
)
def test_bad_restore_is_a_message_and_writes_nothing(client, admin_user, model, which, message):
    other = metrics_services.health_model_version_create(
        model=health_model_with_rule("Enterprise", segment="ENT"),
        components=_v(model, 1).components,
    )
    if which == "same":  # restored already (v4): a second restore of v1 would change nothing
        metrics_services.health_model_version_restore(model=model, version_id=_v(model, 1).pk)
    raw = {
        "other": str(other.pk),
        "active": str(_v(model, 3).pk),
        "same": str(_v(model, 1).pk),
    }.get(which, which)
    client.force_login(admin_user)
    before = list(HealthModelVersion.objects.values_list("pk", "active"))
    r = client.get(_versions_url(model), {"restore": raw})
    assert r.status_code == 200 and r.context["confirm"] is None
    assert message in r.content.decode() and 'id="restore-title"' not in r.content.decode()
    r = client.post(reverse("workspace:health-model-restore", args=[model.pk]), {"version": raw})
    assert r.status_code == 200
    assert 'id="restore-errors"' in r.content.decode() and message in r.content.decode()
    assert list(HealthModelVersion.objects.values_list("pk", "active")) == before


def test_restoring_a_stored_version_with_two_components_of_one_name_is_refused(
    client, admin_user, model
):
    """A version row stored before the rule of one name per component (written straight to
    the table here): the page names the components and restores nothing."""
    v1 = _v(model, 1)
    components = [
        {**c, "label": "Usage" if c["key"] == "support" else c["label"]} for c in v1.components
    ]
    old = HealthModelVersion.objects.create(
        model=model, version=4, components=components, active=False
    )
    client.force_login(admin_user)
    before = list(HealthModelVersion.objects.values_list("pk", "active"))
    message = "component 3 is named “Usage” like component 1: give each its own name"
    r = client.get(_versions_url(model), {"restore": old.pk})
    assert r.context["confirm"] is None and message in r.content.decode()
    r = client.post(
        reverse("workspace:health-model-restore", args=[model.pk]), {"version": str(old.pk)}
    )
    assert r.status_code == 200
    page = r.content.decode()
    assert 'id="restore-errors"' in page and "Default v4 breaks today" in page
    assert message in page
    assert list(HealthModelVersion.objects.values_list("pk", "active")) == before


def test_a_version_the_active_one_copies_offers_no_restore(client, admin_user, model):
    v1 = _v(model, 1)
    metrics_services.health_model_version_restore(model=model, version_id=v1.pk)
    client.force_login(admin_user)
    page = client.get(_versions_url(model)).content.decode()
    row = page[page.index(f'id="version-{v1.pk}"') :]
    row = row[: row.index("</tbody>")]
    assert "same as v4" in row and "?restore=" not in row
    assert f'href="?restore={_v(model, 2).pk}#restore"' in page


def test_restore_makes_a_copy_and_offers_the_rescore(client, admin_user, model, celery_eager):
    client.force_login(admin_user)
    v2 = _v(model, 2)
    r = client.post(
        reverse("workspace:health-model-restore", args=[model.pk]),
        {"version": v2.pk, "notes": "v3 missed the churners"},
    )
    assert r.status_code == 302
    new = model.versions.get(active=True)
    assert new.version == 4 and new.restored_from == v2 and new.created_by == admin_user
    assert new.notes == "restored from v2: v3 missed the churners"
    assert r["Location"] == _versions_url(model) + f"?changed={new.pk}"
    r = client.get(r["Location"])
    page = r.content.decode()
    assert "Restored v2 as Default v4." in page
    assert 'id="version-changed"' in page
    assert "Snapshots already recorded keep the version that made them" in page
    assert f'action="{reverse("workspace:backfill-start")}"' in page
    assert "copy of v2" in page
    # the offer starts the existing backfill, whose page shows its progress
    r = client.post(reverse("workspace:backfill-start"), {"days": "2", "model": model.pk})
    assert r.status_code == 302 and "?job=" in r["Location"]
    assert "2 of 2 days rescored" in client.get(r["Location"]).content.decode()


def test_rescore_offer_refuses_bad_days(client, admin_user, model):
    client.force_login(admin_user)
    for days in ("0", "401", "x", ""):
        r = client.post(
            reverse("workspace:backfill-start"), {"days": days, "model": model.pk}, follow=True
        )
        assert r.redirect_chain[-1][0] == _versions_url(model)
        got = f", got “{days}”" if days else ""
        assert f"Days to rescore: a whole number of days from 1 to 400{got}." in (
            r.content.decode()
        )


def test_changed_notice_only_for_the_active_version(client, admin_user, model):
    client.force_login(admin_user)
    r = client.get(_versions_url(model), {"changed": _v(model, 2).pk})  # no longer active
    assert r.context["changed"] is None and 'id="version-changed"' not in r.content.decode()


# --- the editor opened with a draft -----------------------------------------------------------


def _edit_url(model: HealthModel) -> str:
    return reverse("workspace:health-model-edit", args=[model.pk])


def _form(version: HealthModelVersion, **weights) -> dict[str, str]:
    """``version`` as the editor's form posts it, with ``weights`` changed by component key."""
    data = ModelDraft.from_version(version).as_data()
    at = {data[k]: k[: -len("key")] for k in data if k.startswith("c-") and k.endswith("-key")}
    for key, weight in weights.items():
        data[at[key] + "weight"] = str(weight)
    return data


def _weight_input(page: str, version: HealthModelVersion, key: str) -> str:
    """The value of component ``key``'s weight field on the editor's page."""
    at = next(i for i, c in enumerate(version.components) if c["key"] == key)
    return re.search(rf'name="c-{at}-weight" value="([^"]*)"', page)[1]


def test_editor_prefilled_from_the_url_shows_the_draft_beside_the_current(
    client, admin_user, model
):
    client.force_login(admin_user)
    v3 = _v(model, 3)
    support = {c["key"]: c["weight"] for c in v3.components}["support"]
    r = client.get(
        _edit_url(model),
        {
            "weight_usage": "60",
            "weight_support": "0",
            "weight_payments": "10.0",  # the same as now: no change
            "notes": "weights suggested by the backtest",
            "suggested_for": v3.pk,
        },
    )
    assert r.status_code == 200
    page = r.content.decode()
    assert _weight_input(page, v3, "usage") == "60"
    assert _weight_input(page, v3, "support") == "0"
    assert _weight_input(page, v3, "payments") == "10"  # untouched
    changes = r.context["review"]["changes"]
    assert [(c["now"], c["draft"]) for c in changes] == [("10", "60"), (f"{support:g}", "0")]
    assert "Reviewing the weights the backtest suggested." in page
    assert "Changed from v3: Usage 10 → 60; Support" in page
    assert "weights suggested by the backtest</textarea>" in page
    assert 'name="based_on" value="3"' in page
    # the preview of the draft loads with the page
    assert re.search(r'id="preview"[^>]*hx-trigger="load, [^"]*" hx-include="#draft-form"', page)
    assert model.versions.count() == 3


def test_editor_says_when_the_suggestion_was_for_an_earlier_version(client, admin_user, model):
    client.force_login(admin_user)
    r = client.get(
        _edit_url(model),
        {"weight_usage": "60", "weight_nope": "5", "suggested_for": _v(model, 1).pk},
    )
    page = r.content.decode()
    assert "They were suggested for v1; the model now scores with v3" in page
    assert "Default v3 has no component nope" in page


def test_editor_prefilled_with_bad_numbers_shows_the_errors(client, admin_user, model):
    client.force_login(admin_user)
    v3 = _v(model, 3)
    r = client.get(_edit_url(model), {"weight_usage": "lots", "yellow_min": "95"})
    page = r.content.decode()
    assert _weight_input(page, v3, "usage") == "lots"  # kept as typed, not dropped
    # the preview (and a save) say what is wrong, in words
    preview = client.post(
        reverse("workspace:health-model-preview", args=[model.pk]),
        {**_form(v3, usage="lots"), "yellow_min": "95"},
    ).content.decode()
    assert 'id="preview-errors"' in preview
    assert "“lots”" in preview  # the weight, quoted as typed
    assert "yellow must start at or below green" in preview
    assert model.versions.count() == 3


def test_saving_the_reviewed_draft_is_the_confirmation(client, admin_user, model):
    client.force_login(admin_user)
    v3 = _v(model, 3)
    form = {**_form(v3, usage=60), "backfill_days": "0", "notes": "from the backtest"}
    r = client.post(_edit_url(model), {**form, "op": "save"})
    assert r.status_code == 302
    new = model.versions.get(active=True)
    assert new.version == 4 and new.created_by == admin_user and new.notes == "from the backtest"
    assert {c["key"]: c["weight"] for c in new.components}["usage"] == 60
    assert r["Location"] == _versions_url(model) + f"?changed={new.pk}"
    page = client.get(r["Location"]).content.decode()
    assert "Saved as Default v4." in page and 'id="version-changed"' in page


def test_saving_over_a_version_that_changed_meanwhile_is_refused(client, admin_user, model):
    """A draft drawn over v3, saved after someone restored v1 (now v4): refused with the
    reason, the draft shown again, nothing written."""
    client.force_login(admin_user)
    v3 = _v(model, 3)
    form = {**_form(v3, usage=60), "backfill_days": "0", "op": "save"}
    metrics_services.health_model_version_restore(model=model, version_id=_v(model, 1).pk)
    r = client.post(_edit_url(model), form)
    assert r.status_code == 200
    page = r.content.decode()
    assert "v4 was saved" in page and "after you opened v3" in page
    assert _weight_input(page, v3, "usage") == "60"  # the draft is kept
    assert model.versions.count() == 4
    # drawn over v4, it goes through
    r = client.post(_edit_url(model), {**form, "based_on": "4"})
    assert r.status_code == 302 and model.versions.get(active=True).version == 5


def test_a_new_version_of_a_model_without_a_rule_offers_a_rule_not_a_rescore(
    client, admin_user, model
):
    """A copy no rule names scores no account: saving a version of it changes no score, so
    the versions page points at the assignments instead of offering to rescore past days
    (which would rescore every account and change nothing of this model's). Once it has a
    rule, the usual offer is back."""
    client.force_login(admin_user)
    r = client.post(
        reverse("workspace:health-model-copy"), {"name": "Onboarding", "source": model.pk}
    )
    assert r.status_code == 302
    onboarding = HealthModel.objects.get(name="Onboarding")
    v1 = onboarding.versions.get(active=True)
    form = {**_form(v1, usage=60), "backfill_days": "0"}
    r = client.post(_edit_url(onboarding), {**form, "op": "save"})
    assert r.status_code == 302
    page = client.get(r["Location"]).content.decode()
    callout = page[page.index('id="version-changed"') :].split("</section>")[0]
    assert "v2 is Onboarding's version now; it scores no account yet" in callout
    assert "nothing to rescore" in callout
    assert reverse("workspace:health-assignments") in callout
    assert reverse("workspace:backfill-start") not in callout

    metrics_services.health_rule_add(model=onboarding, lifecycle="onboarding", by=admin_user)
    page = client.get(r["Location"]).content.decode()
    callout = page[page.index('id="version-changed"') :].split("</section>")[0]
    assert "v2 now scores Onboarding" in callout
    assert f'action="{reverse("workspace:backfill-start")}"' in callout
