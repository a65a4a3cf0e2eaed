"""The assignments page: which model scores which accounts. Rules in health.assign's order
with the accounts each covers as health.assign resolves them; a model serves any number of
rules; add, change and remove rules and move the default, with errors in words at their
field (nothing written then) and every change in the audit trail; a new model as a copy;
rescoring; admins only; query counts."""

from __future__ import annotations

import re
from html import unescape
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import Account
from metrics import services
from metrics.models import HealthAssignmentChange, HealthAssignmentRule, HealthModel
from metrics.selectors import health_rules
from metrics.services import health_model_copy, health_model_ensure_default, health_model_for
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

URL = "workspace:health-assignments"


@pytest.fixture
def book(admin_user):
    """Accounts in three segments and several stages; the default model, an Enterprise
    model (segment), an Onboarding model (stage), an Enterprise-onboarding model (both) and
    a spare model that scores no account. Rules written directly: no audit rows yet."""
    default = health_model_ensure_default()
    for segment, stage, n in [
        ("Enterprise", "onboarding", 2),
        ("Enterprise", "mature", 3),
        ("SMB", "onboarding", 4),
        ("SMB", "mature", 5),
        ("Mid-Market", "renewal", 1),
        ("", "adoption", 1),
    ]:
        AccountFactory.create_batch(n, segment=segment, lifecycle_stage=stage)
    models = {"default": default}
    for name, segment, stage in [
        ("Enterprise", "Enterprise", ""),
        ("Onboarding", "", "onboarding"),
        ("Enterprise onboarding", "Enterprise", "onboarding"),
        ("Spare", "", ""),
    ]:
        model = health_model_copy(source=default, name=name, created_by=admin_user)
        if segment or stage:
            HealthAssignmentRule.objects.create(model=model, segment=segment, lifecycle=stage)
        models[name] = model
    return models


def _rule(segment: str = "", lifecycle: str = "") -> HealthAssignmentRule:
    return HealthAssignmentRule.objects.select_related("model").get(
        segment=segment, lifecycle=lifecycle
    )


def _state() -> tuple:
    """Everything the page may write: the rules, the default, the audit trail."""
    return (
        sorted(HealthAssignmentRule.objects.values_list("segment", "lifecycle", "model__name")),
        HealthModel.objects.get(is_default=True).name,
        HealthAssignmentChange.objects.count(),
    )


def _changes() -> list[tuple]:
    return list(
        HealthAssignmentChange.objects.order_by("id").values_list(
            "action", "before", "after", "by__email"
        )
    )


def test_rules_in_order_with_the_accounts_health_assign_gives_them(book):
    data = health_rules()
    rows = [(r.model.name, r.priority, r.covers, r.matches) for r in data["rules"]]
    assert rows == [
        ("Enterprise onboarding", "segment and stage", 2, 2),
        ("Enterprise", "segment", 3, 5),
        ("Onboarding", "stage", 4, 6),
        ("Default", "default", 7, 16),
    ]
    assert [m.name for m in data["unassigned"]] == ["Spare"]
    assert data["segments"] == ["Enterprise", "Mid-Market", "SMB"]
    assert (data["accounts"], data["no_model"]) == (16, 0)
    # the counts are what the scoring resolves, account by account
    by_model = {}
    for account in Account.objects.all():
        name = health_model_for(account).model.name
        by_model[name] = by_model.get(name, 0) + 1
    assert by_model == {r.model.name: r.covers for r in data["rules"]}


def test_one_model_serves_several_rules_each_counted_on_its_own(client, admin_user, book):
    """One Enterprise model for the Enterprise and the Strategic segments, and for SMB
    accounts in renewal: each rule has its own row and count; the scoring agrees."""
    enterprise = book["Enterprise"]
    AccountFactory.create_batch(2, segment="Strategic", lifecycle_stage="mature")
    HealthAssignmentRule.objects.create(model=enterprise, segment="Strategic")
    HealthAssignmentRule.objects.create(model=enterprise, segment="SMB", lifecycle="mature")
    data = health_rules()
    rows = [(r.segment, r.lifecycle, r.model.name, r.covers) for r in data["rules"]]
    assert rows == [
        ("Enterprise", "onboarding", "Enterprise onboarding", 2),
        ("SMB", "mature", "Enterprise", 5),
        ("Enterprise", "", "Enterprise", 3),
        ("Strategic", "", "Enterprise", 2),
        ("", "onboarding", "Onboarding", 4),
        ("", "", "Default", 2),
    ]
    scored = [
        health_model_for(a).model.name
        for a in Account.objects.filter(segment__in=["Strategic", "SMB"], lifecycle_stage="mature")
    ]
    assert scored == ["Enterprise"] * 7
    client.force_login(admin_user)
    html = client.get(reverse(URL)).content.decode()
    assert len(re.findall(r'<tr id="rule-\d+"', html)) == 5
    # the health models page names every rule of the model
    models_page = client.get(reverse("workspace:health-models")).content.decode()
    assert "segment “Enterprise”; segment “SMB” and stage Mature; segment “Strategic”" in (
        unescape(models_page)
    )


