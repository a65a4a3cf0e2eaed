"""The health model editor's form: components, measures and mappings as fields, read back
into the JSON ``parse_model`` checks; errors at their fields in words; add/remove by ops;
saving makes a new version; the preview of a changed mapping; admins only; query counts."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.urls import reverse

from metrics import health
from metrics.services import health_model_ensure_default, health_model_version_create
from tests.factories import AccountFactory
from workspace.health_forms import ModelDraft

from .conftest import snapshot, utc_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def model():
    return health_model_ensure_default()


def _form(model, **changes) -> dict:
    data = ModelDraft.from_version(model.versions.get(active=True)).as_data()
    data.update({k.replace("_", "-") if k.startswith("c_") else k: v for k, v in changes.items()})
    return data


def _edit(client, model, data, **kw):
    return client.post(reverse("workspace:health-model-edit", args=[model.pk]), data, **kw)


def _field_error(html: str, field_id: str) -> str:
    """The error text shown at the input ``field_id`` (its aria-describedby target)."""
    tag = re.search(rf'<(?:input|select)[^>]*id="{re.escape(field_id)}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    assert 'aria-invalid="true"' in tag.group(0), f"{field_id} not marked invalid"
    described = re.search(r'aria-describedby="([^"]+)"', tag.group(0))
    assert described, f"{field_id} names no error"
    # it may name the field's help too: the error is the one element that is a field-error
    ids = "|".join(map(re.escape, described.group(1).split()))
    errors = re.findall(rf'<p class="field-error[^"]*" id="(?:{ids})">([^<]*)</p>', html)
    assert len(errors) == 1, f"{field_id}: {len(errors)} error elements among {described.group(1)}"
    return errors[0]


def test_the_form_shows_each_component_measure_and_mapping(client, admin_user, model):
    client.force_login(admin_user)
    r = client.get(reverse("workspace:health-model-edit", args=[model.pk]))
    html = r.content.decode()
    assert r.status_code == 200
    assert 'name="c-0-label" value="Usage"' in html
    assert 'name="c-0-weight" value="35"' in html
    # the payments component is locked in the default model
    assert re.search(r'id="c-3-locked" name="c-3-locked" checked', html)
    # the service refuses an override of a locked component whoever asks, admins too (it
    # said "CSMs cannot", as if an admin could)
    assert "no one may override it" in html and "CSMs cannot" not in html
    # measures with label and unit; the mapping as typed values
    assert "seat utilisation (% of licensed seats active in 30 days)</option>" in html
    assert re.search(r'<option value="seat_utilisation" selected>', html)
    assert 'name="c-0-m-0-hi" value="50"' in html
    assert 'name="c-2-m-0-kind" value="thresholds" checked' in html
    assert (
        'name="c-2-m-0-t-1-at" value="1"' in html and 'name="c-2-m-0-t-1-points" value="50"' in html
    )


def test_form_to_spec_round_trip(client, admin_user, model):
    """A posted form saves exactly what parse_model gives for it: a mapping switched from
    linear to thresholds, a measure removed, a component added with a voice measure, a
    lock set, a label and the bands changed."""
    client.force_login(admin_user)
    data = _form(model)
    # usage: seat utilisation by thresholds instead of a linear range; usage trend removed
    data.update({"c-0-m-0-kind": "thresholds", "c-0-m-0-t-0-at": "10", "c-0-m-0-t-0-points": "40"})
    data.update({"c-0-m-0-t-1-at": "30", "c-0-m-0-t-1-points": "100"})
    for name in [k for k in data if k.startswith("c-0-m-1-")]:
        del data[name]
    data.update({"c-1-label": "Adoption", "c-1-locked": "on"})
    # a new component (no key yet) with a voice measure, lower-is-better range the other way
    data.update({"c-6-key": "", "c-6-label": "Voice", "c-6-weight": "5"})
    data.update({"c-6-m-0-measure": "text_sentiment", "c-6-m-0-kind": "linear"})
    data.update(
        {"c-6-m-0-lo": "-50", "c-6-m-0-hi": "50", "c-6-m-0-t-0-at": "", "c-6-m-0-t-0-points": ""}
    )
    data.update({"green_min": "75", "yellow_min": "45", "notes": "voice in", "backfill_days": "0"})
    r = _edit(client, model, data)
    assert r.status_code == 302, r.content.decode()[:2000]

    saved = model.versions.get(active=True)
    assert saved.version == 2 and saved.notes == "voice in" and saved.created_by == admin_user
    expected = health.parse_model(
        ModelDraft.from_data(data, based_on=1).as_json(), green_min=75, yellow_min=45
    )
    assert saved.components == [c.as_json() for c in expected.components]
    assert (saved.green_min, saved.yellow_min) == (75, 45)
    # and by hand, the parts that changed
    by_key = {c["key"]: c for c in saved.components}
    assert by_key["usage"]["measures"] == [
        {"measure": "seat_utilisation", "thresholds": [[10.0, 40.0], [30.0, 100.0]]}
    ]
    assert (
        by_key["feature_adoption"]["label"] == "Adoption" and by_key["feature_adoption"]["locked"]
    )
    assert by_key["voice"] == {
        "key": "voice",
        "label": "Voice",
        "weight": 5.0,
        "locked": False,
        "measures": [{"measure": "text_sentiment", "linear": [-50.0, 50.0]}],
    }
    assert list(by_key) == [
        "usage", "feature_adoption", "support", "payments", "sentiment", "relationship", "voice"
    ]  # fmt: skip
    # the version it replaced is kept as it was
    assert model.versions.get(version=1).components[0]["measures"][0] == {
        "measure": "seat_utilisation",
        "linear": [0, 50],
    }


def test_errors_point_at_the_field_in_words_and_nothing_is_saved(client, admin_user, model):
    client.force_login(admin_user)
    data = _form(model)
    data.update({"c-0-m-0-lo": "20", "c-0-m-0-hi": "20"})  # usage / seat utilisation
    data.update({"c-2-m-0-t-1-points": "150"})  # support / open escalations, row 2
    data.update({"c-3-weight": "ten"})  # payments
    data.update({"c-4-m-1-measure": ""})  # sentiment, its 2nd measure unchosen
    data.update({"c-5-m-0-t-1-at": "-1"})  # relationship / champion: rows must ascend
    r = _edit(client, model, data)
    html = r.content.decode()
    assert r.status_code == 200
    summary = re.search(
        r'<div class="msg msg-error" role="alert" id="draft-errors">(.*?)</div>', html, re.S
    )
    words = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', summary.group(1))
    assert words == [
        ("c-0-m-0-lo", "component 1 (Usage), measure &#x27;seat utilisation&#x27;: the linear range needs two different values (both are 20)"),
        ("c-2-m-0-t-1-at", "component 3 (Support), measure &#x27;open escalations&#x27;, row 2: points must be between 0 and 100, got 150"),
        ("c-3-weight", "component 4 (Payments): the weight must be a number, got “ten”"),
        ("c-4-m-1-measure", "component 5 (Sentiment), measure 2: choose a measure"),
        ("c-5-m-0-t-1-at", "component 6 (Relationship), measure &#x27;champion&#x27;, row 2: the values must go up row by row: -1 is not above 0"),
    ]  # fmt: skip
    # each at its field
    assert (
        "the linear range needs two different values"
        in html.split('id="c-0-m-0-linear-error">')[1][:80]
    )
    assert _field_error(html, "c-2-m-0-t-1-at").startswith("points must be between 0 and 100")
    assert _field_error(html, "c-3-weight") == "the weight must be a number, got “ten”"
    assert _field_error(html, "c-4-m-1-measure") == "choose a measure"
    # the input is shown again as typed
    assert (
        'name="c-3-weight" value="ten"' in html and 'name="c-2-m-0-t-1-points" value="150"' in html
    )
    assert model.versions.count() == 1


def test_a_component_needs_a_name_and_a_measure(client, admin_user, model):
    client.force_login(admin_user)
    data = _form(model)
    data.update({"c-1-label": " "})
    for name in [k for k in data if k.startswith("c-2-m-")]:
        del data[name]
    r = _edit(client, model, data)
    html = r.content.decode()
    assert _field_error(html, "c-1-label") == "give the component a name"
    assert "component 3 (Support): add at least one measure" in html
    assert model.versions.count() == 1


def test_two_components_of_the_same_name_are_refused(client, admin_user, model):
    """Feature adoption renamed "usage": the account page and the override form name
    components by their names, so two alike (whatever the capitals) would read as one."""
    client.force_login(admin_user)
    html = _edit(client, model, _form(model, **{"c-1-label": " usage"})).content.decode()
    expected = "component 1 is named “usage” too: give each its own name"
    assert _field_error(html, "c-1-label") == expected
    assert f"component 2: {expected}" in html  # in the list at the top too
    assert model.versions.count() == 1


def test_every_weight_zero_is_refused(client, admin_user, model):
    client.force_login(admin_user)
    data = _form(model, **{f"c-{i}-weight": "0" for i in range(6)})
    html = _edit(client, model, data).content.decode()
    assert "every weight is 0: give at least one component a weight above 0" in html
    assert model.versions.count() == 1


def test_add_and_remove_parts_of_the_draft_without_saving(client, admin_user, model):
    client.force_login(admin_user)
    htmx = {"HX-Request": "true"}
    data = _form(model, op="add-c")
    r = _edit(client, model, data, headers=htmx)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and 'id="draft-form"' in html
    assert r.headers["HX-Trigger-After-Settle"] == '{"healthDraftChanged": {}}'
    assert 'id="c-6-label" name="c-6-label" value="" maxlength="100" autofocus' in html
    assert 'name="c-6-m-0-measure"' in html
    # remove the support component's first measure, then a threshold row of payments'
    data = _form(model, op="remove-m-2-0")
    html = _edit(client, model, data, headers=htmx).content.decode()
    assert 'name="c-2-m-1-measure"' not in html
    assert re.search(
        r'name="c-2-m-0-measure".*?<option value="tickets_per_100_seats_30d" selected', html, re.S
    )
    data = _form(model, op="remove-t-3-0-2")
    html = _edit(client, model, data, headers=htmx).content.decode()
    assert 'name="c-3-m-0-t-2-at"' not in html and 'name="c-3-m-0-t-1-at" value="1"' in html
    data = _form(model, op="add-t-3-0")
    html = _edit(client, model, data, headers=htmx).content.decode()
    assert 'name="c-3-m-0-t-3-at" value="" step="any" inputmode="decimal" autofocus' in html
    data = _form(model, op="remove-c-0")
    html = _edit(client, model, data, headers=htmx).content.decode()
    assert 'value="Usage"' not in html and 'name="c-0-label" value="Feature adoption"' in html
    # an op naming nothing changes nothing
    html = _edit(client, model, _form(model, op="remove-m-9-9"), headers=htmx).content.decode()
    assert html.count('class="component"') == 6
    assert model.versions.count() == 1


def _op(client, model, op, **changes) -> tuple[str, str | None]:
    """The form after ``op`` (htmx) and what the page's live region is told, if anything."""
    r = _edit(client, model, _form(model, op=op, **changes), headers={"HX-Request": "true"})
    assert r.status_code == 200
    said = json.loads(r.headers.get("HX-Trigger", "{}")).get("announced", {}).get("message")
    return r.content.decode(), said


