"""Voice pages in the browser: a CSM goes from a theme to the quotes and accounts behind it;
a manager starts a recompute; the pages fit a phone."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from accounts.models import Account, User
from tests.factories import TicketFactory
from voice import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSM = "csm1@demo.example"
MANAGER = "manager@demo.example"


@pytest.fixture
def themes(demo_users):
    csm = User.objects.get(email=CSM)
    mine = Account.objects.create(external_id="A-1", name="Acme Mine", owner=csm)
    other = Account.objects.create(external_id="A-2", name="Other Book Ltd")
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    for account in (mine, other):
        for text in ("Export is so slow", "The CSV export is slow again", "Slow export"):
            TicketFactory(account=account, subject=text, opened_at=when)
        for text in ("We love the dashboards", "Dashboards are great", "great new dashboards"):
            TicketFactory(account=account, subject=text, opened_at=when)
    services.text_sentiments_refresh()
    services.themes_compute(run=services.theme_run_start(as_of=dt.datetime.now(dt.UTC).date()))
    return mine, other


def test_csm_goes_from_a_theme_to_its_quotes_and_accounts(page, login, themes, shot):
    login(page, CSM)
    page.get_by_role("link", name="Themes").click()
    expect(page.get_by_role("heading", name="Feedback themes")).to_be_visible()
    shot(page, "voice-themes-csm")
    page.locator("#theme-table a", has_text="export").first.click()
    expect(page.get_by_role("heading", name="What customers said")).to_be_visible()
    expect(page.get_by_text("Export is so slow").first).to_be_visible()
    expect(page.get_by_role("link", name="Acme Mine").first).to_be_visible()
    expect(page.get_by_text("Other Book Ltd")).to_have_count(0)
    shot(page, "voice-theme-csm")
    page.locator("table").get_by_role("link", name="Acme Mine").click()
    expect(page.get_by_role("heading", name="Voice of the customer")).to_be_visible()
    expect(page.get_by_text("No stakeholders known")).to_be_visible()
    shot(page, "voice-account")


def test_manager_recomputes_themes(page, login, themes):
    login(page, MANAGER)
    page.goto("/voice/themes/")
    expect(page.get_by_role("columnheader", name="Churn, rest")).to_be_visible()
    page.get_by_role("button", name="Recompute now").click()
    expect(page.get_by_text("Themes are being recomputed")).to_be_visible()


def test_themes_page_on_a_phone(new_page, login, themes, shot):
    page = login(new_page(width=390, height=844), MANAGER)
    page.goto("/voice/themes/")
    expect(page.get_by_role("heading", name="Feedback themes")).to_be_visible()
    shot(page, "voice-themes-phone")
