import logging

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