def _focused(html: str) -> str:
    """The one element of the form marked autofocus: its id."""
    tags = re.findall(r"<(?:input|select|button)[^>]*\sautofocus[^>]*>", html)
    assert len(tags) == 1, tags
    return re.search(r'\bid="([^"]+)"', tags[0]).group(1)


def test_adding_and_removing_components_is_announced_and_moves_the_focus(client, admin_user, model):
    """The default model has 6 components: Usage, Feature adoption, Support, Payments,
    Sentiment, Relationship (ids c-0 … c-5)."""
    client.force_login(admin_user)
    html, said = _op(client, model, "add-c")
    assert said == "Component 7 added."  # 6 + 1
    assert _focused(html) == "c-6-label"  # the new one's name
    html, said = _op(client, model, "remove-c-2")
    assert said == "Component “Support” removed; 5 left."  # 6 - 1
    # the focus goes to the one that took its place: Payments, now the third (c-2)
    assert _focused(html) == "c-2-label"
    assert 'id="c-2-label" name="c-2-label" value="Payments"' in html
    html, said = _op(client, model, "remove-c-5")
    assert said == "Component “Relationship” removed; 5 left."
    assert _focused(html) == "add-component"  # the last one went: nothing follows it
    html, said = _op(client, model, "remove-c-1", c_1_label="  ")
    assert said == "Component 2 removed; 5 left."  # without a name: its number
    one = {k: v for k, v in _form(model).items() if not re.match(r"c-[1-5]-", k)}
    r = _edit(client, model, {**one, "op": "remove-c-0"}, headers={"HX-Request": "true"})
    assert json.loads(r["HX-Trigger"])["announced"]["message"] == (
        "Component “Usage” removed; none left."
    )
    assert _focused(r.content.decode()) == "add-component"


