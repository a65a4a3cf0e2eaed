import logging
from urllib.parse import urljoin

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpResponseNotAllowed
from django.shortcuts import render
from django.urls import Resolver404, get_script_prefix, resolve, reverse

from .api_errors import not_found

logger = logging.getLogger(__name__)


class LoginRequired(LoginRequiredMiddleware):
    """Every page needs a signed-in user, except views marked ``@login_not_required`` and the
    API, which authenticates each request itself (tokens) and answers 401, not a redirect."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class ApiNotFound:
    """A path under /api/ that matches no URL pattern answers the API's JSON 404
    (``api_errors.not_found``, the project's handler404) in every mode: Django calls
    handler404 only with DEBUG off, and with it on (the embedded mode) shows its HTML debug
    page listing every URL pattern. Unlike a catch-all route, it leaves every real route and
    APPEND_SLASH's redirect (``/api/v1/accounts`` → ``/api/v1/accounts/``) as they are."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.resolver_match is None  # no URL pattern matched the path
            and request.path.startswith("/api/")
        ):
            return not_found(request)
        return response


class DatabaseUnavailable:
    """A page whose database connection died (PostgreSQL restarting, a failover) answers
    503 with Retry-After and a plain "try again" page, not a 500. The API has the same rule
    in its exception handler (accounts/api_errors.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import InterfaceError, OperationalError
        from django.shortcuts import render

        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable on %s: %s", request.path, exception)
        response = render(request, "503.html", status=503)
        response["Retry-After"] = "5"
        return response


# what makes a response's policy its own (django-csp's decorators) rather than the site's
_OWN_POLICY = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt")
_OWN_POLICY += tuple(f"{name}_ro" for name in _OWN_POLICY)


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware, except that the site's policy, the header of nearly every
    response, is built once rather than per response (django-csp rebuilds it from the
    settings each time: a tenth of the survey answer's CPU, bench/survey_post_cost.py).
    A response with a policy of its own, a request that used a nonce, a report-only or
    prefix-excluding configuration and DEBUG go through django-csp unchanged."""

    _built_from = _built = None

    def process_response(self, request, response):
        policy = settings.CONTENT_SECURITY_POLICY
        if (
            settings.DEBUG
            or not policy
            or policy.get("EXCLUDE_URL_PREFIXES")
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            or getattr(request, "_csp_nonce", None) is not None
            or HEADER in response
            or any(hasattr(response, name) for name in _OWN_POLICY)
        ):
            return super().process_response(request, response)
        if self._built_from is not policy:  # first use, or the settings were replaced
            self._built, self._built_from = build_policy(), policy
        response[HEADER] = self._built
        # as django-csp does: asking for a nonce once the header is written is an error
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


class FormOnlyAddress:
    """A page's POST-only address opened with GET (a reload after a form's answer, a new
    tab, a sign-in's ``?next=``) answers Django's 405 with an empty body: a blank page.
    This keeps the 405 and its Allow header but gives the site's page saying the address
    takes a form's submission, with a link to the page the form is on: the nearest
    address above it that is a page (``/manage/api-tokens/new/`` leads to
    ``/manage/api-tokens/``), else home. The API (``/api/``, DRF's JSON 405), htmx requests
    and a 405 that already has a body of its own are left as they are."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            isinstance(response, HttpResponseNotAllowed)
            and not response.content
            and request.method == "GET"
            and not request.path_info.startswith("/api/")
            and not getattr(request, "htmx", False)
        ):
            page = render(request, "405.html", {"form_page": form_page(request.path_info)})
            page.status_code = 405
            page["Allow"] = response["Allow"]
            page._has_been_logged = getattr(response, "_has_been_logged", False)  # logged once
            return page
        return response


def form_page(path: str) -> str:
    """The address a form posting to ``path`` most likely lives on: the nearest parent
    path (the last segment removed, then the next) that resolves, else home."""
    parts = [p for p in path.split("/") if p]
    while parts:
        parts.pop()
        parent = "/" + "".join(f"{p}/" for p in parts)
        try:
            resolve(parent)
        except Resolver404:
            continue
        return urljoin(get_script_prefix(), parent.lstrip("/"))
    return reverse("home")


class BookVersionMemo:
    """A request reads the book's version (``accounts.book``) at most once, however many of
    its cached reads name it: one query, not one per read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import book

        with book.memo():
            return self.get_response(request)
