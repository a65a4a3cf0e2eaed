from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_healthz_needs_no_login(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_home_redirects_anonymous_to_login(client):
    r = client.get(reverse("home"))
    assert r.status_code == 302
    assert r.url.startswith(reverse("login"))


def test_login_with_email_and_password(client, csm):
    r = client.post(reverse("login"), {"username": "csm@example.com", "password": "pw-for-tests-1"})
    assert r.status_code == 302
    r = client.get(reverse("home"))
    assert r.status_code == 200
    assert b"csm@example.com" in r.content and b"CSM" in r.content


def test_wrong_password_shows_error(client, csm):
    r = client.post(reverse("login"), {"username": "csm@example.com", "password": "nope"})
    assert r.status_code == 200
    assert b'role="alert"' in r.content
