"""The assignments page: which model scores which accounts. Rules in health.assign's order
with the accounts each covers as health.assign resolves them; add, change and remove rules
with errors in words (nothing written then); a new model as a copy; rescoring; admins only;
query counts."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from accounts.models import Account
from metrics.models import HealthModel
from metrics.selectors import health_rules
from metrics.services import health_model_copy, health_model_ensure_default, health_model_for
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

URL = "workspace:health-assignments"


@pytest.fixture
def book(admin_user):
    """Accounts in three segments and several stages; the default model, an Enterprise
    model (segment), an Onboarding model (stage), an Enterprise-onboarding model (both) and
    a spare model that scores no account."""
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
        model.applies_to_segment, model.applies_to_lifecycle = segment, stage
        model.save()
        models[name] = model
    return models


def _state() -> list[tuple]:
    return list(
        HealthModel.objects.order_by("pk").values_list(
            "name", "applies_to_segment", "applies_to_lifecycle", "is_default"
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


def test_the_page_shows_the_rules_and_when_a_change_applies(client, admin_user, book):
    client.force_login(admin_user)
    r = client.get(reverse(URL))
    html = r.content.decode()
    assert r.status_code == 200
    order = re.findall(r'<tr id="rule-(\d+)"', html)
    names = ["Enterprise onboarding", "Enterprise", "Onboarding", "default"]
    assert order == [str(book[n].pk) for n in names]
    assert "2 more match; a rule above takes them" in html  # Enterprise: 5 match, 3 covered
    assert "applies from the next nightly run (02:15 UTC)" in html
    assert reverse("workspace:health-rescore") in html
    # the segments accounts have, the lifecycle stages, and the spare model for a new rule
    new_row = html.split('id="rule-new"')[1]
    assert '<option value="Mid-Market">Mid-Market</option>' in new_row
    assert '<option value="renewal">Renewal</option>' in new_row
    assert f'<option value="{book["Spare"].pk}">Spare · v1</option>' in new_row


def _save(client, **data):
    return client.post(reverse("workspace:health-rule-save"), data)


def test_add_change_and_remove_rules(client, admin_user, book):
    client.force_login(admin_user)
    spare, enterprise = book["Spare"], book["Enterprise"]
    r = _save(client, segment="SMB", lifecycle="mature", model=spare.pk)
    assert r.status_code == 302
    follow = client.get(r["Location"]).content.decode()
    assert "Saved: segment “SMB” and stage Mature → Spare." in follow
    assert "It applies from the next nightly run" in follow
    rules = {r.model.name: r.covers for r in health_rules()["rules"]}
    assert rules["Spare"] == 5 and rules["Default"] == 2
    # change a rule's scope; then give its accounts to another model (Enterprise is freed)
    assert (
        _save(client, rule=spare.pk, segment="SMB", lifecycle="", model=spare.pk).status_code == 302
    )
    spare.refresh_from_db()
    assert (spare.applies_to_segment, spare.applies_to_lifecycle) == ("SMB", "")
    assert (
        client.post(reverse("workspace:health-rule-remove", args=[enterprise.pk])).status_code
        == 302
    )
    enterprise.refresh_from_db()
    assert (enterprise.applies_to_segment, enterprise.applies_to_lifecycle) == ("", "")
    assert _save(client, rule=spare.pk, segment="SMB", model=enterprise.pk).status_code == 302
    assert HealthModel.objects.get(applies_to_segment="SMB", applies_to_lifecycle="") == enterprise
    spare.refresh_from_db()
    assert (spare.applies_to_segment, spare.applies_to_lifecycle) == ("", "")
    # the default rule: another model can take it; the old default then scores no account
    default = book["default"]
    assert _save(client, rule=default.pk, model=spare.pk).status_code == 302
    assert HealthModel.objects.get(is_default=True) == spare
    default.refresh_from_db()
    assert not default.is_default and not default.applies_to_segment
    data = health_rules()
    assert data["no_model"] == 0 and {m.name for m in data["unassigned"]} == {"Default"}


@pytest.mark.parametrize(
    ("post", "message"),
    [
        (
            {"segment": "Enterprise", "lifecycle": "", "model": "Spare"},
            "there is a rule for segment “Enterprise” already (model Enterprise): change that rule instead",
        ),
        (
            {"segment": "Enterprprise", "lifecycle": "", "model": "Spare"},
            "Segment: no account is in segment “Enterprprise”; the segments are: Enterprise, Mid-Market, SMB",
        ),
        (
            {"segment": "SMB", "lifecycle": "asleep", "model": "Spare"},
            "Stage: unknown lifecycle stage “asleep”; the stages are: Onboarding, Adoption, Mature, Renewal, Churned",
        ),
        (
            {"segment": "SMB", "lifecycle": "", "model": "99999"},
            "Model: there is no model “99999”: reload the page",
        ),
        (
            {"segment": "SMB", "lifecycle": "", "model": ""},
            "Model: choose the model that scores these accounts",
        ),
        (
            {"segment": "SMB", "lifecycle": "", "model": "Onboarding"},
            "Model: Onboarding already scores stage Onboarding; a model serves one rule: choose a model that applies to no account, or make a copy of Onboarding",
        ),
        (
            {"segment": "", "lifecycle": "", "model": "Spare"},
            "Segment: choose a segment, a stage, or both: every other account is the default rule's",
        ),
    ],
)
def test_a_bad_rule_is_refused_in_words_and_nothing_is_written(
    client, admin_user, book, post, message
):
    client.force_login(admin_user)
    before = _state()
    if post["model"] in book:
        post = {**post, "model": book[post["model"]].pk}
    r = _save(client, **post)
    html = r.content.decode()
    assert r.status_code == 200
    errors = re.search(r"The rule was not added:<ul>(.*?)</ul>", html, re.S).group(1)
    assert [unescape(e) for e in re.findall(r"<li>(.*?)</li>", errors)] == [message]
    assert _state() == before


def test_the_default_rule_cannot_be_removed_or_narrowed(client, admin_user, book):
    client.force_login(admin_user)
    before = _state()
    default = book["default"]
    r = client.post(reverse("workspace:health-rule-remove", args=[default.pk]))
    assert "The default rule stays" in r.content.decode()
    r = _save(client, rule=default.pk, segment="SMB", model=default.pk)
    assert "the default rule covers every account no other rule matches" in r.content.decode()
    assert _state() == before


def test_a_rules_segment_no_account_has_any_more_can_stay(client, admin_user, book):
    """Unknown segments are refused when typed, not when a rule has one already."""
    client.force_login(admin_user)
    Account.objects.filter(segment="Enterprise").update(segment="Large")
    enterprise = book["Enterprise"]
    page = client.get(reverse(URL)).content.decode()
    assert "Enterprise (no account now)" in page
    r = _save(
        client, rule=enterprise.pk, segment="Enterprise", lifecycle="renewal", model=enterprise.pk
    )
    assert r.status_code == 302
    enterprise.refresh_from_db()
    assert enterprise.applies_to_lifecycle == "renewal"


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
    assert not new.is_default and not new.applies_to_segment and not new.applies_to_lifecycle
    before = _state()
    r = client.post(
        reverse("workspace:health-model-copy"),
        {"name": "strategic", "source": book["Enterprise"].pk},
    )
    assert "Name: a model called “strategic” exists already" in r.content.decode()
    r = client.post(reverse("workspace:health-model-copy"), {"name": "X", "source": "nope"})
    assert "choose the model to copy" in r.content.decode()
    assert _state() == before


def test_rescore_starts_the_backfill(client, admin_user, book, celery_eager):
    client.force_login(admin_user)
    r = client.post(reverse("workspace:health-rescore"), {"backfill_days": "2"})
    assert r.status_code == 302 and reverse("workspace:backfill-status") in r["Location"]
    assert "2 of 2 days rescored" in client.get(r["Location"]).content.decode()
    r = client.post(reverse("workspace:health-rescore"), {"backfill_days": "9999"})
    assert "Days: a whole number of days from 0 to 400" in r.content.decode()


def test_csm_and_manager_get_403_and_nothing_is_written(client, csm, manager, book):
    before = _state()
    spare = book["Spare"]
    for user in (csm, manager):
        client.force_login(user)
        assert client.get(reverse(URL)).status_code == 403
        assert _save(client, segment="SMB", lifecycle="mature", model=spare.pk).status_code == 403
        remove = reverse("workspace:health-rule-remove", args=[book["Enterprise"].pk])
        assert client.post(remove).status_code == 403
        copy = reverse("workspace:health-model-copy")
        assert client.post(copy, {"name": "Mine", "source": spare.pk}).status_code == 403
        assert (
            client.post(reverse("workspace:health-rescore"), {"backfill_days": "1"}).status_code
            == 403
        )
    assert _state() == before


def test_query_count_of_the_page(client, admin_user, book, django_assert_num_queries):
    client.force_login(admin_user)
    # session, user, groups, the models with their active version, accounts by segment
    # and stage; the same whatever the number of accounts and rules
    with django_assert_num_queries(5):
        assert client.get(reverse(URL)).status_code == 200
    AccountFactory.create_batch(5, segment="Other", lifecycle_stage="renewal")
    health_model_copy(source=book["default"], name="Another")
    with django_assert_num_queries(5):
        assert client.get(reverse(URL)).status_code == 200