def test_the_page_shows_the_rules_and_when_a_change_applies(client, admin_user, book):
    HealthAssignmentRule.objects.create(model=book["Spare"], segment="Strategic")
    client.force_login(admin_user)
    r = client.get(reverse(URL))
    html = r.content.decode()
    assert r.status_code == 200
    order = re.findall(r'<tr id="(rule-(?:\d+|default))"', html)
    rules = [_rule("Enterprise", "onboarding"), _rule("Enterprise"), _rule("Strategic")]
    rules.append(_rule(lifecycle="onboarding"))
    assert order == [f"rule-{r.pk}" for r in rules] + ["rule-default"]
    assert "2 more match; a rule above takes them" in html  # Enterprise: 5 match, 3 covered
    assert "applies from the next nightly run (02:15 UTC)" in html
    assert reverse("workspace:health-rescore") in html
    # segments are typed, with the segments accounts have offered; a rule for a segment no
    # account has says so in its row
    datalist = re.search(r'<datalist id="known-segments">(.*?)</datalist>', html).group(1)
    assert re.findall(r'value="([^"]*)"', datalist) == ["Enterprise", "Mid-Market", "SMB"]
    strategic = html.split(f'id="rule-{rules[2].pk}"')[1].split("</tr>")[0]
    assert 'value="Strategic"' in strategic and "no account yet" in strategic
    assert "no account yet" not in html.split(f'id="rule-{rules[1].pk}"')[1].split("</tr>")[0]
    new_row = html.split('id="rule-new"')[1]
    assert 'list="known-segments"' in new_row
    assert '<option value="renewal">Renewal</option>' in new_row
    # any model with an active version may take a new rule, one with rules too
    assert f'<option value="{book["Spare"].pk}">Spare · v1</option>' in new_row
    assert f'<option value="{book["Enterprise"].pk}">Enterprise · v1</option>' in new_row
    assert "No rule has changed yet." in html


def _save(client, **data):
    return client.post(reverse("workspace:health-rule-save"), data)


def test_add_change_swap_and_remove_rules_each_in_the_audit_trail(client, admin_user, book):
    client.force_login(admin_user)
    spare, enterprise = book["Spare"], book["Enterprise"]
    # add: a second rule for a model that has one, for a segment no account has yet
    r = _save(client, segment="Strategic", lifecycle="", model=enterprise.pk)
    assert r.status_code == 302
    follow = client.get(r["Location"]).content.decode()
    assert "Saved: segment “Strategic” → Enterprise." in unescape(follow)
    assert "It applies from the next nightly run" in follow
    assert enterprise.rules.count() == 2
    # change a rule's scope
    smb = _save(client, segment="SMB", lifecycle="mature", model=spare.pk)
    assert smb.status_code == 302
    rule = _rule("SMB", "mature")
    assert _save(client, rule=rule.pk, segment="SMB", model=spare.pk).status_code == 302
    assert _rule("SMB").model == spare
    # swap two rules' models: just two changes, no remove first
    onboarding = _rule(lifecycle="onboarding")
    assert (
        _save(client, rule=rule.pk, segment="SMB", model=book["Onboarding"].pk).status_code == 302
    )
    assert (
        _save(client, rule=onboarding.pk, lifecycle="onboarding", model=spare.pk).status_code == 302
    )
    assert (_rule("SMB").model.name, _rule(lifecycle="onboarding").model.name) == (
        "Onboarding",
        "Spare",
    )
    # remove
    strategic = _rule("Strategic")
    r = client.post(reverse("workspace:health-rule-remove", args=[strategic.pk]))
    assert r.status_code == 302
    assert not HealthAssignmentRule.objects.filter(segment="Strategic").exists()
    assert enterprise.rules.count() == 1
    # the default: another model can take it; the old one keeps its versions
    assert (
        client.post(reverse("workspace:health-default-save"), {"model": spare.pk}).status_code
        == 302
    )
    assert HealthModel.objects.get(is_default=True) == spare
    email = admin_user.email
    assert _changes() == [
        ("added", "", "segment “Strategic” → Enterprise", email),
        ("added", "", "segment “SMB” and stage Mature → Spare", email),
        ("changed", "segment “SMB” and stage Mature → Spare", "segment “SMB” → Spare", email),
        ("changed", "segment “SMB” → Spare", "segment “SMB” → Onboarding", email),
        ("changed", "stage Onboarding → Onboarding", "stage Onboarding → Spare", email),
        ("removed", "segment “Strategic” → Enterprise", "", email),
        ("default_moved", "every other account → Default", "every other account → Spare", email),
    ]
    # the page's recent changes, newest first, in words
    html = unescape(client.get(reverse(URL)).content.decode())
    recent = re.search(r'<ol class="change-list">(.*?)</ol>', html, re.S).group(1)
    items = [
        # after the time, "24 Nov 2026, 05:20 UTC": five words
        re.sub(r"<[^>]+>", "", li).split(" ", 5)[-1]
        for li in re.findall(r"<li>(.*?)</li>", recent)
    ]
    who = str(admin_user)  # the page names people as every page does: the name, else email
    assert items[0] == (
        f"{who} Default moved: from every other account → Default to every other account → Spare"
    )
    assert items[-1] == f"{who} Rule added: segment “Strategic” → Enterprise"
    assert len(items) == 7


