"""A CSM records first value on an account page in a real browser (Playwright + Debian
Chromium against the live server): the card swaps in place, the timeline hears about it, a
day in the future is refused next to the field."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from accounts import utc
from accounts.models import Milestone
from metrics.standings import account_standings_refresh
from tests.browser.test_workspace_journeys import CSM, journey_shot  # noqa: F401 - fixture
from tests.workspace.conftest import customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_csm_records_first_value_and_sees_it(page, login, demo_users, journey_shot):  # noqa: F811
    csm = demo_users[CSM]
    since = utc.today() - dt.timedelta(days=21)
    account = customer(
        csm,
        name="Fresh Start",
        mrr="900",
        ends_in=300,
        scores=[(70, "yellow")],
        customer_since=since,
    )
    account_standings_refresh()

    login(page, CSM)
    page.goto(f"/accounts/{account.pk}/")
    card = page.locator("#first-value")
    expect(card).to_contain_text("Not yet")
    # a customer for 21 days by the calendar, 20 by the data scored yesterday, which the
    # page counts from
    expect(card).to_contain_text("20 days since becoming a customer")
    expect(card).to_contain_text(f"as of {utc.day_text(utc.today() - dt.timedelta(days=1))}")

    card.get_by_text("Record first value").click()
    tomorrow = utc.today() + dt.timedelta(days=1)
    card.get_by_label("Reached on (UTC day)").fill(tomorrow.isoformat())
    card.get_by_role("button", name="Save").click()
    expect(page.locator("#first-value")).to_contain_text("is in the future")
    assert not Milestone.objects.exists()

    day = utc.today() - dt.timedelta(days=6)
    card = page.locator("#first-value")
    card.get_by_label("Reached on (UTC day)").fill(day.isoformat())
    card.get_by_label("Note").fill("Their first board report came out of the product")
    card.get_by_role("button", name="Save").click()
    card = page.locator("#first-value")
    expect(card).to_contain_text(f"Reached {utc.day_text(day)}")
    expect(card).to_contain_text("recorded by Cleo Carter")
    expect(card).to_contain_text("Their first board report")
    expect(page.locator("#timeline")).to_contain_text(
        f"First value reached on {utc.day_text(day)}, recorded by Cleo Carter"
    )
    journey_shot(page, "first-value-recorded")
    m = Milestone.objects.get()
    assert (m.account_id, m.reached_on, m.recorded_by) == (account.pk, day, csm)
