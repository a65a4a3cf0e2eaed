"""Staff pages: campaigns (list, editor and "Send now" for admins and managers) and results
(figures, distribution, comments, CSV export) over the accounts the user may see. The public
link pages are in ``surveys.public``."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import once, utc
from accounts.exports import csv_response, export_filename, moment_cell
from accounts.models import Account, Role

from . import scoring, selectors, services
from .forms import CampaignForm, ResultsFilterForm
from .models import Campaign

COMMENTS_PER_PAGE = 25


def _require_editor(request: HttpRequest) -> None:
    """Admins and managers edit campaigns; anyone else gets 403 (a screen, not an object of
    someone's book: nothing to hide about its existence)."""
    if getattr(request.user, "role", None) not in (Role.ADMIN, Role.MANAGER):
        raise PermissionDenied("Only an Admin or a Manager may edit survey campaigns.")


def _require_role(request: HttpRequest) -> None:
    """Campaigns and results (of the accounts one may see) are for every role."""
    if getattr(request.user, "role", None) is None:
        raise PermissionDenied("Survey results need a role (CSM, Manager or Admin).")


@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    _require_role(request)
    can_edit = request.user.role in (Role.ADMIN, Role.MANAGER)
    return render(
        request,
        "surveys/campaign_list.html",
        {
            "campaigns": selectors.campaign_list(Account.objects.visible_to(request.user)),
            "can_edit": can_edit,
        },
    )


@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _require_editor(request)
    campaign = None
    if pk is not None:
        campaign = get_object_or_404(Campaign.objects.select_related("survey"), pk=pk)
    if request.method == "POST":
        form = CampaignForm(request.POST, campaign=campaign)
        if form.is_valid():
            try:
                saved = services.campaign_save(
                    data=form.cleaned_data,
                    user=request.user,
                    campaign=campaign,
                    opened_at=form.cleaned_data.get("opened_at") or "",
                    key=once.key_of(request.POST) if campaign is None else "",
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc)
                    # the heading and Sending card: the campaign as saved now
                    campaign = Campaign.objects.select_related("survey").get(pk=campaign.pk)
            else:
                if saved is None:  # the first send's campaign was removed since
                    messages.info(request, "This form was sent already.")
                    return redirect("surveys:campaign-list")
                if getattr(saved, "created_again", False):
                    messages.info(
                        request,
                        f"“{saved.name}” was saved already (the form was sent twice): "
                        "one campaign.",
                    )
                return redirect(reverse("surveys:results") + f"?campaign={saved.pk}")
    else:
        initial = CampaignForm.initial_for(campaign) if campaign else None
        form = CampaignForm(initial=initial, campaign=campaign)
    context = {"form": form, "campaign": campaign}
    if campaign is not None and campaign.trigger != Campaign.Trigger.EVENT:
        now = timezone.now()
        context["send_refusal"] = services.campaign_send_refusal(campaign, now=now)
        context["last_round"] = services.campaign_last_round(campaign)
        context["due"] = campaign.next_run_at is not None and campaign.next_run_at <= now
        context["following"] = services.campaign_following_run(campaign, now)
    return render(request, "surveys/campaign_edit.html", context)


@require_POST
def campaign_send(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Send now": the campaign's next scheduled round, what happened in a message."""
    _require_editor(request)
    campaign = get_object_or_404(Campaign, pk=pk)
    try:
        summary = services.campaign_send_now(
            campaign_id=campaign.pk, round=request.POST.get("round")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, summary.describe(subject=f"Round {summary.round} of “{campaign.name}”")
        )
    return redirect("surveys:campaign-edit", pk=campaign.pk)


def _scope(request: HttpRequest):
    """(filter form, accounts in scope, campaign id, start, end) from the query string; the
    accounts, and the segments the form offers, are always within what the user may see.
    Callers check ``form.errors`` first: a filter that does not validate must not quietly
    widen the figures to every answer."""
    form = ResultsFilterForm(request.GET or None, user=request.user)
    accounts = Account.objects.visible_to(request.user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    if data.get("segment"):
        accounts = accounts.filter(segment=data["segment"])
    if data.get("account"):
        accounts = accounts.filter(pk=data["account"])
    campaign = data.get("campaign")
    return form, accounts, (campaign.pk if campaign else None), data.get("start"), data.get("end")


def _bars(figures: scoring.KindFigures) -> list[dict]:
    top = max((n for _, n in figures.distribution), default=0)
    return [
        {
            "score": s,
            "n": n,
            "pct": round(100 * n / top) if top else 0,
            "unhappy": scoring.is_unhappy(figures.kind, s),
        }
        for s, n in figures.distribution
    ]


@require_GET
def results(request: HttpRequest) -> HttpResponse:
    _require_role(request)
    form, accounts, campaign_id, start, end = _scope(request)
    if form.errors:  # the errors beside their fields, and no figures for another scope
        return render(request, "surveys/results.html", {"form": form}, status=400)
    voc = selectors.voice_of_customer(accounts, start=start, end=end, campaign_id=campaign_id)
    responses = selectors.counted_responses(accounts, start=start, end=end, campaign_id=campaign_id)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    listed = selectors.with_first_action(
        selectors.comments(responses, kind=data.get("kind", ""), group=data.get("group", ""))
    )
    page = Paginator(listed, COMMENTS_PER_PAGE).get_page(request.GET.get("page"))
    for r in page:
        r.unhappy = scoring.is_unhappy(r.kind, r.score)
        r.first_action = selectors.first_action_at(r)
    kinds = [
        {"figures": f, "bars": _bars(f), "label": f.kind.upper()} for f in voc["kinds"].values()
    ]
    query = request.GET.copy()
    query.pop("page", None)
    everyone = query.copy()
    everyone.pop("account", None)
    return render(
        request,
        "surveys/results.html",
        {
            "form": form,
            "voc": voc,
            "query_without_account": everyone.urlencode(),
            "kinds": kinds,
            "page": page,
            "query": query.urlencode(),
            "campaign": Campaign.objects.filter(pk=campaign_id).first() if campaign_id else None,
            "account": accounts.first() if data.get("account") else None,
        },
    )


@require_GET
def results_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The answers that count in the filtered scope, of the kind and group the comment
    filters name, one row each, with or without a comment (formulas neutralised by
    ``accounts.exports``)."""
    _require_role(request)
    form, accounts, campaign_id, start, end = _scope(request)
    if form.errors:
        problems = "; ".join(
            f"{'filters' if field == '__all__' else field}: {' '.join(errors)}"
            for field, errors in form.errors.items()
        )
        return HttpResponseBadRequest(
            f"No export: fix the filters first ({problems})", content_type="text/plain"
        )
    data = form.cleaned_data if form.is_bound else {}
    responses = (
        selectors.answers_of(
            selectors.counted_responses(accounts, start=start, end=end, campaign_id=campaign_id),
            kind=data.get("kind", ""),
            group=data.get("group", ""),
        )
        .select_related("account", "stakeholder", "campaign")
        .order_by("answered_at", "id")
    )
    header = [
        "Answered on",
        "Answered at (UTC)",
        "Account external ID",
        "Account",
        "Segment",
        "Stakeholder email",
        "Campaign",
        "Kind",
        "Score",
        "Unhappy",
        "Comment",
        "Source",
    ]
    rows = (
        [
            r.answered_at.astimezone(dt.UTC).date(),
            moment_cell(r.answered_at),
            r.account.external_id,
            r.account.name,
            r.account.segment,
            r.stakeholder.email if r.stakeholder else "",
            r.campaign.name if r.campaign else "",
            r.kind.upper(),
            r.score,
            "yes" if scoring.is_unhappy(r.kind, r.score) else "no",
            r.comment,
            r.source,
        ]
        for r in responses.iterator(chunk_size=2000)
    )
    # what, whose, which days: the last day is the one before the (exclusive) end; with no
    # end, the answers up to today
    last = end - dt.timedelta(days=1) if end else utc.today()
    name = export_filename(
        "survey responses",
        data.get("segment"),
        data.get("campaign").name if data.get("campaign") else "",
        data.get("kind"),
        data.get("group"),
        start,
        "to" if start else "until",
        last,
    )
    return csv_response(name, header, rows)
