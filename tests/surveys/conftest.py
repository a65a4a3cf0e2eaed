from __future__ import annotations

import datetime as dt
import io
from urllib.parse import urlencode

import pytest
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.utils import timezone

from accounts.models import Stakeholder
from config import wsgi
from surveys import services
from surveys.models import Campaign, Invitation, Survey
from tests.factories import AccountFactory, StakeholderFactory

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def make_campaign(kind: str = "nps", **fields) -> Campaign:
    survey = Survey.objects.create(
        name=f"{kind} survey",
        kind=kind,
        question="How likely are you to recommend us to a friend or colleague?",
        follow_up=fields.pop("follow_up", "What is the main reason for your score?"),
        language=fields.pop("language", "en"),
        strings=fields.pop("strings", {}),
    )
    defaults = {"name": f"{kind.upper()} Q1", "status": Campaign.Status.ACTIVE}
    defaults.update(fields)
    return Campaign.objects.create(survey=survey, **defaults)


def make_invitation(
    campaign: Campaign, stakeholder: Stakeholder | None = None, *, now=None, **fields
) -> Invitation:
    stakeholder = stakeholder or StakeholderFactory()
    now = now or timezone.now()
    values = {
        "campaign": campaign,
        "stakeholder": stakeholder,
        "account_id": stakeholder.account_id,
        "email": stakeholder.email.lower(),
        "token": services.new_token(),
        "expires_at": now + dt.timedelta(days=30),
        "sent_at": now,
    }
    values.update(fields)
    return Invitation.objects.create(**values)


def wsgi_post(path, fields, *, secret=None, form_token=None, app=None, **environ_extra):
    """POST ``fields`` to ``path`` as gunicorn calls the WSGI application (``config.wsgi``
    unless ``app``), over HTTPS from the page's own origin, with a CSRF cookie (``secret``,
    new by default) and the form's masked token (``form_token``; "" sends none). An
    ``environ_extra`` value of None removes that key. Returns (status line, header list,
    body)."""
    secret = secret or _get_new_csrf_string()
    if form_token is None:
        form_token = _mask_cipher_secret(secret)
    if form_token:
        fields = {**fields, "csrfmiddlewaretoken": form_token}
    body = urlencode(fields).encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
        "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver", "HTTP_ORIGIN": "https://testserver", "HTTP_COOKIE": f"csrftoken={secret}",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "https", "wsgi.errors": io.StringIO(),
    }  # fmt: skip
    environ.update(environ_extra)
    environ = {k: v for k, v in environ.items() if v is not None}
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=headers)

    result = (app or wsgi.application)(environ, start_response)
    content = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return started["status"], started["headers"], content


@pytest.fixture
def account(db):
    return AccountFactory(name="Acme Corp", segment="Enterprise")


@pytest.fixture
def dana(account):
    return StakeholderFactory(account=account, name="Dana Smith", email="Dana@Acme.example")


@pytest.fixture
def django_served(monkeypatch):
    """How many requests reached Django's answers' handler (``config.wsgi.survey_answers``)
    rather than the lean path."""
    served = []
    handler = wsgi.survey_answers
    monkeypatch.setattr(wsgi, "survey_answers", lambda *a: served.append(1) or handler(*a))
    return served
