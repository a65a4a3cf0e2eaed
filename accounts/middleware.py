import logging

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware

logger = logging.getLogger(__name__)


class LoginRequired(LoginRequiredMiddleware):
    """Every page needs a signed-in user, except views marked ``@login_not_required`` and the
    API, which authenticates each request itself (tokens) and answers 401, not a redirect."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


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
