"""Two admins on the assignments page at once: a rule's (or the default's) Save from a page
opened before the other's change is refused, nothing written, naming who made the change
and when (from the audit trail); a second click on Save is no error."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from accounts import utc
from accounts.models import Role
from metrics.models import HealthAssignmentChange, HealthAssignmentRule, HealthModel
from metrics.services import health_model_copy, health_model_ensure_default
from tests.conftest import _user

pytestmark = pytest.mark.django_db

PAGE = "workspace:health-assignments"


@pytest.fixture
def models(admin_user):
    default = health_model_ensure_default()
    smb = health_model_copy(source=default, name="SMB", created_by=admin_user)
    spare = health_model_copy(source=default, name="Spare", created_by=admin_user)
    HealthAssignmentRule.objects.create(model=smb, segment="SMB")
    return {"default": default, "SMB": smb, "Spare": spare}


@pytest.fixture
def two(admin_user):
    bea = _user("bea@example.com", Role.ADMIN, first_name="Bea", is_staff=True)
    ada_client, bea_client = Client(), Client()
    ada_client.force_login(admin_user)
    bea_client.force_login(bea)
    return ada_client, bea_client, bea


def _seen(client: Client, form_id: str) -> str:
    page = client.get(reverse(PAGE)).content.decode()
    form = page[page.index(f'id="{form_id}"') :]
    return unescape(re.search(r'name="seen" value="([^"]*)"', form).group(1))


def test_a_rule_changed_since_the_page_was_opened_is_refused(two, models):
    ada, bea, bea_user = two
    rule = HealthAssignmentRule.objects.get()
    key = f"rule-{rule.pk}-form"
    ada_seen, bea_seen = _seen(ada, key), _seen(bea, key)
    assert ada_seen == f"SMB||{models['SMB'].pk}"
    save = reverse("workspace:health-rule-save")
    base = {"rule": rule.pk, "segment": "SMB", "lifecycle": ""}

    r = bea.post(save, {**base, "model": models["Spare"].pk, "seen": bea_seen})
    assert r.status_code == 302
    r = ada.post(save, {**base, "lifecycle": "onboarding", "model": models["SMB"].pk,
                        "seen": ada_seen})  # fmt: skip

    change = HealthAssignmentChange.objects.get()
    page = unescape(r.content.decode())
    assert (
        f"Rule 1 was not saved: This rule was changed by Bea at {utc.moment_text(change.at)} "
        "UTC, after you opened the page. Your changes are not saved: reload the page to see "
        "the rules as they are now, then make your change again."
    ) in page
    rule.refresh_from_db()
    assert (rule.lifecycle, rule.model.name) == ("", "Spare")  # Bea's change stands
    assert HealthAssignmentChange.objects.count() == 1
    # the refused row keeps what Ada sent, her old "seen" too: Save again is refused again
    assert f'name="seen" value="{ada_seen}"' in page
    # reloaded, her change goes through on top of Bea's
    r = ada.post(save, {**base, "lifecycle": "onboarding", "model": models["Spare"].pk,
                        "seen": _seen(ada, key)})  # fmt: skip
    assert r.status_code == 302
    rule.refresh_from_db()
    assert (rule.lifecycle, rule.model.name) == ("onboarding", "Spare")


def test_a_second_click_on_a_rules_save_is_no_error(two, models):
    ada, _, _ = two
    rule = HealthAssignmentRule.objects.get()
    form = {"rule": rule.pk, "segment": "SMB", "lifecycle": "", "model": models["Spare"].pk,
            "seen": _seen(ada, f"rule-{rule.pk}-form")}  # fmt: skip
    save = reverse("workspace:health-rule-save")
    assert ada.post(save, form).status_code == 302
    assert ada.post(save, form).status_code == 302  # seen is old; nothing changes
    assert HealthAssignmentChange.objects.count() == 1


def test_the_default_moved_since_the_page_was_opened_is_refused(two, models):
    ada, bea, _ = two
    ada_seen, bea_seen = _seen(ada, "rule-default-form"), _seen(bea, "rule-default-form")
    assert ada_seen == str(models["default"].pk)
    url = reverse("workspace:health-default-save")
    assert bea.post(url, {"model": models["Spare"].pk, "seen": bea_seen}).status_code == 302
    r = ada.post(url, {"model": models["SMB"].pk, "seen": ada_seen})
    assert "The default was moved by Bea at " in unescape(r.content.decode())
    assert HealthModel.objects.get(is_default=True).name == "Spare"
    assert HealthAssignmentChange.objects.count() == 1
