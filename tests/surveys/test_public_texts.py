"""What a respondent reads, through the real doors: the page (GET and POST), the thank-you
page, the invitation email in Django's outbox after the send service, and the editor that
checks a survey's strings. Every text is the survey's, in its language; the vendor asks, not
the respondent's own company; the email's score links wrap on a phone and it carries a
List-Unsubscribe header; the page has a heading and a described radio group."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from outbox import services as outbox
from surveys import scoring, services
from surveys.models import Campaign, Invitation, Response
from surveys.strings import DEFAULTS, PLACEHOLDERS, shows_thanks_change_note, strings_problems
from surveys.tasks import send_due_campaigns

from .conftest import make_campaign, make_invitation
from .test_editor import FORM, segments  # noqa: F401 - the segments the FORM ticks

GERMAN = {
    "de": {
        "intro": "{sender} bittet um Ihre Meinung.",
        "score_help": "Wählen Sie eine Zahl.",
        "scale_legend": "{low} heißt {low_label}, {high} heißt {high_label}.",
        "nps_low_label": "Sehr unwahrscheinlich",
        "nps_high_label": "Äußerst wahrscheinlich",
        "error_title": "Bitte prüfen Sie Ihre Antwort",
        "score_missing": "Wählen Sie eine Zahl, bevor Sie senden.",
        "score_not_whole": "Die Zahl muss ganz sein, von {low} bis {high}.",
        "score_out_of_range": "Die Zahl muss von {low} bis {high} gehen, nicht {score}.",
        "thanks_body": "Ihre Antwort ist gespeichert.",
        "thanks_change_note": "Sie können sie ändern, solange die Umfrage läuft.",
        "email_intro": "Hallo {name}, {sender} fragt:",
        "email_no_name": "zusammen",
    }
}


def _respond(invitation) -> str:
    return reverse("surveys:respond", args=[invitation.token])


def _text(html: str) -> str:
    """The page's words without tags, as one line."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- translations ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_german_survey_shows_german_labels_help_and_errors(client, dana, settings):
    settings.SURVEY_SENDER_NAME = "Northwind"
    invitation = make_invitation(make_campaign("nps", language="de", strings=GERMAN), dana)
    page = client.get(_respond(invitation)).content.decode()
    assert '<html lang="de">' in page
    words = _text(page)
    assert (
        "Wählen Sie eine Zahl. 0 heißt Sehr unwahrscheinlich, 10 heißt Äußerst wahrscheinlich."
        in words
    )
    assert "Northwind bittet um Ihre Meinung." in words
    for english in ("Not at all likely", "Extremely likely", "Choose one score"):
        assert english not in page

    cases = {
        "11": "Die Zahl muss von 0 bis 10 gehen, nicht 11.",
        "-1": "Die Zahl muss von 0 bis 10 gehen, nicht -1.",
        "7.5": "Die Zahl muss ganz sein, von 0 bis 10.",
        "": "Wählen Sie eine Zahl, bevor Sie senden.",
    }
    for score, message in cases.items():
        r = client.post(_respond(invitation), {"score": score})
        assert r.status_code == 400, score
        alert = re.search(
            r'<div class="msg msg-error" role="alert"[^>]*>(.*?)</div>', r.content.decode()
        )
        assert _text(alert[1]) == f"Bitte prüfen Sie Ihre Antwort: {message}", score
    assert Response.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "score", "low", "high", "message"),
    [
        ("nps", "11", "Not at all likely", "Extremely likely", "The score must be from 0 to 10, got 11."),
        ("csat", "0", "Very dissatisfied", "Very satisfied", "The score must be from 1 to 5, got 0."),
        ("ces", "x", "Very difficult", "Very easy", "The score must be a whole number from 1 to 7."),
    ],
)  # fmt: skip
def test_english_stays_as_it_was(client, dana, kind, score, low, high, message):
    invitation = make_invitation(make_campaign(kind), dana)
    lo, hi = scoring.SCALES[kind]
    words = _text(client.get(_respond(invitation)).content.decode())
    assert f"Choose one score. {lo} = {low}, {hi} = {high}." in words
    r = client.post(_respond(invitation), {"score": score})
    assert r.status_code == 400 and message in _text(r.content.decode())


