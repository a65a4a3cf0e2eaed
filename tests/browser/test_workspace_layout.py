"""The workspace's wide tables fit the screen: at a laptop's 1366 px the queue (with its
Owner column and the CTAs nested under a row) and the renewals list need no horizontal
scrolling, and on a 390 px phone the account page's CTAs and the voice card's latest texts
fold into blocks instead of a table wider than the screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import User
from metrics.standings import account_standings_refresh
from playbooks import services as playbooks_services
from playbooks.models import Cta, CtaStatus
from tests.factories import TicketFactory
from tests.playbooks.helpers import make_playbook
from tests.workspace.conftest import customer
from voice import services as voice_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MANAGER = "manager@demo.example"
CSM = "csm1@demo.example"

# scrollWidth and clientWidth of the table's scrolling box, and of the page
OVERFLOW = """sel => {
  const box = document.querySelector(sel);
  return {box: [box.scrollWidth, box.clientWidth],
          page: [document.documentElement.scrollWidth, window.innerWidth]};
}"""


def _book():
    """Two accounts of a CSM, each with two open CTAs (a long title and evidence)."""
    csm = User.objects.get(email=CSM)
    accounts = [
        customer(
            csm,
            name="Summitwind Group EMEA Holdings International",
            mrr="52000",
            ends_in=36,
            scores=[(40, "red"), (39, "red"), (70, "yellow")],
            segment="Enterprise",
        ),
        customer(
            csm,
            name="Brightwind Industries",
            mrr="24000",
            ends_in=53,
            scores=[(41, "red"), (34, "red")],
            segment="Enterprise",
        ),
    ]
    ctas = []
    for account in accounts:
        for trigger in ("ticket_escalated", "payment_trouble"):
            ctas.append(
                playbooks_services.cta_open(
                    playbook=make_playbook(trigger, cta_title="Sort out a failed payment now"),
                    account=account,
                    evidence="contract ends on 2026-12-29 (in 37 days), no renewal yet; "
                    "1 overdue invoice ($633,600.00 due)",
                )
            )
    # the second CTA of each account waits over its owner's cap: the widest status badge
    Cta.objects.filter(pk__in=[c.pk for c in ctas[1::2]]).update(status=CtaStatus.PENDING)
    account_standings_refresh()
    return accounts, ctas


def _fits(page, selector: str) -> None:
    sizes = page.evaluate(OVERFLOW, selector)
    assert sizes["box"][0] <= sizes["box"][1], f"{selector} scrolls sideways: {sizes}"
    assert sizes["page"][0] <= sizes["page"][1], f"the page scrolls sideways: {sizes}"


def test_queue_and_renewals_fit_a_laptop_screen(new_page, login, demo_users, shot):
    accounts, ctas = _book()
    page = new_page(width=1366, height=900)
    login(page, MANAGER)
    page.goto("/?scope=team")
    expect(page.locator("#queue-results")).to_contain_text(accounts[0].name)
    expect(page.locator(f"#cta-{ctas[0].pk}")).to_be_visible()
    shot(page, "layout-queue-1366")
    _fits(page, "#queue-results .table-wrap")
    # the buttons of a nested CTA are inside the visible part of the card
    card = page.locator("#queue-results").bounding_box()
    snooze = page.locator(f"#cta-{ctas[0].pk}").get_by_role("button", name="Snooze a week")
    box = snooze.bounding_box()
    assert box["x"] + box["width"] <= card["x"] + card["width"]

    page.goto("/renewals/?scope=team&renewal=90")
    expect(page.locator("#queue-results")).to_contain_text(accounts[1].name)
    shot(page, "layout-renewals-1366")
    _fits(page, "#queue-results .table-wrap")


def test_account_ctas_and_texts_fold_on_a_phone(new_page, login, demo_users, shot):
    accounts, ctas = _book()
    TicketFactory(
        account=accounts[0],
        subject="The CRM integration sync keeps failing every night since the last upgrade",
    )
    voice_services.text_sentiments_refresh()
    page = new_page(width=390, height=844)
    login(page, CSM)
    page.goto(f"/accounts/{accounts[0].pk}/")
    row = page.locator(f"#cta-{ctas[0].pk}")
    expect(row).to_be_visible()
    # the values are labelled, there being no column headers
    labels = row.evaluate(
        "tr => [...tr.cells].map(td => getComputedStyle(td, '::before').content)"
        ".filter(c => c && c !== 'none')"
    )
    assert labels == ['"Due "', '"Steps "', '"Owner "']
    shot(page, "layout-account-390")
    _fits(page, "#account-ctas .table-wrap")
    for name in ("Complete next step", "Snooze a week"):
        box = row.get_by_role("button", name=name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
    voice = f"#account-{accounts[0].pk}-voice"
    expect(page.locator(voice)).to_contain_text("The CRM integration sync keeps failing")
    _fits(page, f"{voice} .table-wrap")


def test_the_menu_and_the_cta_list_fit_a_phone(new_page, login, demo_users, shot):
    """At 390 px every link of the main menu is on the screen (it wraps instead of scrolling
    sideways with no cue), and the CTA list folds each CTA into a block, its buttons in
    sight."""
    accounts, ctas = _book()
    page = new_page(width=390, height=844)
    login(page, MANAGER)
    page.goto("/ctas/?status=active")
    row = page.locator(f"#cta-{ctas[0].pk}")
    expect(row).to_be_visible()
    shot(page, "layout-cta-list-390")
    edges = page.locator("nav.mainnav a").evaluate_all(
        "links => links.map(a => [a.textContent.trim(), a.getBoundingClientRect().right])"
    )
    assert len(edges) >= 6  # Queue, Renewals, Dashboard, CTAs, Surveys, Themes, Targets
    assert all(0 < right <= 390 for _, right in edges), edges
    _fits(page, ".table-wrap:has(.cta-table)")
    box = row.get_by_role("button", name="Snooze a week").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
