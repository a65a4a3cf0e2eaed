"""The playbook and CTA pages in a real browser: the admin's playbook list and editor (field
errors), a CSM working a CTA from the list (htmx swaps the row in place) and its page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Account, User
from playbooks import services
from playbooks.models import Cta, Playbook

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ctas(demo_users):
    Playbook.objects.all().delete()
    services.starter_playbooks_load()
    csm = User.objects.get(email="csm1@demo.example")
    red = Playbook.objects.get(starter="red-turnaround")
    renewal = Playbook.objects.get(starter="renewal-prep")
    out = []
    for n, (playbook, evidence) in enumerate(
        [
            (red, "health 72 → 41 on 2026-03-02 (yellow → red)"),
            (renewal, "contract ends on 2026-05-31 (in 90 days), no renewal yet"),
        ]
    ):
        account = Account.objects.create(external_id=f"B-{n}", name=f"Bluth {n}", owner=csm)
        out.append(services.cta_open(playbook=playbook, account=account, evidence=evidence))
    return out


def test_admin_sees_playbooks_and_the_editor_refuses_bad_input(page, login, shot, ctas):
    login(page, "admin@demo.example")
    page.goto("/playbooks/")
    expect(page.get_by_role("heading", name="Playbooks")).to_be_visible()
    expect(page.locator("tr[id^=playbook-]")).to_have_count(6)
    shot(page, "playbook-list")
    page.get_by_role("link", name="New playbook").click()
    page.get_by_label("Name", exact=True).fill("Quiet accounts")
    page.get_by_label("Trigger", exact=True).select_option("no_activity")
    page.get_by_label("Trigger params").fill('{"days": -5, "weeks": 2}')
    page.get_by_label("Steps").fill("1 | Call\n2 | ")
    page.get_by_role("button", name="Save").click()
    # each error beside its field (the field described by it) and in the summary at the top
    params = page.get_by_label("Trigger params")
    expect(params).to_have_attribute("aria-invalid", "true")
    error = page.locator("#" + params.get_attribute("aria-describedby").split()[-1])
    expect(error).to_contain_text("days: must not be negative, got -5")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name="Trigger params")).to_have_count(2)  # two errors
    expect(page.locator(".field-error").get_by_text("step 2: a title is required")).to_be_visible()
    shot(page, "playbook-editor-errors")


def test_a_csm_completes_a_step_from_the_list_and_opens_the_cta(page, login, shot, ctas):
    login(page, "csm1@demo.example")
    page.goto("/ctas/")
    row = page.locator(f"#cta-{ctas[0].pk}")
    expect(row).to_contain_text("0/4")
    row.get_by_role("button", name="Complete next step").click()
    expect(page.locator(f"#cta-{ctas[0].pk}")).to_contain_text("1/4")  # swapped in place
    expect(page.locator(f"#cta-{ctas[0].pk}")).to_contain_text("In progress")
    shot(page, "cta-list")
    page.get_by_role("link", name=ctas[0].title).click()
    expect(page.get_by_text("health 72 → 41 on 2026-03-02")).to_be_visible()
    shot(page, "cta-detail")
    page.get_by_role("button", name="Close CTA as done…").click()
    # 3 of its 4 steps are still open: the page names them and asks first
    page.get_by_role("button", name="Close CTA and skip 3 open steps").click()
    expect(page.locator(".badge-cta-done")).to_have_text("Done")
    assert Cta.objects.get(pk=ctas[0].pk).status == "done"
