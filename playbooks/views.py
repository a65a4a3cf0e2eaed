"""Pages of the playbooks app. Admin pages (the playbook list with effectiveness and outbox
failures, the editor) answer 403 to anyone else; CTA pages show only CTAs of accounts the
user may see (404 otherwise, never a 403 that would reveal the CTA exists)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from accounts import once, utc
from accounts.models import Role, User
from config.announce import announce

from . import rules, selectors, services
from .forms import CommentForm, PlaybookForm, SnoozeForm
from .models import ACTIVE_STATUSES, Cta, CtaEmailKind, CtaStatus, CtaStep, Playbook


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _require_admin(request: HttpRequest) -> None:
    if request.user.role != Role.ADMIN:
        raise PermissionDenied("playbooks are configured by admins")


def _get_cta(request: HttpRequest, pk: int) -> Cta:
    qs = (
        Cta.objects.visible_to(request.user)
        .select_related("account__owner", "owner", "playbook")
        .annotate(account_visible=selectors.account_visible(request.user))
    )
    return get_object_or_404(qs, pk=pk)


# --- playbooks (admins) ------------------------------------------------------------------


@require_GET
def playbook_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    playbooks = selectors.playbook_list()
    # the surveys steps send, by name (no query when no step sends one)
    campaigns = selectors.campaign_names(
        c for p in playbooks for c in rules.step_campaigns(p.steps)
    )
    for p in playbooks:  # the trigger and the surveys steps send, in words
        p.trigger_label, p.trigger_words = rules.describe(
            rules.TRIGGERS, p.trigger, p.trigger_params
        )
        p.survey_words = rules.step_survey_words(p.steps, campaigns)
    return render(
        request,
        "playbooks/playbook_list.html",
        {
            "playbooks": playbooks,
            "backlog": list(selectors.pending_backlog()),
            "waiting_order": services.WAITING_ORDER,
        },
    )


@require_http_methods(["GET", "POST"])
def playbook_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Every error at once: the fields the form parsed are checked by the services even
    when another field (bad JSON, a bad URL) did not parse."""
    _require_admin(request)
    playbook = get_object_or_404(Playbook, pk=pk) if pk else None
    if request.method == "GET":
        form = PlaybookForm.for_playbook(playbook) if playbook else PlaybookForm()
    else:
        form = PlaybookForm(request.POST, playbook=playbook)
        form.is_valid()
        config = form.config()
        if form.errors:
            form.add_service_errors(services.playbook_config_errors(config=config))
        else:
            try:
                if playbook is None:
                    key = once.key_of(request.POST)
                    with transaction.atomic():  # the same form sent twice: one playbook
                        if not once.claim(key):
                            return _playbook_sent_twice(request, key)
                        playbook = services.playbook_create(config=config, created_by=request.user)
                        once.made(key, playbook)
                else:
                    playbook = services.playbook_update(
                        playbook=playbook,
                        config=config,
                        updated_by=request.user,
                        based_on=form.cleaned_data.get("based_on"),
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


def _playbook_sent_twice(request: HttpRequest, key: str) -> HttpResponse:
    """The new-playbook form sent again after its first send made the playbook: to it."""
    made = once.made_by(key, Playbook)
    if made is None:  # removed since
        messages.info(request, "This form was sent already.")
        return redirect("playbooks:list")
    messages.info(
        request, f"“{made.name}” was saved already (the form was sent twice): one playbook."
    )
    return redirect("playbooks:edit", pk=made.pk)


# --- CTAs --------------------------------------------------------------------------------


@require_GET
def cta_list(request: HttpRequest) -> HttpResponse:
    """The CTAs the user may see, open ones by default (``?status=`` for others, ``active``
    for open or in progress); ``?escalated=me``: those escalated to the user."""
    status = request.GET.get("status", "open")
    filters = {}
    if status in CtaStatus.values:
        filters["status"] = status
    elif status == "active":
        filters["status__in"] = ACTIVE_STATUSES
    if request.GET.get("mine"):
        filters["owner"] = request.user.pk
    escalated = request.GET.get("escalated") == "me"
    if escalated:
        filters["escalated_to"] = request.user.pk
    ctas = selectors.cta_list(user=request.user, filters=filters)[:200]
    return render(
        request,
        "playbooks/cta_list.html",
        {
            "ctas": ctas,
            "status": status,
            "statuses": CtaStatus.choices,
            "escalated": escalated,
            "waiting_order": services.WAITING_ORDER,
            "cap": settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM,
        },
    )


def _detail_context(request: HttpRequest, cta: Cta, **extra) -> dict:
    success_label, success_words = rules.describe(
        rules.SUCCESSES, cta.playbook.success, cta.playbook.success_params
    )
    steps = list(cta.steps.select_related("done_by"))
    last_due = max((s.due_on for s in steps), default=None)
    return {
        "cta": cta,
        "success_label": success_label,
        "success_words": success_words,
        "steps": steps,
        # the rule of the CTA's due date, said beside it when it holds (a snooze moves it)
        "due_with_last_step": last_due is not None
        and cta.due_at == services.due_after_steps(last_due),
        "comments": list(cta.comments.select_related("author")),
        "owners": services.owners_for_reassign(cta=cta, user=request.user),
        "start_words": services.start_words(cta, request.user),
        "waiting_order": services.WAITING_ORDER,
        "cap": settings.PLAYBOOK_MAX_OPEN_CTAS_PER_CSM,
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


def _on_account_page(request: HtmxHttpRequest) -> bool:
    """The htmx request came from an account page (its CTA rows have a steps row below)."""
    path = request.htmx.current_url_abs_path
    try:
        return bool(path) and resolve(path.split("?")[0]).view_name == "workspace:account"
    except Resolver404:
        return False


def _row(
    request: HtmxHttpRequest, cta: Cta, errors: list[str] | None = None, notice: str = ""
) -> HttpResponse:
    """The CTA's row fragment (re-read with its annotations) for htmx to swap in place,
    with ``notice`` (what the action did) or ``errors``; on an account page also its steps
    row, out of band, so a step done shows as done."""
    row = selectors.cta_list(user=request.user).filter(pk=cta.pk).first()
    html = render_to_string(
        "playbooks/_cta_row.html",
        {"cta": row, "errors": errors or [], "notice": notice},
        request=request,
    )
    if row is not None and _on_account_page(request):
        html += render_to_string(
            "playbooks/_cta_steps_row.html",
            {"cta": row, "steps": row.steps.order_by("position"), "oob": True},
            request=request,
        )
    return HttpResponse(html)


def _after_action(request: HtmxHttpRequest, cta: Cta, notice: str = "") -> HttpResponse:
    """htmx: the CTA's row fragment (the queue swaps it in place) with ``notice``, a
    ``ctaChanged`` event and ``notice`` announced (the page's live region: the queue re-reads
    itself and wipes the row's); a plain form post goes back to the CTA page, ``notice``
    shown there as a message."""
    if request.htmx:
        response = trigger_client_event(
            _row(request, cta, notice=notice), "ctaChanged", {"account_id": cta.account_id}
        )
        if not notice:
            return response
        return announce(response, f"{notice} ({cta.title}, {cta.account.name})")
    if notice:
        messages.success(request, notice)
    return redirect("playbooks:cta-detail", pk=cta.pk)


# the words of the CTA page's fields, for the services' errors by field
FIELD_LABELS = {
    "snoozed_until": "Snooze until",
    "until": "Snooze until",
    "owner": "Reassign to",
    "body": "Comment",
    "step": "Steps",
    "status": "",
}


def _messages(exc: ValidationError) -> list[str]:
    out = []
    for key, ms in exc.message_dict.items():
        label = FIELD_LABELS.get(key, key.replace("_", " ").capitalize())
        out += [
            f"{label}: {m}" if label and key != "__all__" else m[:1].upper() + m[1:] for m in ms
        ]
    return out


def _errors(request: HtmxHttpRequest, cta: Cta, exc: ValidationError) -> HttpResponse:
    """htmx: the row again, with the message (status 200: htmx swaps it). A plain form post
    goes back to the CTA page with the message (post/redirect/get: the address bar shows
    the CTA page, and reloading it does not post again)."""
    if request.htmx:
        return _row(request, cta, _messages(exc))
    for message in _messages(exc):
        messages.error(request, message)
    return redirect("playbooks:cta-detail", pk=cta.pk)


def _action(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A CTA action: POST only. Another method gets a 405 (as the security matrix says) that
    is a page, not a blank: it links to the CTA page (by the address's id, unlooked-up, so
    it tells nobody whether the CTA exists). A plain form's answer redirects, so a browser
    only lands here from a typed or saved address."""

    @wraps(view)
    def wrapper(request: HtmxHttpRequest, pk: int, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            return view(request, pk, *args, **kwargs)
        response = render(
            request,
            "playbooks/cta_action_get.html",
            {"cta_url": reverse("playbooks:cta-detail", args=[pk])},
            status=405,
        )
        response["Allow"] = "POST"
        return response

    return wrapper


@_action
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
    return _after_action(request, cta, f"Step {step.position} done: {step.title}")


@_action
def cta_snooze(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Snooze until a day (the CTA page), or ``week``: a week on (the rows' one click,
    ``services.cta_snooze_a_week``)."""
    cta = _get_cta(request, pk)
    try:
        if request.POST.get("week"):
            cta = services.cta_snooze_a_week(cta=cta, user=request.user)
        else:
            form = SnoozeForm(request.POST)
            if not form.is_valid():
                raise ValidationError({"until": ["give a date (YYYY-MM-DD)"]})
            cta = services.cta_snooze(cta=cta, until=form.cleaned_data["until"], user=request.user)
    except ValidationError as exc:
        return _errors(request, cta, exc)
    return _after_action(request, cta, f"Snoozed until {utc.day_text(cta.snoozed_until)}")


# what a status action did, in the words of the CTA page's buttons
STATUS_NOTICES = {
    CtaStatus.IN_PROGRESS: "Started",
    CtaStatus.DONE: "Closed as done",
    CtaStatus.CANCELLED: "Cancelled",
}


@_action
def cta_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """start (→ in progress), done or cancelled (with an optional note). Done with steps
    still open asks first: the CTA page again, naming them, with a button that closes the
    CTA and skips them (``skip_open_steps``)."""
    cta = _get_cta(request, pk)
    action = request.POST.get("status", "")
    note = request.POST.get("note", "")
    try:
        if action == CtaStatus.IN_PROGRESS:
            services.cta_start(cta=cta, user=request.user)
        else:
            services.cta_close(
                cta=cta,
                status=action,
                note=note,
                user=request.user,
                skip_open_steps=request.POST.get("skip_open_steps") == "1",
            )
    except services.OpenStepsError as exc:
        if request.htmx:
            return _errors(request, cta, exc)
        context = _detail_context(request, cta, confirm_close=exc, close_note=note)
        return render(request, "playbooks/cta_detail.html", context)
    except ValidationError as exc:
        return _errors(request, cta, exc)
    return _after_action(request, cta, STATUS_NOTICES.get(action, ""))


@_action
def cta_reassign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cta = _get_cta(request, pk)
    owner = User.objects.filter(pk=request.POST.get("owner") or 0).first()
    try:
        if owner is None:
            raise ValidationError({"owner": ["choose a user"]})
        services.cta_reassign(cta=cta, owner=owner, user=request.user)
    except ValidationError as exc:
        return _errors(request, cta, exc)
    return _after_action(request, cta, f"Reassigned to {owner}")


@_action
def cta_comment(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cta = _get_cta(request, pk)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _errors(request, cta, ValidationError({"body": ["a comment cannot be empty"]}))
    with transaction.atomic():  # the same form sent twice (a double click): one comment
        first = once.claim(once.key_of(request.POST))
        if first:
            services.cta_comment_add(cta=cta, body=form.cleaned_data["body"], user=request.user)
    messages.success(
        request,
        "Comment added."
        if first
        else "This comment was added already (the form was sent twice): it is there once.",
    )
    return redirect("playbooks:cta-detail", pk=cta.pk)


@never_cache
@csrf_exempt  # the signed token is the authority, not a session (see the docstring)
@login_not_required
@require_http_methods(["GET", "POST"])
def cta_email_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """A CTA email's unsubscribe link: GET shows a button (mail scanners follow links), POST
    turns that kind of CTA email off. The mail program's one-click button (the email's
    ``List-Unsubscribe-Post`` header, RFC 8058) POSTs here without a session or a CSRF
    token; none is needed, since the POST acts on the user the signed token names, not on
    whoever is signed in, and only turns one kind of their emails off."""
    found = services.cta_email_token_read(token)
    if found is None:
        return render(
            request,
            "playbooks/cta_email_unsubscribe.html",
            {"invalid": True, "title": "CTA emails"},
            status=404,
        )
    user, kind = found
    context = {"email": user.email, "kind": CtaEmailKind(kind).label, "title": "CTA emails"}
    if request.method == "POST":
        services.cta_email_set(user=user, kind=kind, on=False)
        context["done"] = True
    return render(request, "playbooks/cta_email_unsubscribe.html", context)
