"""Voice pages: themes for leaders (and the drill-down for CSMs), an account's voice, the
north-star setting. Thin: access check, one selector or service call, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts import utc
from accounts.models import Account, Role

from . import selectors, services, tasks
from .forms import NorthStarForm
from .models import Theme

LEADERS = (Role.ADMIN, Role.MANAGER)


def _require_role(request: HttpRequest) -> str:
    role = getattr(request.user, "role", None)
    if role is None:
        raise Http404("No such page")
    return role


@require_GET
def theme_list(request: HttpRequest) -> HttpResponse:
    """Every role sees the themes; the book-wide outcomes (ARR, churn, NPS against the rest)
    are for leaders; a CSM sees how many of their own accounts mention each theme."""
    role = _require_role(request)
    context = selectors.theme_list(user=request.user)
    context["is_leader"] = role in LEADERS
    context["north_star"] = selectors.north_star_total(user=request.user, as_of=utc.today())
    return render(request, "voice/theme_list.html", context)


@require_POST
def theme_recompute(request: HttpRequest) -> HttpResponse:
    """Leaders start a themes run now (one at a time)."""
    if _require_role(request) not in LEADERS:
        raise PermissionDenied("Only admins and managers recompute themes")
    run = tasks.request_themes(user=request.user)
    if run is None:
        messages.info(request, "Themes are being computed already.")
    else:
        messages.success(request, "Themes are being recomputed; this page shows them when done.")
    url = "/voice/themes/"
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
def theme_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A theme's quotes and accounts; only the accounts the user may see."""
    role = _require_role(request)
    theme = get_object_or_404(Theme.objects.select_related("run"), pk=pk)
    context = selectors.theme_detail(theme=theme, user=request.user)
    context.update(theme=theme, is_leader=role in LEADERS)
    return render(request, "voice/theme_detail.html", context)


@require_GET
def account_voice(request: HttpRequest, pk: int) -> HttpResponse:
    """An account's sentiment, relationship, themes and north star (404 when not visible)."""
    account = get_object_or_404(
        Account.objects.select_related("owner").visible_to(request.user), pk=pk
    )
    voice = selectors.account_voice(account=account, as_of=utc.today())
    return render(request, "voice/account_voice.html", {"account": account, "voice": voice})


@require_http_methods(["GET", "POST"])
def north_star_edit(request: HttpRequest) -> HttpResponse:
    """Admins pick the north-star metric; anyone else gets 403."""
    if getattr(request.user, "role", None) != Role.ADMIN:
        raise PermissionDenied("Only admins choose the north-star metric")
    star = selectors.north_star()
    if request.method == "POST":
        form = NorthStarForm(request.POST)
        if form.is_valid():
            try:
                services.north_star_set(user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                tasks.north_star_changed()
                messages.success(request, "North star saved; its weeks are being computed.")
                return redirect("voice:north-star")
    else:
        initial = {"aggregation": "count"}
        if star is not None:
            initial = {"label": star.label, "event": star.event, "aggregation": star.aggregation}
        form = NorthStarForm(initial=initial)
    events = services.known_events()
    total = selectors.north_star_total(user=request.user, as_of=utc.today())
    return render(
        request,
        "voice/north_star.html",
        {"form": form, "star": star, "events": events, "north_star": total},
    )
