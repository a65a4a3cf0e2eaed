"""A number's explanation opens without a mouse: on a phone a tap on the number shows how it
was computed and a tap elsewhere hides it; on a keyboard Tab reaches it and Enter or Space
opens it, Escape closes it. Also in a fragment htmx swapped in ({% explain %},
accounts/templatetags/explain.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from accounts import utc
from accounts.models import User
from metrics.standings import account_standings_refresh
from tests.workspace.conftest import customer, utc_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSM = "csm1@demo.example"
# Burning Co, red at 58 yesterday, 76 a week before (−18), renewing in 41 days, $7,000 MRR:
# priority red 40 + trend 15 (18 points lost, at most 15) + renewal 25 × (90 − 41) / 90
# = 13.61… → 13.6 + ARR 84,000 / 10,000 = 8.4 → 77 (as tests/workspace/test_account_page.py)
WORKING = "40 (red) + 15 (\u221218 in 7 days) + 13.6 (renews in 41 days) + 8.4 ($84k ARR) = 77"


def _burning():
    account = customer(
        User.objects.get(email=CSM),
        name="Burning Co",
        mrr="7000",
        ends_in=41,
        scores=[(58, "red"), (76, "yellow"), (80, "green")],
    )
    account_standings_refresh()
    return account


def test_a_tap_on_the_priority_shows_how_it_is_made_on_a_phone(new_page, login, shot):
    account = _burning()
    page = new_page(width=390, height=844, has_touch=True, is_mobile=True)
    login(page, CSM)
    page.goto(f"/accounts/{account.pk}/")
    priority = page.get_by_role("button", name="Priority 77")
    note = page.get_by_text(WORKING, exact=True)
    expect(note).to_be_hidden()
    priority.scroll_into_view_if_needed()
    priority.tap()
    expect(note).to_be_visible()
    # placed beside its number, on the screen, not over the middle of the page
    button, box = priority.bounding_box(), note.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    near = abs(box["y"] - (button["y"] + button["height"])) < 20
    above = abs(box["y"] + box["height"] - button["y"]) < 20
    assert near or above, (button, box)
    shot(page, "explain-phone-priority")
    page.get_by_role("heading", name="Burning Co").tap()  # a tap elsewhere closes it
    expect(note).to_be_hidden()


def test_the_keyboard_reaches_a_number_and_opens_its_explanation(new_page, login):
    account = _burning()
    page = new_page()
    login(page, CSM)
    page.goto(f"/accounts/{account.pk}/")
    priority = page.get_by_role("button", name="Priority 77")
    # read out with its number, once: the note describes the button
    expect(priority).to_have_accessible_description(WORKING)
    note = page.get_by_text(WORKING, exact=True)
    page.get_by_role("heading", name="Burning Co").click()  # Tab goes on from here
    for _ in range(40):
        page.keyboard.press("Tab")
        if priority.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the priority")
    expect(note).to_be_hidden()
    page.keyboard.press("Enter")
    expect(note).to_be_visible()
    page.keyboard.press("Escape")
    expect(note).to_be_hidden()
    expect(priority).to_be_focused()  # closing leaves the reader where they were
    page.keyboard.press(" ")
    expect(note).to_be_visible()


def test_a_number_swapped_in_by_htmx_opens_too(new_page, login):
    """The queue's search swaps its results in place; a trend in the new rows opens its note
    (Burning Co: 58 yesterday against 76 eight days back, −18)."""
    _burning()
    page = new_page(width=390, height=844, has_touch=True, is_mobile=True)
    login(page, CSM)
    page.locator("#queue-results").evaluate("el => { el.dataset.before = 'yes'; }")
    with page.expect_response(lambda r: "q=Burning" in r.url):
        page.locator("#f-q").fill("Burning")
    expect(page.locator("#queue-results[data-before]")).to_have_count(0)  # swapped
    trend = page.locator("#queue-results").get_by_role("button", name="\u221218")
    trend.scroll_into_view_if_needed()
    trend.tap()
    week = utc.day_text(utc_today() - dt.timedelta(days=8))
    note = page.get_by_text(f"the computed score's change since {week}", exact=True)
    expect(note).to_be_visible()