@pytest.mark.django_db(transaction=True)
def test_the_german_email_and_its_greeting_without_a_name(dana, settings, celery_eager):
    settings.SURVEY_SENDER_NAME = "Northwind"
    dana.name = ""
    dana.save()
    make_campaign(
        "nps",
        language="de",
        strings=GERMAN,
        next_run_at=timezone.now() - dt.timedelta(minutes=1),
    )
    send_due_campaigns.delay()
    (email,) = mail.outbox
    html = email.alternatives[0][0]
    for body in (email.body, _text(html)):
        assert "Hallo zusammen, Northwind fragt:" in body
        assert "0 heißt Sehr unwahrscheinlich, 10 heißt Äußerst wahrscheinlich." in body
        assert "Not at all likely" not in body and "Extremely" not in body and "there" not in body
    assert 'aria-label="10 (Äußerst wahrscheinlich)"' in html


@pytest.mark.django_db
def test_every_kind_has_its_scale_labels_and_every_string_its_placeholders():
    for kind in scoring.SCALES:
        assert {f"{kind}_low_label", f"{kind}_high_label"} <= set(DEFAULTS)
    for key, text in DEFAULTS.items():  # the defaults pass their own check
        assert set(re.findall(r"\{(\w+)\}", text)) <= PLACEHOLDERS[key], key
    assert strings_problems({"en": dict(DEFAULTS)}) == []


@pytest.mark.django_db
def test_the_editor_refuses_unknown_strings_and_placeholders(client, admin_user):
    client.force_login(admin_user)
    bad = {
        "de": {
            "low_label": "Gar nicht",  # the labels are per kind: nps_low_label …
            "score_out_of_range": "Von {min} bis {max}",
            "intro": "Hallo {name}",  # {name} is for the emails only
            "nps_high_label": "Sehr {score}",
        }
    }
    r = client.post(reverse("surveys:campaign-new"), {**FORM, "strings": json.dumps(bad)})
    assert r.status_code == 200
    body = r.content.decode()
    assert "de.low_label: unknown string" in body and "nps_low_label" in body
    assert "de.score_out_of_range: unknown placeholder {min}" in body
    assert "de.score_out_of_range: unknown placeholder {max}" in body
    assert "can use {company}, {high}, {low}, {score}, {sender}" in body
    assert "de.intro: unknown placeholder {name}" in body
    assert "de.nps_high_label: unknown placeholder {score}" in body
    assert not Campaign.objects.exists()

    # what existing translations use stays valid, and the new strings are accepted
    good = {
        "de": {
            "intro": "{company} fragt.",
            "email_intro": "Hallo {name}, {company} fragt:",
            **GERMAN["de"],
        }
    }
    r = client.post(reverse("surveys:campaign-new"), {**FORM, "strings": json.dumps(good)})
    assert r.status_code == 302, r.content.decode()[:2000]
    assert Campaign.objects.get().survey.strings == good


# --- who asks -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_vendor_asks_not_the_respondents_company(client, dana, settings, celery_eager):
    settings.SURVEY_SENDER_NAME = "Northwind"
    settings.SITE_URL = "https://cs.example.com"
    make_campaign("csat", next_run_at=timezone.now() - dt.timedelta(minutes=1))
    send_due_campaigns.delay()
    (email,) = mail.outbox
    assert "Hello Dana Smith, Northwind would value your answer. Click a score:" in email.body
    assert "Acme Corp" not in email.body and "Acme Corp" not in email.alternatives[0][0]

    invitation = Invitation.objects.get()
    words = _text(client.get(_respond(invitation)).content.decode())
    assert words.startswith("A quick question Northwind Northwind would value your answer.")
    assert "Acme Corp" not in words


# --- the email ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_email_score_links_wrap_and_it_names_its_unsubscribe_address(
    dana, settings, celery_eager
):
    settings.SITE_URL = "https://cs.example.com"
    make_campaign("nps", next_run_at=timezone.now() - dt.timedelta(minutes=1))
    send_due_campaigns.delay()
    (email,) = mail.outbox
    invitation = Invitation.objects.get()
    unsubscribe = f"https://cs.example.com/s/{invitation.token}/unsubscribe/"
    assert email.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert email.message()["List-Unsubscribe"] == f"<{unsubscribe}>"
    # RFC 8058: the mail program may unsubscribe with one POST (public.unsubscribe takes it)
    assert email.message()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.extra_headers["Message-ID"]  # the outbox's own header is still there
    # from the organisation asking (SURVEY_SENDER_NAME), at the product's address
    assert email.from_email == f"{settings.SURVEY_SENDER_NAME} <{settings.DEFAULT_FROM_EMAIL}>"

    html = email.alternatives[0][0]
    # the eleven links sit in one cell as inline blocks (they wrap), not in a cell each (a
    # row of eleven cells does not)
    cell = re.search(r"<td[^>]*>((?:<a [^>]*\?score=\d+[^>]*>\d+</a>)+)</td>", html)
    assert cell is not None
    links = re.findall(r"<a [^>]*>", cell[1])
    assert len(links) == 11
    assert all("display:inline-block" in a and "width:40px" in a for a in links)
    assert "<link" not in html and "<style" not in html  # inline styles only


