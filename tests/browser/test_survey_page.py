"""The public survey page in a real browser on a phone-sized viewport: open the email's link
(score preselected), change the score by keyboard, add a comment, send, see the thanks; the
answer and its timeline fact are in the database. The invitation email fits the phone's
width. Then the results page for the CSM."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import TimelineEntry
from surveys.models import Response
from surveys.tasks import send_due_campaigns
from tests.factories import AccountFactory, StakeholderFactory
from tests.surveys.conftest import make_campaign, make_invitation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_answer_a_survey_on_a_phone(new_page, shot, settings):
    settings.SURVEY_SENDER_NAME = "Northwind"
    account = AccountFactory(name="Acme Corp")
    dana = StakeholderFactory(account=account, name="Dana Smith")
    invitation = make_invitation(make_campaign("nps"), dana)
    page = new_page(**PHONE)

    page.goto(f"/s/{invitation.token}/?score=9")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    group = page.get_by_role("group", name="How likely are you to recommend us")
    expect(group).to_be_visible()
    expect(page.get_by_role("radio", name="9", exact=True)).to_be_checked()
    question = "How likely are you to recommend us to a friend or colleague?"
    expect(page.get_by_role("heading", level=1, name=question)).to_be_visible()
    expect(page.get_by_text("Northwind would value your answer.")).to_be_visible()  # who asks
    expect(group).to_have_accessible_description(
        "Choose one score. 0 = Not at all likely, 10 = Extremely likely."
    )
    # every score is a large tap target, all within the phone's width
    for box in (page.locator(".score-number").nth(i).bounding_box() for i in range(11)):
        assert box["height"] >= 44 and box["width"] >= 40 and box["x"] + box["width"] <= 390
    shot(page, "survey-phone")

    # keyboard: from the checked 9, arrow left twice -> 7
    page.get_by_role("radio", name="9", exact=True).focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("radio", name="7", exact=True)).to_be_checked()
    page.get_by_label("What is the main reason for your score?").fill("Good, exports are slow")
    page.get_by_role("button", name="Send my answer").click()

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    shot(page, "survey-phone-thanks")
    response = Response.objects.get()
    assert (response.score, response.comment) == (7, "Good, exports are slow")
    assert TimelineEntry.objects.get(kind="survey_answer").data["score"] == 7

    # change the answer from the thanks page
    page.get_by_role("link", name="Change my answer").click()
    expect(page.get_by_role("radio", name="7", exact=True)).to_be_checked()
    page.get_by_role("radio", name="3", exact=True).click()  # a tap on the number
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert list(Response.objects.order_by("id").values_list("score", "is_current")) == [
        (7, False),
        (3, True),
    ]


def test_the_invitation_email_fits_a_phone(new_page, shot):
    """The 11 score links wrap within 390 px instead of widening the email."""
    StakeholderFactory(name="Dana Smith")
    make_campaign("nps", next_run_at=timezone.now() - dt.timedelta(minutes=1))
    send_due_campaigns.delay()
    (email,) = mail.outbox
    page = new_page(**PHONE)
    page.set_content(email.alternatives[0][0])
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    links = page.locator("a[href*='?score=']")
    assert links.count() == 11
    boxes = [links.nth(i).bounding_box() for i in range(11)]
    assert all(b["x"] + b["width"] <= 390 and b["width"] >= 40 for b in boxes)
    assert len({round(b["y"]) for b in boxes}) == 2  # two rows
    shot(page, "survey-email-phone")


def test_sending_without_a_score_says_so(new_page):
    invitation = make_invitation(make_campaign("csat"), StakeholderFactory())
    page = new_page(**PHONE)
    page.goto(f"/s/{invitation.token}/")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a score before sending.")
    assert not Response.objects.exists()


def test_results_page_for_the_csm(new_page, login, shot):
    from accounts.models import User
    from surveys import services

    csm = User.objects.get(email="csm1@demo.example")
    account = AccountFactory(name="Acme Corp", owner=csm)
    campaign = make_campaign("nps", name="Q1 NPS")
    for score, comment in ((10, "Love it"), (9, ""), (8, "Fine"), (3, "Support was slow")):
        invitation = make_invitation(campaign, StakeholderFactory(account=account))
        services.response_record(invitation_id=invitation.pk, score=score, comment=comment)
    page = new_page()
    login(page, "csm1@demo.example")
    page.get_by_role("link", name="Surveys").click()
    page.get_by_role("link", name="Q1 NPS").click()
    expect(page.get_by_role("heading", name="Q1 NPS")).to_be_visible()
    # NPS: 2 promoters, 1 passive, 1 detractor of 4 -> 100 * (2 - 1) / 4 = 25
    expect(page.locator(".stats")).to_contain_text("25.0")
    expect(page.get_by_role("cell", name="Support was slow")).to_be_visible()
    shot(page, "survey-results")


# the page's width beside the window's, and how far right the given elements reach
WIDTHS = """(sel) => ({page: document.documentElement.scrollWidth, window: window.innerWidth,
  right: Math.max(...[...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect().right))})"""


def test_the_survey_tables_stack_on_a_phone(new_page, login, shot):
    """At 375 px the campaigns list and the results' comments were wider than the screen:
    each row is a block with its labels (``table-stack``), nothing past the window's edge;
    on a laptop they keep their columns."""
    from accounts.models import User
    from surveys import services

    csm = User.objects.get(email="csm1@demo.example")
    account = AccountFactory(name="Acme Corporation International", owner=csm)
    campaign = make_campaign("nps", name="Quarterly NPS for the whole customer base")
    for score, comment in ((10, "Love it"), (3, "Support was slow to answer our tickets")):
        invitation = make_invitation(campaign, StakeholderFactory(account=account))
        services.response_record(invitation_id=invitation.pk, score=score, comment=comment)
    page = login(new_page(width=375, height=800), "admin@demo.example")
    for url, card, name in (
        ("/surveys/", "campaigns-title", "surveys-list-375"),
        (f"/surveys/results/?campaign={campaign.pk}", "comments-title", "survey-results-375"),
    ):
        page.goto(url)
        table = f"section[aria-labelledby={card}] table"
        expect(page.locator(table)).to_have_count(1)
        expect(page.locator(f"{table} thead")).to_be_hidden()
        # the table itself, not only the page: it was as wide as its columns, scrolled
        sizes = page.evaluate(WIDTHS, f"{table}, {table} td, {table} tbody th")
        assert sizes["page"] <= sizes["window"] == 375, url
        assert sizes["right"] <= 375, (url, sizes)
        shot(page, name)
    comment = page.locator("#comments-table td[data-label=Comment]", has_text="Support was")
    expect(comment).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.locator("#comments-table thead")).to_be_visible()
