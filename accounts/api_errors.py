"""API errors are JSON with a clear message; nothing reaches the client as a 500 page."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, OperationalError | InterfaceError):
        # the database went away mid-request: the client may retry
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"detail": "The database is temporarily unavailable; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    return drf_exception_handler(exc, context)


def not_found(request, exception=None):
    """Django's 404 handler: a JSON body under /api/, naming the path when no URL pattern
    matches it (``/api/v1/ctas/-1/``), Django's page everywhere else. With DEBUG on, Django
    shows its debug page instead of calling it: ``middleware.ApiNotFound`` calls it then."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    if request.resolver_match is None:
        detail = (
            f"No API endpoint at {request.path}; ids in API paths are whole numbers (an "
            "import's is its UUID), and /api/docs/ lists the endpoints."
        )
    else:  # a view (not DRF's: DRF answers its own 404s) found no object
        detail = "Not found."
    return JsonResponse({"detail": detail}, status=status.HTTP_404_NOT_FOUND)