def test_the_outbox_refuses_headers_it_cannot_send():
    base = {"key": "k", "to": ["a@example.com"], "subject": "s", "text": "t"}
    with pytest.raises(ValidationError) as caught:
        outbox.email_message(**base, headers={"List-Unsubscribe": "<https://x>\r\nBcc: x@y"})
    assert "List-Unsubscribe: the value must be one line of text." in str(caught.value)
    for name in ("Bcc", "Message-ID", "X Bad", ""):
        with pytest.raises(ValidationError, match="is not a header this can add"):
            outbox.email_message(**base, headers={name: "x"})
    message = outbox.email_message(**base, headers={"List-Unsubscribe": "<https://x/u/>"})
    assert message.payload["headers"] == {"List-Unsubscribe": "<https://x/u/>"}
    assert "headers" not in outbox.email_message(**base).payload  # none: as before


# --- the page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_has_a_heading_and_a_described_radio_group(client, dana):
    invitation = make_invitation(make_campaign("nps"), dana)
    page = client.get(_respond(invitation)).content.decode()
    assert page.count("<h1") == 1
    assert re.search(r"<legend><h1[^>]*>How likely are you to recommend us", page)
    fieldset = re.search(r"<fieldset [^>]*>", page)[0]
    assert 'aria-describedby="score-help"' in fieldset
    assert 'id="score-help"' in page

    r = client.post(_respond(invitation), {"score": "12"})
    fieldset = re.search(r"<fieldset [^>]*>", r.content.decode())[0]
    assert 'aria-describedby="score-error score-help"' in fieldset


@pytest.mark.django_db
def test_the_thanks_page_offers_a_change_only_while_it_can_be_made(client, dana):
    campaign = make_campaign("nps", language="de", strings=GERMAN)
    invitation = make_invitation(campaign, dana)
    assert client.post(_respond(invitation), {"score": "9"}).status_code == 302
    thanks = reverse("surveys:thanks", args=[invitation.token])
    words = _text(client.get(thanks).content.decode())
    assert (
        "Ihre Antwort ist gespeichert. Sie können sie ändern, solange die Umfrage läuft." in words
    )

    campaign.status = Campaign.Status.CLOSED
    campaign.save()
    page = client.get(thanks).content.decode()
    assert "Ihre Antwort ist gespeichert." in _text(page)
    assert "ändern" not in page and "change" not in page.lower()
    assert f'href="{_respond(invitation)}"' not in page  # nor the link

    english = make_invitation(make_campaign("nps", closes_at=timezone.now() + dt.timedelta(1)))
    services.response_record(invitation_id=english.pk, score=3)
    english_thanks = reverse("surveys:thanks", args=[english.token])
    assert (
        "You can change it while the survey is open." in client.get(english_thanks).content.decode()
    )
    english.campaign.closes_at = timezone.now() - dt.timedelta(seconds=1)
    english.campaign.save()
    page = client.get(english_thanks).content.decode()
    assert "Your answer was recorded." in page and "You can change it" not in page


@pytest.mark.django_db
def test_a_translated_thanks_body_without_its_own_note_gets_no_english_note(client, dana):
    # saved when thanks_body held both sentences: the note is already in it, in German
    body = "Danke! Ihre Antwort ist gespeichert; Sie können sie ändern, solange die Umfrage läuft."
    campaign = make_campaign("nps", language="de", strings={"de": {"thanks_body": body}})
    invitation = make_invitation(campaign, dana)
    services.response_record(invitation_id=invitation.pk, score=9)
    page = client.get(reverse("surveys:thanks", args=[invitation.token])).content.decode()
    assert body in _text(page)
    assert DEFAULTS["thanks_change_note"] not in page
    assert f'href="{_respond(invitation)}"' in page  # the answer can still be changed


@pytest.mark.parametrize(
    ("table", "shown"),
    [
        ({}, True),  # both English defaults
        ({"thanks_body": "Danke.", "thanks_change_note": "Ändern geht."}, True),
        ({"thanks_body": "Danke."}, False),  # the body's own, the note would be English
        ({"thanks_change_note": "Ändern geht."}, False),  # the note would follow English
        ({"thanks_body": "  ", "submit": "Senden"}, True),  # a blank override is no override
    ],
)
def test_the_change_note_follows_the_body_only_from_the_same_table(table, shown):
    assert shows_thanks_change_note({"de": table}, "de") is shown
    assert shows_thanks_change_note({"fr": table}, "de") is True  # another language's table
