"""The first answer's lean path (surveys.answer_wsgi, called by config.wsgi before Django's
answers' handler): the same response as Django's path for the answers it takes, and every
other request (bad CSRF, another origin, unknown, closed, a bad score, a changed answer, rate
limited) left to Django's path, which renders its page. Driven through config.wsgi as
gunicorn calls it, over HTTPS as deployed; the lean path needs PostgreSQL (SQLite: Django's
path answers everything, and the same outcomes are checked)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.middleware.csrf import (
    _does_token_match,
    _get_new_csrf_string,
    _mask_cipher_secret,
)
from django.test import override_settings

from config import wsgi
from surveys import answer_wsgi
from surveys.models import Response

from .conftest import make_campaign, make_invitation
from .conftest import wsgi_post as post

# outside a test transaction, as a request runs (the lean path needs autocommit)
pytestmark = pytest.mark.django_db(transaction=True)
LEAN = connection.vendor == "postgresql"


def test_a_first_answer_is_recorded_without_django_with_the_same_response(dana, django_served):
    campaign = make_campaign("nps")
    lean, full = make_invitation(campaign, dana), make_invitation(campaign)
    status, headers, content = post(f"/s/{lean.token}/", {"score": "3", "comment": " meh "})
    assert django_served == ([] if LEAN else [1])
    django_status, django_headers, django_content = post(
        f"/s/{full.token}/", {"score": "3", "comment": " meh "}, app=wsgi.survey_answers
    )
    assert (status, content) == (django_status, django_content) == ("302 Found", b"")
    # every header, in the same order, the token aside
    assert [(k, v.replace(lean.token, "T")) for k, v in headers] == [
        (k, v.replace(full.token, "T")) for k, v in django_headers
    ]
    assert dict(headers)["Location"] == f"/s/{lean.token}/thanks/"
    assert {"Content-Security-Policy", "X-Frame-Options"} <= set(dict(headers))
    if LEAN:  # the deployed profile, over HTTPS
        assert "Strict-Transport-Security" in dict(headers)
    answer = Response.objects.get(invitation=lean)
    assert (answer.score, answer.comment, answer.is_current) == (3, "meh", True)
    lean.refresh_from_db()
    assert lean.responded_at == answer.answered_at


def test_a_token_django_made_for_the_form_passes(client, dana, django_served):
    invitation = make_invitation(make_campaign("nps"), dana)
    page = client.get(f"/s/{invitation.token}/", secure=True)
    secret = client.cookies["csrftoken"].value
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)[1]
    status, _, _ = post(
        f"/s/{invitation.token}/", {"score": "9"}, secret=secret, form_token=form_token.decode()
    )
    assert status == "302 Found" and django_served == ([] if LEAN else [1])
    assert Response.objects.get().score == 9


def _tampered(token: str) -> str:
    return token[:-1] + ("a" if token[-1] != "a" else "b")


@pytest.mark.parametrize(
    "case",
    ["no form token", "tampered form token", "no cookie", "another origin",
     "no origin over https", "masked cookie"],
)  # fmt: skip
def test_a_csrf_doubt_goes_to_django_which_refuses_it(dana, django_served, case):
    invitation = make_invitation(make_campaign("nps"), dana)
    secret = _get_new_csrf_string()
    form_token = _mask_cipher_secret(secret)
    extra = {}
    if case == "no form token":
        form_token = ""
    elif case == "tampered form token":
        form_token = _tampered(form_token)
    elif case == "no cookie":
        extra["HTTP_COOKIE"] = None
    elif case == "another origin":
        extra["HTTP_ORIGIN"] = "https://evil.example"
    elif case == "no origin over https":
        extra["HTTP_ORIGIN"] = None  # Django then wants a Referer from this site
    elif case == "masked cookie":  # valid for Django (pre-4.0 cookies), which re-sets it
        extra["HTTP_COOKIE"] = f"csrftoken={_mask_cipher_secret(secret)}"
    status, _, content = post(
        f"/s/{invitation.token}/", {"score": "9"}, secret=secret, form_token=form_token, **extra
    )
    assert django_served == [1]
    if case == "masked cookie":
        assert status == "302 Found" and Response.objects.count() == 1
    else:
        assert status.startswith("403") and b"Your answer was not sent" in content
        assert not Response.objects.exists()


def test_every_other_outcome_is_djangos_page(dana, django_served):
    campaign = make_campaign("nps")
    invitation = make_invitation(campaign, dana)
    url = f"/s/{invitation.token}/"
    status, _, content = post("/s/no-such-token-0123456789abc/", {"score": "9"})
    assert status.startswith("404")
    status, _, content = post(url, {"score": "12"})
    assert status.startswith("400") and b"0" in content
    assert django_served == [1, 1]
    assert post(url, {"score": "9"})[0] == "302 Found"  # the first answer: lean on PostgreSQL
    assert post(url, {"score": "10"})[0] == "302 Found"  # a change keeps history: Django
    assert django_served == ([1, 1, 1] if LEAN else [1, 1, 1, 1])
    assert sorted(Response.objects.values_list("score", "is_current")) == [(9, False), (10, True)]
    expired = make_invitation(campaign, expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert post(f"/s/{expired.token}/", {"score": "9"})[0].startswith("410")
    assert Response.objects.count() == 2


@override_settings(SURVEY_RATE_PER_TOKEN=2)
def test_a_hit_is_counted_once_whichever_path_answers(dana, django_served):
    """Two hits allowed per link: the lean path counts the first answer, Django's path the
    change (a hit the lean path counted and passed on would be counted twice: 429 early)."""
    url = f"/s/{make_invitation(make_campaign('nps'), dana).token}/"
    assert post(url, {"score": "9"})[0] == "302 Found"
    assert post(url, {"score": "10"})[0] == "302 Found"
    status, headers, _ = post(url, {"score": "8"})
    assert status.startswith("429") and dict(headers)["Retry-After"] == "60"
    assert Response.objects.filter(is_current=True).get().score == 10


def test_the_tokens_are_matched_as_django_matches_them():
    for _ in range(200):
        secret, other = _get_new_csrf_string(), _get_new_csrf_string()
        for token in (_mask_cipher_secret(secret), secret, _tampered(_mask_cipher_secret(secret))):
            for against in (secret, other):
                assert answer_wsgi._token_matches(token, against) == _does_token_match(
                    token, against
                )
    assert answer_wsgi._token_matches(_mask_cipher_secret(secret), secret)