def test_saving_a_rule_unchanged_writes_nothing(client, admin_user, book):
    client.force_login(admin_user)
    before = _state()
    rule = _rule("Enterprise")
    r = _save(client, rule=rule.pk, segment="Enterprise", model=book["Enterprise"].pk)
    assert r.status_code == 302
    assert _state() == before


def _new_row_errors(html: str) -> dict[str, str]:
    """The new rule's errors, by the field they are shown at."""
    found = re.findall(r'<p class="field-error" id="rule-new-(\w+)-error">(.*?)</p>', html)
    return {field: unescape(text) for field, text in found}


@pytest.mark.parametrize(
    ("post", "field", "message"),
    [
        (
            {"segment": "Enterprise", "lifecycle": "onboarding", "model": "Spare"},
            "segment",
            "another rule already sends “Enterprise” accounts in onboarding to the model "
            "“Enterprise onboarding”: change that rule instead",
        ),
        (
            {"segment": "", "lifecycle": "onboarding", "model": "Spare"},
            "lifecycle",
            "another rule already sends accounts in onboarding to the model “Onboarding”: "
            "change that rule instead",
        ),
        (
            {"segment": " enterprise ", "lifecycle": "", "model": "Spare"},
            "segment",
            "accounts have the segment “Enterprise”: write it the same way (a rule's segment "
            "must match exactly)",
        ),
        (
            {"segment": "SMB", "lifecycle": "asleep", "model": "Spare"},
            "lifecycle",
            "unknown lifecycle stage “asleep”; the stages are: Onboarding, Adoption, Mature, "
            "Renewal, Churned",
        ),
        (
            {"segment": "SMB", "lifecycle": "", "model": "99999"},
            "model",
            "there is no model “99999”: reload the page",
        ),
        (
            {"segment": "SMB", "lifecycle": "", "model": ""},
            "model",
            "choose the model that scores these accounts",
        ),
        (
            {"segment": "SMB", "lifecycle": "", "model": "Versionless"},
            "model",
            "Versionless has no active version: it cannot score accounts yet",
        ),
        (
            {"segment": "", "lifecycle": "", "model": "Spare"},
            "segment",
            "choose a segment, a stage, or both: every other account is the default model's",
        ),
    ],
)
def test_a_bad_rule_is_refused_at_its_field_and_nothing_is_written(
    client, admin_user, book, post, field, message
):
    HealthModel.objects.create(name="Versionless")
    client.force_login(admin_user)
    before = _state()
    if post["model"] in book or post["model"] == "Versionless":
        post = {**post, "model": HealthModel.objects.get(name=post["model"]).pk}
    r = _save(client, **post)
    html = r.content.decode()
    assert r.status_code == 200
    assert _new_row_errors(html) == {field: message}
    assert f'id="rule-new-{field}" ' in html.split(f'aria-describedby="rule-new-{field}-error"')[0]
    assert "The rule was not added: see the field marked above." in html
    # what was typed is shown again
    assert f'value="{post["segment"]}"' in html.split('id="rule-new"')[1]
    assert _state() == before