def test_adding_and_removing_measures_and_rows_is_announced_and_moves_the_focus(
    client, admin_user, model
):
    """Support (c-2) has two measures; Payments (c-3) a first measure of three rows."""
    client.force_login(admin_user)
    html, said = _op(client, model, "add-m-2")
    assert (said, _focused(html)) == ("Measure 3 added to “Support”.", "c-2-m-2-measure")
    html, said = _op(client, model, "remove-m-2-0")
    assert (said, _focused(html)) == ("Measure 1 of “Support” removed.", "c-2-m-0-measure")
    html, said = _op(client, model, "remove-m-2-1")
    assert (said, _focused(html)) == ("Measure 2 of “Support” removed.", "c-2-add-m")
    html, said = _op(client, model, "add-t-3-0")
    assert (said, _focused(html)) == ("Row 4 added to measure 1 of “Payments”.", "c-3-m-0-t-3-at")
    html, said = _op(client, model, "remove-t-3-0-0")
    assert (said, _focused(html)) == ("Row 1 of measure 1 of “Payments” removed.", "c-3-m-0-t-0-at")
    html, said = _op(client, model, "remove-t-3-0-2")
    assert said == "Row 3 of measure 1 of “Payments” removed."
    assert "autofocus>Add a row</button>" in html and html.count(" autofocus") == 1
    assert 'aria-label="Add a row to measure 1 of component 4" autofocus' in html


