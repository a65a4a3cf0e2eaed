"""Pages of the playbooks app. Admin pages (the playbook list with effectiveness and outbox
failures, the editor) answer 403 to anyone else; CTA pages show only CTAs of accounts the
user may see (404 otherwise, never a 403 that would reveal the CTA exists)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from accounts.models import Role, User

from . import selectors, services
from .forms import CommentForm, PlaybookForm, SnoozeForm
from .models import Cta, CtaStatus, CtaStep, Playbook


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _require_admin(request: HttpRequest) -> None:
    if request.user.role != Role.ADMIN:
        raise PermissionDenied("playbooks are configured by admins")


def _get_cta(request: HttpRequest, pk: int) -> Cta:
    qs = Cta.objects.visible_to(request.user).select_related("account__owner", "owner", "playbook")
    return get_object_or_404(qs, pk=pk)


# --- playbooks (admins) ------------------------------------------------------------------


@require_GET
def playbook_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    return render(
        request,
        "playbooks/playbook_list.html",
        {"playbooks": selectors.playbook_list(), "backlog": list(selectors.pending_backlog())},
    )


@require_http_methods(["GET", "POST"])
def playbook_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _require_admin(request)
    playbook = get_object_or_404(Playbook, pk=pk) if pk else None
    if request.method == "GET":
        form = PlaybookForm.for_playbook(playbook) if playbook else PlaybookForm()
    else:
        form = PlaybookForm(request.POST)
        if form.is_valid() and (config := form.config()) is not None:
            try:
                if playbook is None:
                    playbook = services.playbook_create(config=config, created_by=request.user)
                else:
                    playbook = services.playbook_update(
                        playbook=playbook, config=config, updated_by=request.user
                    )
            except ValidationError as exc:
                form.add_service_errors(exc.message_dict)
            else:
                return redirect("playbooks:list")
    versions = playbook.versions.select_related("created_by")[:10] if playbook else []
    return render(
        request,
        "playbooks/playbook_edit.html",
        {"form": form, "playbook": playbook, "versions": versions},
    )


# --- CTAs --------------------------------------------------------------------------------


@require_GET
def cta_list(request: HttpRequest) -> HttpResponse:
    """The CTAs the user may see, open ones by default (``?status=`` for others)."""
    status = request.GET.get("status", "open")
    filters = {}
    if status in CtaStatus.values:
        filters["status"] = status
    if request.GET.get("mine"):
        filters["owner"] = request.user.pk
    ctas = selectors.cta_list(user=request.user, filters=filters)[:200]
    return render(
        request,
        "playbooks/cta_list.html",
        {"ctas": ctas, "status": status, "statuses": CtaStatus.choices},
    )


def _detail_context(request: HttpRequest, cta: Cta, **extra) -> dict:
    return {
        "cta": cta,
        "steps": list(cta.steps.select_related("done_by")),
        "comments": list(cta.comments.select_related("author")),
        "owners": services.owners_for_reassign(cta=cta),
        "snooze_form": extra.pop("snooze_form", None)
        or SnoozeForm(initial={"until": timezone.localdate() + dt.timedelta(days=7)}),
        "comment_form": extra.pop("comment_form", None) or CommentForm(),
        "errors": extra.pop("errors", []),
        "now": timezone.now(),
        **extra,
    }


@require_GET
def cta_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cta = _get_cta(request, pk)
    return render(request, "playbooks/cta_detail.html", _detail_context(request, cta))


def _after_action(request: HtmxHttpRequest, cta: Cta) -> HttpResponse:
    """htmx: the CTA's row fragment (the queue swaps it in place) and a ``ctaChanged``
    event; a plain form post goes back to the CTA page."""
    if request.htmx:
        row = (
            selectors.cta_list(user=request.user).filter(pk=cta.pk).first()
        )  # re-read with its annotations
        response = render(request, "playbooks/_cta_row.html", {"cta": row})
        return trigger_client_event(response, "ctaChanged", {"account_id": cta.account_id})
    return redirect("playbooks:cta-detail", pk=cta.pk)


def _errors(request: HtmxHttpRequest, cta: Cta, exc: ValidationError, **extra) -> HttpResponse:
    messages = [
        f"{k}: {m}" if k != "__all__" else m for k, ms in exc.message_dict.items() for m in ms
    ]
    if request.htmx:  # the row again, with the message (status 200: htmx swaps it)
        row = selectors.cta_list(user=request.user).filter(pk=cta.pk).first()
        return render(request, "playbooks/_cta_row.html", {"cta": row, "errors": messages})
    return render(
        request,
        "playbooks/cta_detail.html",
        _detail_context(request, cta, errors=messages, **extra),
    )


@require_POST
def cta_step_complete(
    request: HtmxHttpRequest, pk: int, step_pk: int | None = None
) -> HttpResponse:
    """Tick a step done: the one named, or the first open step (the queue's button)."""
    cta = _get_cta(request, pk)
    steps = CtaStep.objects.filter(cta=cta)
    step = (
        get_object_or_404(steps, pk=step_pk)
        if step_pk
        else steps.filter(done_at__isnull=True).order_by("position").first()
    )
    if step is None:
        return _errors(request, cta, ValidationError({"step": ["every step is done already"]}))
    try:
        services.cta_step_complete(cta=cta, step=step, user=request.user)
    except ValidationError as exc:
        return _errors(request, cta, exc)
    return _after_action(request, cta)


@require_POST
def cta_snooze(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cta = _get_cta(request, pk)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        return _errors(request, cta, ValidationError({"until": ["give a date (YYYY-MM-DD)"]}))
    try:
        services.cta_snooze(cta=cta, until=form.cleaned_data["until"], user=request.user)
    except ValidationError as exc:
        return _errors(request, cta, exc, snooze_form=form)
    return _after_action(request, cta)


@require_POST
def cta_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """start (→ in progress), done or cancelled (with an optional note)."""
    cta = _get_cta(request, pk)
    action = request.POST.get("status", "")
    try:
        if action == CtaStatus.IN_PROGRESS:
            services.cta_start(cta=cta, user=request.user)
        else:
            services.cta_close(
                cta=cta, status=action, note=request.POST.get("note", ""), user=request.user
            )
    except ValidationError as exc:
        return _errors(request, cta, exc)
    return _after_action(request, cta)


@require_POST
def cta_reassign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cta = _get_cta(request, pk)
    owner = User.objects.filter(pk=request.POST.get("owner") or 0).first()
    try:
        if owner is None:
            raise ValidationError({"owner": ["choose a user"]})
        services.cta_reassign(cta=cta, owner=owner, user=request.user)
    except ValidationError as exc:
        return _errors(request, cta, exc)
    return _after_action(request, cta)


@require_POST
def cta_comment(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cta = _get_cta(request, pk)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _errors(request, cta, ValidationError({"body": ["a comment cannot be empty"]}))
    services.cta_comment_add(cta=cta, body=form.cleaned_data["body"], user=request.user)
    return redirect("playbooks:cta-detail", pk=cta.pk)