def test_a_bad_change_is_refused_in_its_row_and_nothing_is_written(client, admin_user, book):
    client.force_login(admin_user)
    before = _state()
    rule = _rule("Enterprise")
    r = _save(client, rule=rule.pk, segment="", lifecycle="onboarding", model=book["Enterprise"].pk)
    html = unescape(r.content.decode())
    error = re.search(
        rf'<p class="field-error" id="rule-{rule.pk}-lifecycle-error">(.*?)</p>', html
    )
    assert error.group(1) == (
        "another rule already sends accounts in onboarding to the model “Onboarding”: "
        "change that rule instead"
    )
    assert "Rule 2 was not saved: see the field marked above." in html
    assert "The rule was not added" not in html
    # a rule removed meanwhile
    gone = _rule("Enterprise", "onboarding").pk
    HealthAssignmentRule.objects.filter(pk=gone).delete()
    before = _state()
    r = _save(client, rule=gone, segment="SMB", model=book["Spare"].pk)
    assert "this rule does not exist any more: reload the page" in r.content.decode()
    assert client.post(reverse("workspace:health-rule-remove", args=[gone])).status_code == 404
    assert _state() == before


def test_the_default_moves_only_to_a_model_that_can_score(client, admin_user, book):
    client.force_login(admin_user)
    HealthModel.objects.create(name="Versionless")
    before = _state()
    url = reverse("workspace:health-default-save")
    for model, message in [
        (book["default"].pk, "Default is the default already"),
        (HealthModel.objects.get(name="Versionless").pk, "Versionless has no active version"),
        ("nope", "there is no model “nope”: reload the page"),
    ]:
        html = unescape(client.post(url, {"model": model}).content.decode())
        error = re.search(r'<p class="field-error" id="rule-default-model-error">(.*?)</p>', html)
        assert message in error.group(1)
        assert "The default was not saved" in html
    assert _state() == before


def test_a_rule_and_its_audit_row_are_one_transaction(book, admin_user):
    """If the audit row cannot be written, the rule is not either."""
    before = _state()
    with (
        mock.patch.object(
            HealthAssignmentChange.objects, "create", side_effect=RuntimeError("disk full")
        ),
        pytest.raises(RuntimeError),
    ):
        services.health_rule_add(model=book["Spare"], segment="SMB", by=admin_user)
    assert _state() == before


def test_a_rule_for_a_segment_no_account_has_scores_them_once_they_come(client, admin_user, book):
    client.force_login(admin_user)
    assert _save(client, segment="Strategic", model=book["Spare"].pk).status_code == 302
    strategic = health_rules()["rules"][2]
    assert (strategic.segment, strategic.segment_known, strategic.covers) == ("Strategic", False, 0)
    account = AccountFactory(segment="Strategic", lifecycle_stage="mature")
    assert health_model_for(account).model == book["Spare"]


def test_a_new_model_as_a_copy(client, admin_user, book):
    client.force_login(admin_user)
    r = client.post(
        reverse("workspace:health-model-copy"),
        {"name": "Strategic", "source": book["Enterprise"].pk},
    )
    assert r.status_code == 302
    new = HealthModel.objects.get(name="Strategic")
    version = new.versions.get()
    source = book["Enterprise"].versions.get(active=True)
    assert version.components == source.components and version.notes == f"a copy of {source}"
    assert not new.is_default and not new.rules.exists()
    before = _state()
    r = client.post(
        reverse("workspace:health-model-copy"),
        {"name": "strategic", "source": book["Enterprise"].pk},
    )
    html = unescape(r.content.decode())
    assert (
        '<p class="field-error" id="copy-name-error">a model called “strategic” exists already'
        in html
    )
    r = client.post(reverse("workspace:health-model-copy"), {"name": "X", "source": "nope"})
    assert "choose the model to copy" in r.content.decode()
    assert _state() == before


def test_rescore_starts_the_backfill(client, admin_user, book, celery_eager):
    client.force_login(admin_user)
    r = client.post(reverse("workspace:health-rescore"), {"backfill_days": "2"})
    assert r.status_code == 302 and reverse("workspace:backfill-status") in r["Location"]
    assert "2 of 2 days rescored" in client.get(r["Location"]).content.decode()
    r = client.post(reverse("workspace:health-rescore"), {"backfill_days": "9999"})
    assert "Days: a whole number of days from 1 to 400, got “9999”" in r.content.decode()


