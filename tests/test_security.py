"""Security headers and login throttling (issue 7's security list)."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, csm):
    client.force_login(csm)
    response = client.get(reverse("home"))
    policy = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # and the page itself holds no inline script the policy would block
    body = response.content.decode()
    assert "<script>" not in body and " onclick=" not in body


def test_the_login_page_is_throttled_per_email_and_address(client, csm, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("login")
    for _ in range(2):
        r = client.post(url, {"username": csm.email, "password": "wrong"})
        assert r.status_code == 200 and b"Sign in" in r.content
    # the third failure reaches the limit: the pair is paused, with a clear page
    r = client.post(url, {"username": csm.email, "password": "wrong"})
    assert r.status_code == 429
    # now even the right password is refused
    r = client.post(url, {"username": csm.email, "password": "pw-for-tests-1"})
    assert r.status_code == 429
    assert b"Too many sign-in attempts" in r.content
    assert "_auth_user_id" not in client.session
    # another address is not locked out (the lock is on the email *and* the address)
    r = client.post(
        url, {"username": csm.email, "password": "pw-for-tests-1"}, REMOTE_ADDR="10.9.8.7"
    )
    assert r.status_code == 302 and client.session["_auth_user_id"] == str(csm.pk)


def test_a_successful_login_resets_the_failure_count(client, csm, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("login")
    for _ in range(2):
        client.post(url, {"username": csm.email, "password": "wrong"})
    assert (
        client.post(url, {"username": csm.email, "password": "pw-for-tests-1"}).status_code == 302
    )
    client.logout()
    for _ in range(2):
        client.post(url, {"username": csm.email, "password": "wrong"})
    assert (
        client.post(url, {"username": csm.email, "password": "pw-for-tests-1"}).status_code == 302
    )


def test_the_cached_policy_is_django_csps_own_and_follows_the_settings(rf, settings):
    """accounts.middleware.ContentSecurityPolicy builds the site's header once; it must be
    exactly what django-csp builds, per-response policies must still win, and replaced
    settings must be picked up."""
    from csp.decorators import csp_update
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse

    from accounts.middleware import ContentSecurityPolicy

    settings.DEBUG = False
    ours, theirs = (
        ContentSecurityPolicy(lambda r: HttpResponse()),
        CSPMiddleware(lambda r: HttpResponse()),
    )

    def header(middleware, view=lambda r: HttpResponse()):
        request = rf.get("/")
        middleware.process_request(request)
        return middleware.process_response(request, view(request))["Content-Security-Policy"]

    assert header(ours) == header(ours) == header(theirs)  # built, then reused
    own = csp_update({"img-src": ["https://img.example"]})(lambda r: HttpResponse())
    assert "https://img.example" in header(ours, own) == header(theirs, own)
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert header(ours) == header(theirs) == "default-src 'none'"
