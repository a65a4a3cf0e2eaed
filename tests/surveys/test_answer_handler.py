"""Answers POSTed to /s/<token>/ go through config.wsgi's second handler, with
settings.SURVEY_ANSWER_MIDDLEWARE: called here as gunicorn calls it (the test client has its
own handler with the full MIDDLEWARE). The security the full stack gives such a request must
be there too: CSRF, the same security headers. Over HTTPS, as deployed (the handlers were
built when config.wsgi was imported, with the production settings). Inside the test's
transaction the lean path for first answers (surveys.answer_wsgi, which needs autocommit)
steps aside, so these reach the handler; tests/surveys/test_answer_wsgi.py covers that path."""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config import wsgi
from surveys.models import Response

from .conftest import make_campaign, make_invitation, wsgi_post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """As Django's test client does: a request's start and end must not close the
    connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def call(app, path: str, fields: dict, *, csrf: bool = True) -> tuple[int, dict, bytes]:
    status, headers, content = wsgi_post(path, fields, form_token=None if csrf else "", app=app)
    return int(status.split()[0]), dict(headers), content


def test_an_answer_goes_through_the_answer_handler_and_is_recorded(dana, monkeypatch):
    served = []
    answers = wsgi.survey_answers
    monkeypatch.setattr(wsgi, "survey_answers", lambda *a: served.append(1) or answers(*a))
    invitation = make_invitation(make_campaign("nps"), dana)
    status, headers, _ = call(None, f"/s/{invitation.token}/", {"score": "3", "comment": "meh"})
    assert served == [1]
    assert status == 302 and headers["Location"] == f"/s/{invitation.token}/thanks/"
    assert Response.objects.get().score == 3


def test_without_its_csrf_token_an_answer_is_refused_and_writes_nothing(dana):
    invitation = make_invitation(make_campaign("nps"), dana)
    status, _, content = call(None, f"/s/{invitation.token}/", {"score": "3"}, csrf=False)
    assert status == 403 and b"Your answer was not sent" in content
    assert not Response.objects.exists()


@pytest.mark.parametrize("score", ["3", "12"])  # recorded (302) and refused (400, the page)
def test_the_answer_handler_sends_every_header_the_full_stack_sends(dana, score):
    campaign = make_campaign("nps")
    lean, full = make_invitation(campaign, dana), make_invitation(campaign)
    lean_status, lean_headers, _ = call(wsgi.survey_answers, f"/s/{lean.token}/", {"score": score})
    full_status, full_headers, _ = call(
        wsgi.django_application, f"/s/{full.token}/", {"score": score}
    )
    assert lean_status == full_status
    # Vary: Cookie on the redirect comes from the session layer, which a page that never
    # reads the session does not need
    assert set(lean_headers) - {"Vary"} == set(full_headers) - {"Vary"}
    # per token, random, or the second the response was made (Expires of never-cache: the
    # two calls may straddle a second; set equality above still wants it on both)
    differ = {"Location", "Set-Cookie", "Content-Length", "Vary", "Expires"}
    assert {k: v for k, v in lean_headers.items() if k not in differ} == {
        k: v for k, v in full_headers.items() if k not in differ
    }
    assert lean_headers["Content-Security-Policy"] and lean_headers["X-Frame-Options"] == "DENY"


def test_every_survey_page_is_marked_never_to_be_cached(client, dana):
    """The form carries a CSRF token and the current answer; the pages saying an answer was
    refused carry the same. Only the redirect after an answer is left as it is."""
    invitation = make_invitation(make_campaign("nps"), dana)
    url = f"/s/{invitation.token}/"
    assert "no-store" in client.get(url).headers["Cache-Control"]
    assert "no-store" in client.post(url, {"score": "12"}).headers["Cache-Control"]
    assert "no-store" in client.get("/s/unknown-token-0123456789abc/").headers["Cache-Control"]
    assert client.post(url, {"score": "9"}).status_code == 302


def test_a_mail_programs_one_click_unsubscribe_needs_no_csrf_token(dana):
    """RFC 8058: the mail program POSTs ``List-Unsubscribe=One-Click`` to the email's
    List-Unsubscribe address, without a cookie, a form token or an Origin; over HTTPS (where
    Django would also want a Referer). It reaches the answers' handler (the lean path takes
    only /s/<token>/) and opts the person out."""
    from surveys.models import OptOut

    invitation = make_invitation(make_campaign("nps"), dana)
    path = f"/s/{invitation.token}/unsubscribe/"
    status, _, content = wsgi_post(
        path, {"List-Unsubscribe": "One-Click"}, form_token="", HTTP_COOKIE=None, HTTP_ORIGIN=None
    )
    assert status.startswith("200"), content[:300]
    assert list(OptOut.objects.values_list("email", flat=True)) == ["dana@acme.example"]