def test_an_op_that_changes_nothing_says_nothing(client, admin_user, model):
    client.force_login(admin_user)
    html, said = _op(client, model, "remove-m-9-9")
    assert said is None and " autofocus" not in html
    # without htmx the page is loaded whole: autofocus moves the focus, no live region
    r = _edit(client, model, _form(model, op="remove-c-2"))
    assert "<html" in r.content.decode() and "HX-Trigger" not in r.headers
    assert _focused(r.content.decode()) == "c-2-label"


def test_at_most_so_many_components_is_said_when_none_is_added(client, admin_user, model):
    client.force_login(admin_user)
    data = _form(model)
    # 6 components of the default model, copied until there are MAX_COMPONENTS (20)
    for i in range(6, 20):
        for key, value in list(data.items()):
            if key.startswith("c-0-"):
                data[f"c-{i}-" + key[4:]] = value
        data[f"c-{i}-key"], data[f"c-{i}-label"] = "", f"Copy {i}"
    r = _edit(client, model, {**data, "op": "add-c"}, headers={"HX-Request": "true"})
    said = json.loads(r["HX-Trigger"])["announced"]["message"]
    assert said == "Not added: a model has at most 20 components."
    assert r.content.decode().count('class="component"') == 20


def test_a_draft_of_an_older_version_is_refused(client, admin_user, model):
    """Two admins open v1; one saves v2; the other's save would undo v2 silently."""
    client.force_login(admin_user)
    data = _form(model, c_1_weight="25")
    v1 = model.versions.get(active=True)
    health_model_version_create(model=model, components=v1.components, created_by=admin_user)
    r = _edit(client, model, data)
    html = r.content.decode()
    assert r.status_code == 200
    assert "v2 was saved by Ada" in html and "after you opened v1" in html
    assert model.versions.count() == 2


def test_a_draft_that_changes_nothing_is_refused(client, admin_user, model):
    client.force_login(admin_user)
    html = _edit(client, model, _form(model)).content.decode()
    assert "The draft is the same as v1: nothing to save." in html
    assert model.versions.count() == 1


def _with_inputs(seats: float | None, support: float) -> list[dict]:
    """Recorded components as the scoring writes them, with the seat utilisation input."""
    return [
        {"key": "usage", "label": "Usage", "score": None if seats is None else min(100, 2 * seats),
         "weight": 35.0, "inputs": {"seat_utilisation": seats, "usage_trend": None}},
        {"key": "support", "label": "Support", "score": support, "weight": 15.0, "inputs": {}},
    ]  # fmt: skip


