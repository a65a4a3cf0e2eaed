"""Two people editing the same thing at once, in a real browser: the htmx forms show the
refusal of a stale save where the person clicked, and nothing of theirs is written."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import ChangeRecord, Role, User
from accounts.services import user_access_update
from tests.conftest import _user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "admin@demo.example"
CSM = "csm1@demo.example"


def test_users_row_refuses_a_save_over_another_admins_change(page, login, demo_users, shot):
    bea = _user("bea@example.com", Role.ADMIN, first_name="Bea", is_staff=True)
    csm = User.objects.get(email=CSM)
    login(page, ADMIN)
    page.goto("/manage/users/")
    row = page.locator(f"#user-{csm.pk}")
    expect(row).to_be_visible()

    # Bea, on her own page, makes the CSM a manager after this page was opened
    user_access_update(user=csm, role=Role.MANAGER, manager=csm.manager, is_active=True, by=bea)

    row.get_by_label(re.compile(r"can sign in$")).uncheck()
    row.get_by_role("button", name=re.compile(r"^Save")).click()
    expect(row.get_by_role("alert")).to_contain_text("was changed by Bea at", timeout=5000)
    expect(row.get_by_role("alert")).to_contain_text(
        "Your changes are not saved: reload the page to see their access as it is now"
    )
    expect(row.locator("select[name=role]")).to_have_value("Manager")  # the row as saved now
    # and the trail below lists Bea's change the refusal names (it said none was made)
    expect(page.locator("#changes li")).to_have_count(1)
    expect(page.locator("#changes li").first).to_contain_text("Bea")
    expect(page.locator("#changes li").first).to_contain_text("role CSM → Manager")
    expect(row.locator("input[name=is_active]")).to_be_checked()
    assert User.objects.get(pk=csm.pk).is_active
    # the reason is a row of its own across the table, under the dropdowns: in the name's
    # cell it widened that column and squeezed every row's dropdowns to a few letters
    alert = row.get_by_role("alert").bounding_box()
    assert alert["width"] > 2 * row.locator("th").bounding_box()["width"]
    for name in ("role", "manager"):
        box = row.locator(f"select[name={name}]").bounding_box()
        assert box["width"] >= 140 and box["y"] + box["height"] <= alert["y"], name
    shot(page, "users-stale-refused")
    page.set_viewport_size({"width": 375, "height": 800})  # a phone: one person a block
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = row.locator("select[name=role]").bounding_box()
    assert box["width"] > 250 and box["y"] < row.get_by_role("alert").bounding_box()["y"]
    shot(page, "users-stale-refused-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # made again on the row as it is now, the change goes through and joins the trail
    row.get_by_label(re.compile(r"can sign in$")).uncheck()
    row.get_by_role("button", name=re.compile(r"^Save")).click()
    expect(row).to_contain_text("Saved.")
    expect(page.locator("#changes li").first).to_contain_text("can sign in yes → no")
    assert not User.objects.get(pk=csm.pk).is_active
    assert ChangeRecord.objects.count() == 2
    shot(page, "users-recent-changes")


def test_campaign_editor_refuses_a_save_over_another_change(page, login, demo_users, shot):
    from surveys import services
    from surveys.forms import CampaignForm
    from surveys.models import Campaign

    admin = User.objects.get(email=ADMIN)
    manager = User.objects.get(email="manager@demo.example")
    data = {"name": "Quarterly NPS", "status": "draft", "kind": "nps", "language": "en",
            "trigger": "one_off", "expires_after_days": "30"}  # fmt: skip
    form = CampaignForm(data)
    assert form.is_valid(), form.errors
    campaign = services.campaign_save(data=form.cleaned_data, user=admin)
    login(page, ADMIN)
    page.goto(f"/surveys/{campaign.pk}/edit/")
    # Max renames it meanwhile
    services.campaign_save(
        data={**form.cleaned_data, "name": "NPS, spring"}, user=manager, campaign=campaign
    )
    page.get_by_label("Follow-up question").fill("What would you change?")
    page.get_by_role("button", name=re.compile(r"^Save")).click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "This campaign was changed by Max Manager at"
    )
    expect(page.get_by_label("Follow-up question")).to_have_value("What would you change?")
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit NPS, spring")
    assert Campaign.objects.get().survey.follow_up == ""
    shot(page, "campaign-stale-refused")


def test_assignment_rule_refuses_a_save_over_another_change(page, login, demo_users, shot):
    from metrics.models import HealthAssignmentRule
    from metrics.services import health_model_copy, health_model_ensure_default, health_rule_change

    default = health_model_ensure_default()
    admin = User.objects.get(email=ADMIN)
    smb = health_model_copy(source=default, name="SMB", created_by=admin)
    spare = health_model_copy(source=default, name="Spare", created_by=admin)
    rule = HealthAssignmentRule.objects.create(model=smb, segment="SMB")
    bea = _user("bea@example.com", Role.ADMIN, first_name="Bea", is_staff=True)
    login(page, ADMIN)
    page.goto("/manage/health/assignments/")
    health_rule_change(rule=rule, model=spare, segment="SMB", by=bea)  # Bea, meanwhile

    page.get_by_label("Lifecycle stage of rule 1").select_option("onboarding")
    page.locator(f"#rule-{rule.pk}-form").get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "Rule 1 was not saved: This rule was changed by Bea at"
    )
    rule.refresh_from_db()
    assert (rule.lifecycle, rule.model_id) == ("", spare.pk)
    shot(page, "assignments-stale-refused")


def test_a_note_sent_twice_from_the_page_is_logged_once(page, login, demo_users, shot):
    """The same htmx form sent twice (as a double click, or a resend, does): the second
    answer says it was logged already, and the timeline has it once."""
    from accounts.models import Activity
    from tests.factories import AccountFactory

    account = AccountFactory(name="Twice Ltd", owner=User.objects.get(email=CSM))
    login(page, CSM)
    page.goto(f"/accounts/{account.pk}/")
    page.get_by_label("Subject").fill("Called the champion")
    # the form sent twice with the same key, as a double click sends it
    page.evaluate(
        """() => { const f = document.getElementById('activity-form');
                   const data = new FormData(f);
                   return Promise.all([1, 2].map(() => fetch(f.action, {method: 'POST', body: data,
                       headers: {'HX-Request': 'true'}}).then(r => r.text()))); }"""
    )
    page.get_by_role("button", name="Log it").click()  # the page's own send: the same key
    expect(page.locator("#activity-form")).to_contain_text(
        "Logged already (the form was sent twice): it is on the timeline once."
    )
    assert Activity.objects.filter(subject="Called the champion").count() == 1
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Called the champion")  # the page heard of it
    expect(timeline.get_by_text("Called the champion")).to_have_count(1)
    shot(page, "note-sent-twice")
