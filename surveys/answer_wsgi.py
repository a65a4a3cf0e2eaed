"""The common survey answer without Django's request cycle: ``config.wsgi`` calls
``first_answer(environ, start_response)`` for every POST to ``/s/…``; it answers only a
person's FIRST answer that Django would record and redirect, and returns None for anything
else, leaving the request (its body restored) to Django's answers' handler, which renders
every other outcome. Answers are the one request a campaign sends by the thousand in a
minute, and Django's handler (WSGIRequest, URL resolving, middleware, HttpResponse) was
over a third of an answer's CPU (bench/survey_post_cost.py).

It answers only when ALL of these hold, as Django's handler would check them:

- the settings are the deployed shape this module knows (``_supported``): no DEBUG, the
  answers' middleware unchanged, CSRF in a cookie, no script prefix, a site-wide CSP;
- ``POST /s/<token>/`` (``public.TOKEN_RE``), a url-encoded form of at most ``MAX_BODY``
  bytes; the host is one of ``ALLOWED_HOSTS`` (``django.http.request.validate_host``);
  HTTPS when ``SECURE_SSL_REDIRECT`` would redirect;
- CSRF as ``CsrfViewMiddleware`` checks it: an ``Origin`` header, when sent, is exactly the
  request's own origin (anything else, trusted origins included, goes to Django); over HTTPS
  without ``Origin`` Django checks the Referer, so that goes to Django; the cookie is an
  unmasked secret of the right format (a masked one makes Django re-set the cookie) and the
  form's ``csrfmiddlewaretoken`` matches it (Django's own ``_check_token_format``, and
  ``_token_matches``: Django's ``_does_token_match`` with the unmasking by table);
- the rate limits allow it (``public.rate_checks``, counted once, by the batch thread with
  the other answers of its batch: the result rides along in ``environ`` so that Django's
  path does not count the hit again);
- the database is PostgreSQL and the request's thread is in no transaction (a test's);
- ``answer_batch.answers`` recorded the answer (with those that arrived meanwhile, in one
  statement: ``services.first_answers_only``; unknown token, closed, expired, a score off
  the scale, a changed answer, a database error: nothing written for it, and Django's path
  runs the service again and renders its page).

Then it sends what Django sends: 302 to ``thanks/`` with the answers' middleware's headers
(``_headers``; tests/surveys/test_answer_wsgi.py compares both header by header). The
request's own thread never touches the database here (the batch thread has its own
connection), so it sends no ``request_started``/``request_finished`` signals, whose
receivers age and check that thread's connection.
"""

from __future__ import annotations

import io
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import connection
from django.http import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.middleware.csrf import (
    CSRF_ALLOWED_CHARS,
    CSRF_SECRET_LENGTH,
    CSRF_TOKEN_LENGTH,
    InvalidTokenFormat,
    _check_token_format,
)
from django.utils.crypto import constant_time_compare

from . import answer_batch, public, services

MAX_BODY = 4096  # a score, a short comment and the CSRF token; a longer form goes to Django
RATE_COUNTED = "surveys.rate_allowed"  # environ key: the hit was counted, and its verdict
FORM = "application/x-www-form-urlencoded"
# SURVEY_ANSWER_MIDDLEWARE as this module mirrors it; any other list goes to Django
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts.middleware.ContentSecurityPolicy",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.DatabaseUnavailable",
]


def first_answer(environ, start_response):
    """The response (a WSGI iterable) when this was a first answer now recorded, else None
    with ``environ`` as it came (the body put back)."""
    # the settings object itself: each ``settings.X`` goes through LazySettings' proxy, and
    # this request reads some 40 of them (override_settings replaces it, and is seen here)
    conf = settings._wrapped
    if not _supported(conf) or connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    path = environ.get("PATH_INFO", "")
    token = path[3:-1]
    if (
        environ.get("SCRIPT_NAME")
        or not path.startswith("/s/")
        or not path.endswith("/")
        or not public.TOKEN_RE.fullmatch(token)
        or environ.get("CONTENT_TYPE") != FORM
    ):
        return None
    scheme = _scheme(environ, conf)
    if conf.SECURE_SSL_REDIRECT and scheme != "https":
        return None
    host = environ.get("HTTP_HOST", "")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, conf.ALLOWED_HOSTS):
        return None
    origin = environ.get("HTTP_ORIGIN")
    if origin is None and scheme == "https":
        return None  # Django checks the Referer then
    if origin is not None and origin != f"{scheme}://{host}":
        return None
    secret = parse_cookie(environ.get("HTTP_COOKIE", "")).get(conf.CSRF_COOKIE_NAME)
    if secret is None or len(secret) != CSRF_SECRET_LENGTH:
        return None
    form = _read_form(environ, conf)
    if form is None:
        return None
    token_sent = form.get("csrfmiddlewaretoken", "")
    try:
        _check_token_format(secret)
        _check_token_format(token_sent)
    except InvalidTokenFormat:
        return None
    if not _token_matches(token_sent, secret):
        return None

    comment = form.get("comment", "")[: services.COMMENT_MAX]
    checks = public.rate_checks(environ.get("REMOTE_ADDR"), token)
    allowed, recorded = answer_batch.answers.record(token, form.get("score", ""), comment, checks)
    if allowed is not None:
        environ[RATE_COUNTED] = allowed
    if not recorded:
        return None
    start_response("302 Found", _headers(conf, path + "thanks/", scheme == "https"))
    return [b""]