def test_the_preview_scores_a_changed_mapping_from_recorded_values(client, admin_user, model):
    day = utc_today() - dt.timedelta(days=1)
    for seats in (10, 20, 45):
        snapshot(AccountFactory(), day, None, "", components=_with_inputs(seats, 100))
    client.force_login(admin_user)
    url = reverse("workspace:health-model-preview", args=[model.pk])
    # current: usage (linear 0..50) 20/40/90 and support 100 → 44, 58, 93: red, yellow, green
    r = client.post(url, _form(model), headers={"HX-Request": "true"})
    cells = dict(re.findall(r'data-band="(\w+)">(\d+) ', r.content.decode()))
    assert cells == {"green": "1", "yellow": "1", "red": "1", "none": "0"}
    # draft: seat utilisation full marks from 10 % (linear 0..10) → usage 100 for all → green;
    # a measure the current version does not read is no data in the preview, and says so
    data = _form(model, **{"c-0-m-0-hi": "10", "c-1-m-0-measure": "text_sentiment"})
    with_queries = client.post(url, data, headers={"HX-Request": "true"})
    html = with_queries.content.decode()
    cells = dict(re.findall(r'data-band="(\w+)">(\d+) ', html))
    assert cells == {"green": "3", "yellow": "0", "red": "0", "none": "0"}
    assert "Usage, Feature adoption scored again from the recorded measure values" in html
    assert "Not recorded yet, so no data in this preview: sentiment of customer texts" in html
    assert model.versions.count() == 1


def test_the_preview_lists_the_drafts_errors_in_words(client, admin_user, model):
    client.force_login(admin_user)
    data = _form(model, **{"c-0-m-0-hi": "0"})
    r = client.post(reverse("workspace:health-model-preview", args=[model.pk]), data)
    assert (
        "component 1 (Usage), measure &#x27;seat utilisation&#x27;: the linear range needs two different values (both are 0)"
        in r.content.decode()
    )


def test_csm_and_manager_get_403_and_nothing_is_saved(client, csm, manager, model):
    data = _form(model, c_0_weight="1")
    for user in (csm, manager):
        client.force_login(user)
        assert (
            client.get(reverse("workspace:health-model-edit", args=[model.pk])).status_code == 403
        )
        assert _edit(client, model, data).status_code == 403
        assert _edit(client, model, {**data, "op": "add-c"}).status_code == 403
        url = reverse("workspace:health-model-preview", args=[model.pk])
        assert client.post(url, data).status_code == 403
    assert model.versions.count() == 1


def test_query_counts(client, admin_user, model, django_assert_num_queries):
    day = utc_today() - dt.timedelta(days=1)
    for seats in (10, 20, 45):
        snapshot(AccountFactory(), day, None, "", components=_with_inputs(seats, 100))
    client.force_login(admin_user)
    url = reverse("workspace:health-model-edit", args=[model.pk])
    # session, user, groups, model, active version, versions list, and the model's
    # assignment rules for the header's "Now scoring …" (a model has any number of rules
    # since they left the model's own fields: one more than when they were columns)
    with django_assert_num_queries(7):
        assert client.get(url).status_code == 200
    data = _form(model, op="add-c")
    with django_assert_num_queries(5):  # an op: no versions list
        assert _edit(client, model, data, headers={"HX-Request": "true"}).status_code == 200
    preview = reverse("workspace:health-model-preview", args=[model.pk])
    data = _form(model, c_0_weight="20")
    # session, user, groups, model, version, latest day, latest per account, that day's
    # rows, the backtest day with its window passed, then any day 30 days back (none)
    with django_assert_num_queries(10):
        assert client.post(preview, data).status_code == 200


@pytest.mark.parametrize("days", ["-3", "401"])
def test_rescore_days_after_saving_refused_with_the_editors_range(client, admin_user, model, days):
    """The editor's field allows 0 (save without rescoring), so its one message says 0 to
    400; nothing is saved."""
    client.force_login(admin_user)
    r = _edit(client, model, _form(model, backfill_days=days, op="save"))
    html = r.content.decode()
    assert r.status_code == 200
    assert (
        _field_error(html, "backfill_days") == f"a whole number of days from 0 to 400, got “{days}”"
    )
    assert model.versions.count() == 1


def test_zero_days_saves_without_rescoring(client, admin_user, model):
    client.force_login(admin_user)
    r = _edit(client, model, _form(model, green_min="75", backfill_days="0", op="save"))
    assert r.status_code == 302 and "?changed=" in r["Location"]
    assert model.versions.count() == 2