@pytest.mark.parametrize("days", ["-3", "0", "401", "x"])
def test_rescore_refuses_days_out_of_range_with_one_message(client, admin_user, book, days):
    """-3 and 0 are refused alike, by one message naming the form's own range (1 to 400)."""
    client.force_login(admin_user)
    r = client.post(reverse("workspace:health-rescore"), {"backfill_days": days})
    html = r.content.decode()
    assert r.status_code == 200
    assert (
        f'<p class="field-error" id="rescore-days-error" role="alert">Days: a whole number '
        f"of days from 1 to 400, got “{days}”</p>"
    ) in html
    assert "at least 1 day" not in html
    r = client.post(reverse("workspace:health-rescore"), {"backfill_days": ""})
    assert "Days: a whole number of days from 1 to 400</p>" in r.content.decode()


def test_csm_and_manager_get_403_and_nothing_is_written(client, csm, manager, book):
    before = _state()
    spare = book["Spare"]
    rule = _rule("Enterprise")
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse(URL)).status_code == 403
        assert _save(client, segment="SMB", lifecycle="mature", model=spare.pk).status_code == 403
        assert _save(client, rule=rule.pk, segment="SMB", model=spare.pk).status_code == 403
        remove = reverse("workspace:health-rule-remove", args=[rule.pk])
        assert client.post(remove).status_code == 403
        default = reverse("workspace:health-default-save")
        assert client.post(default, {"model": spare.pk}).status_code == 403
        copy = reverse("workspace:health-model-copy")
        assert client.post(copy, {"name": "Mine", "source": spare.pk}).status_code == 403
        assert (
            client.post(reverse("workspace:health-rescore"), {"backfill_days": "1"}).status_code
            == 403
        )
    assert _state() == before


def test_query_count_of_the_page(client, admin_user, book, django_assert_num_queries):
    client.force_login(admin_user)
    # session, user, groups, the models with their active version and their rules (one
    # LEFT JOIN), accounts by segment and stage, and the recent changes: one more than
    # before the audit trail, which the page now lists. The same whatever the number of
    # accounts, rules, models and changes
    with django_assert_num_queries(6):
        assert client.get(reverse(URL)).status_code == 200
    AccountFactory.create_batch(5, segment="Other", lifecycle_stage="renewal")
    another = health_model_copy(source=book["default"], name="Another")
    for segment in ("Other", "Strategic", "Large"):
        services.health_rule_add(model=another, segment=segment, by=admin_user)
    with django_assert_num_queries(6):
        assert client.get(reverse(URL)).status_code == 200


def test_the_django_admin_shows_rules_and_changes_read_only(client, admin_user, book):
    services.health_rule_add(model=book["Spare"], segment="SMB", by=admin_user)
    change = HealthAssignmentChange.objects.get()
    client.force_login(admin_user)
    listing = client.get(reverse("admin:metrics_healthassignmentchange_changelist"))
    assert listing.status_code == 200
    assert "segment “SMB” → Spare" in unescape(listing.content.decode())
    assert client.get(reverse("admin:metrics_healthassignmentchange_add")).status_code == 403
    url = reverse("admin:metrics_healthassignmentchange_change", args=[change.pk])
    client.post(url, {"action": "removed", "before": "x", "after": ""})
    change.refresh_from_db()
    assert (change.action, change.after) == ("added", "segment “SMB” → Spare")
    delete = reverse("admin:metrics_healthassignmentchange_delete", args=[change.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    # a model's page lists its rules and the default flag, neither editable there
    spare = book["Spare"]
    page = client.get(reverse("admin:metrics_healthmodel_change", args=[spare.pk]))
    html = unescape(page.content.decode())
    assert "Change the rules on the assignments page" in html
    assert 'name="is_default"' not in html and 'name="rules-0-segment"' not in html
    models = unescape(client.get(reverse("admin:metrics_healthmodel_changelist")).content.decode())
    assert "segment “SMB”" in models and "stage Onboarding" in models


def test_a_rule_saved_meanwhile_is_refused_in_words(book, admin_user):
    """Where rows cannot be locked (SQLite), the unique constraint is the last word: the
    same rule saved by someone else between the check and the write."""
    before = _state()
    with (
        mock.patch("metrics.services._rule_errors", return_value={}),
        pytest.raises(ValidationError) as info,
    ):
        services.health_rule_add(model=book["Spare"], segment="Enterprise", by=admin_user)
    assert info.value.message_dict == {
        "segment": ["another rule for “Enterprise” accounts was saved meanwhile: reload the page"]
    }
    assert _state() == before