def _supported(conf) -> bool:
    """Whether the settings are those whose responses ``_headers`` builds."""
    policy = conf.CONTENT_SECURITY_POLICY
    return not (
        conf.DEBUG
        or conf.SURVEY_ANSWER_MIDDLEWARE != MIDDLEWARE
        or conf.CSRF_USE_SESSIONS
        or conf.FORCE_SCRIPT_NAME
        or conf.USE_X_FORWARDED_HOST
        or conf.USE_X_FORWARDED_PORT
        or conf.PREPEND_WWW
        or conf.DISALLOWED_USER_AGENTS
        or not policy
        or policy.get("EXCLUDE_URL_PREFIXES")
        or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
    )


def _scheme(environ, conf) -> str:
    """``HttpRequest.scheme``: the proxy's header when configured and sent."""
    if conf.SECURE_PROXY_SSL_HEADER:
        header, secure = conf.SECURE_PROXY_SSL_HEADER
        sent = environ.get(header)
        if sent is not None:
            return "https" if sent.split(",", 1)[0].strip() == secure else "http"
    return environ.get("wsgi.url_scheme", "http")


def _read_form(environ, conf) -> dict[str, str] | None:
    """The url-encoded form, its last value per field as ``request.POST.get`` gives it,
    parsed as ``QueryDict`` parses it; the body is put back for Django."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:
        return None
    try:
        text = body.decode(conf.DEFAULT_CHARSET)
    except UnicodeDecodeError:
        return None
    try:
        fields = parse_qsl(
            text,
            keep_blank_values=True,
            encoding=conf.DEFAULT_CHARSET,
            max_num_fields=conf.DATA_UPLOAD_MAX_NUMBER_FIELDS,
        )
    except ValueError:  # too many fields: Django's path refuses it
        return None
    return dict(fields)


# Django's _unmask_cipher_token as a table: the secret's character for each (cipher, mask)
# pair of characters. Django's finds each character's index in the alphabet by a search,
# 64 a token, a tenth of this path's CPU (tests/surveys/test_answer_wsgi.py: same results)
_UNMASK = {
    (cipher, mask): CSRF_ALLOWED_CHARS[
        CSRF_ALLOWED_CHARS.index(cipher) - CSRF_ALLOWED_CHARS.index(mask)
    ]
    for cipher in CSRF_ALLOWED_CHARS
    for mask in CSRF_ALLOWED_CHARS
}


def _token_matches(token: str, secret: str) -> bool:
    """``django.middleware.csrf._does_token_match``: a masked token (mask + cipher) or the
    secret itself, both of a format ``_check_token_format`` accepted."""
    if len(token) == CSRF_TOKEN_LENGTH:
        cipher, mask = token[CSRF_SECRET_LENGTH:], token[:CSRF_SECRET_LENGTH]
        token = "".join(map(_UNMASK.__getitem__, zip(cipher, mask, strict=True)))
    return constant_time_compare(token, secret)


_policy: list = [None, ""]  # the CSP settings' dict and its header, built once per dict


def _headers(conf, location: str, secure: bool) -> list[tuple[str, str]]:
    """The 302's headers, in the order the answers' handler sends them: the redirect's own,
    then each middleware's, innermost first (frame options, Content-Length, CSP, security)."""
    from csp.utils import build_policy

    policy = conf.CONTENT_SECURITY_POLICY
    if _policy[0] is not policy:  # first use, or the settings were replaced
        _policy[:] = [policy, build_policy()]
    csp = _policy[1]
    headers = [
        ("Content-Type", f"text/html; charset={conf.DEFAULT_CHARSET}"),
        ("Location", location),
        ("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()),
        ("Content-Length", "0"),
        ("Content-Security-Policy", csp),
    ]
    if conf.SECURE_HSTS_SECONDS and secure:
        sts = f"max-age={conf.SECURE_HSTS_SECONDS}"
        if conf.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            sts += "; includeSubDomains"
        if conf.SECURE_HSTS_PRELOAD:
            sts += "; preload"
        headers.append(("Strict-Transport-Security", sts))
    if conf.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    referrer = conf.SECURE_REFERRER_POLICY
    if referrer:
        if isinstance(referrer, str):
            referrer = [value.strip() for value in referrer.split(",")]
        headers.append(("Referrer-Policy", ",".join(referrer)))
    if conf.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", conf.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers
