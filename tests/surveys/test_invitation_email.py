"""The survey invitation as the customer's contact reads it: who asks in the subject, why
they get it, until when the link works (in both parts, in UTC), the company's name as text
in the HTML part and plain in the text part, and every link absolute on ``SITE_URL``."""

from __future__ import annotations

import datetime as dt

import pytest

from surveys import mail as survey_mail
from tests.factories import AccountFactory, StakeholderFactory

from .conftest import make_campaign, make_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation(settings):
    settings.SITE_URL = "https://cs.example.com"
    settings.SURVEY_SENDER_NAME = "Northwind"
    account = AccountFactory(name="<b>Acme</b> & Co")
    dana = StakeholderFactory(account=account, name="Dana Smith", email="dana@acme.example")
    campaign = make_campaign("nps")
    campaign.survey.question = "How likely are you to recommend {sender} to {company}?"
    campaign.survey.save()
    return make_invitation(campaign, dana, expires_at=dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC))


@pytest.mark.parametrize("reminder", [False, True])
def test_the_invitation_says_who_asks_why_and_until_when(invitation, reminder):
    payload = survey_mail.invitation_message(invitation, reminder=reminder).payload
    assert payload["subject"] == "A quick question from Northwind"
    for part in (payload["text"], payload["html"]):
        assert "This link works until 1 Apr 2026, 09:00 UTC." in part
        assert "You get this email because your company works with Northwind." in part
    assert "recommend Northwind to <b>Acme</b> & Co?" in payload["text"]
    assert "recommend Northwind to &lt;b&gt;Acme&lt;/b&gt; &amp; Co?" in payload["html"]
    assert "<b>Acme" not in payload["html"] and "&amp;" not in payload["text"]
    assert f"https://cs.example.com/s/{invitation.token}/?score=10" in payload["text"]


def test_a_link_that_closes_with_its_day_names_the_day(invitation):
    """A campaign closing at 00:00 UTC of 1 Apr closes at the end of 31 Mar, as a CTA due
    then is "due by 31 Mar" (``accounts.utc.deadline_day``)."""
    invitation.expires_at = dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)
    payload = survey_mail.invitation_message(invitation, reminder=False).payload
    assert "This link works until the end of 31 Mar 2026 (UTC)." in payload["text"]


@pytest.mark.parametrize(
    ("language", "strings", "at_nine", "at_midnight"),
    [
        # Django's German long date is "j. F Y", its French one "j F Y": the month in words
        (
            "de",
            {"email_expiry": "Dieser Link gilt bis {expires}.",
             "email_expiry_day_end": "zum Ende des {day} (UTC)"},
            "Dieser Link gilt bis 3. Dezember 2026, 09:00 UTC.",
            "Dieser Link gilt bis zum Ende des 2. Dezember 2026 (UTC).",
        ),
        (
            "fr",
            {"email_expiry": "Ce lien fonctionne jusqu’au {expires}.",
             "email_expiry_day_end": "{day} à minuit (UTC)"},
            "Ce lien fonctionne jusqu’au 3 décembre 2026, 09:00 UTC.",
            "Ce lien fonctionne jusqu’au 2 décembre 2026 à minuit (UTC).",
        ),
        # a language Django has no words for keeps the English day
        ("tlh", {}, "This link works until 3 Dec 2026, 09:00 UTC.",
         "This link works until the end of 2 Dec 2026 (UTC)."),
    ],
)  # fmt: skip
def test_the_expiry_day_is_in_the_surveys_language(
    invitation, language, strings, at_nine, at_midnight
):
    """A German or French survey's email names the month in its own language, not
    "3 December"; the page's English is untouched by it (the language is only active while
    the day is written)."""
    survey = invitation.campaign.survey
    survey.language = language
    survey.strings = {language: strings}
    survey.save()
    invitation.expires_at = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    payload = survey_mail.invitation_message(invitation, reminder=False).payload
    for part in (payload["text"], payload["html"]):
        assert at_nine in part
    invitation.expires_at = dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC)  # to the end of 2 Dec
    payload = survey_mail.invitation_message(invitation, reminder=True).payload
    assert at_midnight in payload["text"]
    assert survey_mail.day_words(dt.date(2026, 12, 3), "en") == "3 Dec 2026"  # still English
