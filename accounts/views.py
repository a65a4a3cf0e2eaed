from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import selectors


@require_GET
@never_cache
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception as exc:  # any database error means "not ready"
        return JsonResponse({"status": "error", "detail": type(exc).__name__}, status=503)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    summary = selectors.book_summary(user=request.user)
    return render(request, "accounts/home.html", {"summary": summary})


def import_list(request: HttpRequest) -> HttpResponse:  # placeholder: the upload page
    return render(request, "accounts/home.html", {"summary": selectors.book_summary(user=request.user)})


def import_detail(request: HttpRequest, uuid) -> HttpResponse:  # placeholder
    return render(request, "accounts/home.html", {"summary": selectors.book_summary(user=request.user)})
