"""Password reset: nothing to enumerate, one email through the outbox, a one-time link,
and a rate limit per address."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from outbox.models import Message

pytestmark = pytest.mark.django_db

URL = reverse("password_reset")


def _ask(client, email, django_capture_on_commit_callbacks, **extra):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(URL, {"email": email}, **extra)


def test_known_and_unknown_addresses_get_the_same_answer(
    client, csm, celery_eager, django_capture_on_commit_callbacks
):
    known = _ask(client, csm.email, django_capture_on_commit_callbacks)
    unknown = _ask(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]

    def page(url):  # the page without its per-response CSRF token
        return re.sub(rb'"x-csrftoken": "[^"]+"', b"", client.get(url).content)

    assert page(known.headers["Location"]) == page(unknown.headers["Location"])
    # only the real user got an email, through the outbox
    assert [m.to for m in mail.outbox] == [[csm.email]]
    assert Message.objects.get().source == "password-reset"


def test_the_link_sets_a_new_password_once(
    client, csm, celery_eager, django_capture_on_commit_callbacks
):
    _ask(client, csm.email, django_capture_on_commit_callbacks)
    link = re.search(r"^https?://[^/]+(/password-reset/\S+/)$", mail.outbox[0].body, re.M).group(1)
    page = client.get(link, follow=True)  # Django swaps the token for a session marker
    assert b"Choose a new password" in page.content
    form_url = page.redirect_chain[-1][0]
    r = client.post(
        form_url,
        {"new_password1": "a-long-new-passphrase-7", "new_password2": "a-long-new-passphrase-7"},
    )
    assert r.status_code == 302 and r.headers["Location"] == reverse("password_reset_complete")
    csm.refresh_from_db()
    assert csm.check_password("a-long-new-passphrase-7")
    # used once: the same link is now refused
    again = client.get(link, follow=True)
    assert b"not valid any more" in again.content


def test_weak_new_passwords_are_refused(
    client, csm, celery_eager, django_capture_on_commit_callbacks
):
    _ask(client, csm.email, django_capture_on_commit_callbacks)
    link = re.search(r"^https?://[^/]+(/password-reset/\S+/)$", mail.outbox[0].body, re.M).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    r = client.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert r.status_code == 200
    assert b"too common" in r.content or b"entirely numeric" in r.content


def test_reset_requests_are_limited_per_address(
    client, csm, celery_eager, django_capture_on_commit_callbacks
):
    from accounts.views import PASSWORD_RESET_LIMIT

    for _ in range(PASSWORD_RESET_LIMIT):
        assert _ask(client, "x@example.com", django_capture_on_commit_callbacks).status_code == 302
    r = _ask(client, csm.email, django_capture_on_commit_callbacks)
    assert r.status_code == 429 and b"Too many reset requests" in r.content
    assert mail.outbox == []
    # another address is not limited
    other = _ask(client, csm.email, django_capture_on_commit_callbacks, REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 302 and len(mail.outbox) == 1


def test_the_email_links_to_site_url_says_how_long_it_works_and_prints_the_address_as_is(
    client, settings, celery_eager, django_capture_on_commit_callbacks
):
    """The link starts with SITE_URL, as every other email's, not with whatever host the
    request came in by (an internal name behind a proxy); it says how long it works
    (PASSWORD_RESET_TIMEOUT, 3 days = 259,200 s); the plain text shows an address with an
    apostrophe as typed, not as an HTML entity."""
    from tests.conftest import _user

    settings.SITE_URL = "https://cs.example.com"
    settings.PASSWORD_RESET_TIMEOUT = 3 * 24 * 60 * 60
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "internal"]  # reached by its inner name
    user = _user("o'neil@example.com", None)
    _ask(client, user.email, django_capture_on_commit_callbacks, HTTP_HOST="internal:8000")
    (email,) = mail.outbox
    assert re.search(r"^https://cs\.example\.com/password-reset/\S+/$", email.body, re.M)
    assert "internal" not in email.body
    assert "o'neil@example.com" in email.body and "&#x27;" not in email.body
    assert "within 3 days" in email.body
