"""The CSM workspace pages: the queue (home), the account page, the portfolio dashboard,
renewals. Function views: access check, parse input, one selector or service call, render
(STYLE.md §4-5). Admin screens are in ``workspace.manage``."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from accounts import once, utc
from accounts.days import parse_day
from accounts.exports import csv_response, export_filename
from accounts.models import Account, Role
from accounts.selectors import first_value_of
from accounts.services import activity_log, milestone_clear, milestone_editable_by, milestone_record
from config.announce import announce
from metrics import selectors as metrics_selectors
from metrics import services as metrics_services
from metrics import standings
from metrics.models import HealthSnapshot

from . import dashboard as dash
from . import integrations, selectors
from .forms import ActivityForm, FirstValueForm, HealthOverrideForm


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _get_account_for_user(request: HttpRequest, pk: int) -> Account:
    qs = Account.objects.select_related("owner", "parent")
    return get_object_or_404(qs.visible_to(request.user), pk=pk)  # 404, never 403-leak


def _queue_context(request: HttpRequest, *, renewals: bool = False) -> dict:
    user = request.user
    segments = selectors.segment_choices(user)
    owners = selectors.owner_choices(user)
    filters = selectors.queue_filters(
        request.GET,
        user=user,
        segments=segments,
        owners=owners,
        default_sort="renewal" if renewals else "priority",
        default_scope="team" if renewals else selectors.default_scope(user),
    )
    if renewals and filters.renewal is None:
        filters.renewal = selectors.RENEWALS_DUE_DAYS
    page = selectors.queue(user=user, filters=filters)
    rows = list(page.object_list)
    narrowed = filters.narrows(renewal_default=selectors.RENEWALS_DUE_DAYS if renewals else None)
    return {
        # an empty list says why: the reader's filters, or a book with no account yet (a new
        # installation; one more query, only then)
        "narrowed": narrowed,
        "book_empty": not rows and not narrowed and not Account.objects.visible_to(user).exists(),
        "filters": filters,
        "page": page,
        "rows": rows,
        "ctas": integrations.open_ctas_by_account(
            [r.account_id for r in rows], user=user, per_account=integrations.CTAS_PER_ACCOUNT
        ),
        "segments": segments,
        "owners": owners,
        "bands": selectors.BANDS,
        "lifecycles": Account.Lifecycle.choices,
        "windows": selectors.RENEWAL_WINDOWS,
        "sorts": {k: v[0] for k, v in selectors.SORTS.items()},
        "scopes": selectors.SCOPES if selectors.team_scope_allowed(user) else {},
        "renewals": renewals,
        "waiting_order": integrations.waiting_order(),
        "list_url": reverse("workspace:renewals" if renewals else "home"),
        # the whole list's days, not the first row's: the same under any sort, search or page
        "data_days": utc.data_days_text(
            page.data_days["first"],
            page.data_days["last"],
            settled=page.data_days["settled"],
            rescored=page.data_days["rescored"],
            today=selectors.today(),
        ),
    }


def _queue_response(request: HtmxHttpRequest, context: dict) -> HttpResponse:
    """The queue page, or its results for htmx. A filter or another page of results is
    announced ("12 accounts"): the count's heading is swapped in with the results, and a
    live region swapped in is not heard. The queue re-reading itself after a CTA action
    (triggered by #queue-results) says nothing: the action announced itself."""
    if not (request.htmx and request.htmx.target == "queue-results"):
        return render(request, "workspace/queue.html", context)
    response = render(request, "workspace/queue.html#queue-results", context)
    if request.htmx.trigger == "queue-results":
        return response
    paginator = context["page"].paginator
    count = f"{paginator.count:,}{'+' if paginator.capped else ''}"
    words = f"{count} account{'' if paginator.count == 1 else 's'}"
    if paginator.num_pages > 1:
        words += f", page {context['page'].number} of {paginator.num_pages:,}"
    return announce(response, words)


@require_GET
@vary_on_headers("HX-Request")
def queue(request: HtmxHttpRequest) -> HttpResponse:
    """Home: whom to call first, and why."""
    return _queue_response(request, _queue_context(request))


@require_GET
@vary_on_headers("HX-Request")
def renewals(request: HtmxHttpRequest) -> HttpResponse:
    """Renewals in the next 30/60/90/180 days, soonest first, with health and open CTAs."""
    return _queue_response(request, _queue_context(request, renewals=True))


@require_GET
@vary_on_headers("HX-Request")
def account_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    group = request.GET.get("kind", "")
    notices = []
    if group and group not in selectors.TIMELINE_GROUPS:
        notices.append(f"Unknown timeline filter “{group}” ignored.")
        group = ""
    if request.htmx and request.htmx.target == "timeline":
        page = integrations.timeline_with_sentiments(
            selectors.timeline_page(account=account, group=group, page=request.GET.get("page", 1))
        )
        return render(
            request,
            "workspace/account_detail.html#timeline",
            {"account": account, "timeline": page, "group": group, "groups": _groups()},
        )
    if request.htmx and request.htmx.target == "health-changes":
        context = {"account": account, **_chosen_changes(request, account)}
        return render(request, "workspace/account_detail.html#health-changes", context)
    context = _account_context(request, account, group=group, form=ActivityForm())
    context["notices"] = notices
    if "changes_from" in request.GET or "changes_to" in request.GET:
        context.update(_chosen_changes(request, account))
    return render(request, "workspace/account_detail.html", context)


CHANGES_FIELDS = {"from": ("changes_from", "From"), "to": ("changes_to", "To")}


def _chosen_changes(request: HttpRequest, account: Account) -> dict:
    """What changed between the two days the page's "what changed" form asks for
    (``changes_from``, ``changes_to``; either may be empty: a week before the later one, the
    newest), as ``metrics.selectors.health_changes`` says it (the API's words), or why the
    two cannot be compared, naming the field."""
    days: dict[str, dt.date | None] = {}
    asked = {}
    for name, (param, label) in CHANGES_FIELDS.items():
        text = request.GET.get(param, "").strip()
        asked[param] = text
        try:
            days[name] = parse_day(text) if text else None  # exactly YYYY-MM-DD
        except ValueError:
            error = f"{label}: enter a day as YYYY-MM-DD, got “{text}”."
            return {"changes": [], "changes_error": error, "changes_asked": asked}
    try:
        found = metrics_selectors.health_changes(
            account, before_on=days["from"], after_on=days["to"]
        )
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        label = CHANGES_FIELDS.get(field, (field, field.capitalize()))[1]
        error = f"{label}: {' '.join(problems)}."
        return {"changes": [], "changes_error": error, "changes_asked": asked}
    if found is None:
        return {"changes": [], "changes_asked": asked}
    return {
        "changes": found["changes"],
        "compared_with": found["from"].day,
        "compared_to": found["to"].day,
        "changes_asked": asked,
    }


def _account_context(request: HttpRequest, account: Account, *, group: str, form) -> dict:
    context = selectors.account_detail(
        account=account, timeline_group=group, timeline_page_no=request.GET.get("page", 1)
    )
    standing = selectors.account_standing(account)  # with the band lines of its score
    # the one day every "in N days" / "N days ago" of the page counts from: the day of the
    # data the header shows, as the health breakdown and the CTAs' reasons count
    data_day = standing.day if standing is not None else utc.today()
    context.update(
        {
            "account": account,
            "standing": standing,
            "priority_working": selectors.priority_working(standing),
            # a trend left empty across a model change says why; admins get the rescore link
            "trend_notes": selectors.trend_notes(
                standing, may_rescore=getattr(request.user, "role", None) == Role.ADMIN
            ),
            "data_day": data_day,
            "group": group,
            "groups": _groups(),
            "form": form,
            "ctas": integrations.open_ctas_by_account(
                [account.pk], user=request.user, with_steps=True
            ).get(account.pk, []),
            "cta_links": integrations.links(),
            "voice": integrations.account_voice(account, as_of=data_day),
            "timeline": integrations.timeline_with_sentiments(context["timeline"]),
            "overrides": selectors.overrides_shown(context["latest"]),
            "override_form": HealthOverrideForm(
                components=selectors.override_targets(context["latest"]),
                locked=selectors.override_locked(context["latest"]),
                initial={"until": utc.today() + dt.timedelta(days=30)},
            ),
            **_first_value_context(request, account, data_day=data_day),
            "key_features_note": _key_features_note(request.user, context["latest"]),
        }
    )
    return context


def _key_features_note(user, latest: HealthSnapshot | None) -> dict | None:
    """Where the health breakdown has a component scored without key-feature adoption
    because no key features are chosen (the ``KEY_FEATURES`` setting): which component,
    and whether this user is the admin who sets them (a link to the setting) or should
    ask one. None when key features are chosen or no component uses them."""
    if settings.KEY_FEATURES or latest is None:
        return None
    for c in latest.components:
        points = c.get("measure_points") or {}
        if "key_feature_adoption" in points and points["key_feature_adoption"] is None:
            return {
                "component": c["key"],
                "admin": getattr(user, "role", None) == Role.ADMIN,
                "url": reverse("workspace:metrics-doc") + "#settings-that-change-the-numbers",
            }
    return None


def _first_value_context(
    request: HttpRequest, account: Account, form=None, *, data_day: dt.date | None = None, **extra
) -> dict:
    """The account page's "First value" card: where the account stands, and the form for
    whoever may record it (the view decides, never the template). The days waiting count
    to ``data_day`` (the page's day of the data; read here when not given), as every count
    of days on the page; a day recorded since still shows, and the form's day is today's."""
    today = utc.today()
    if data_day is None:
        data_day = selectors.account_data_day(account)
    first_value = first_value_of(account, today=today, count_to=data_day)
    if form is None:
        recorded = first_value.milestone
        form = FirstValueForm(
            initial={
                "reached_on": recorded.reached_on if recorded else today,
                "note": recorded.note if recorded else "",
            }
        )
    return {
        "account": account,
        "first_value": first_value,
        "first_value_form": form,
        # the account came through _get_account_for_user: seen by this user
        "first_value_editable": milestone_editable_by(request.user, account, seen=True),
        "today": today,
        "data_day": data_day,
        **extra,
    }


def _groups() -> dict[str, str]:
    return {key: label for key, (label, _) in selectors.TIMELINE_GROUPS.items()}


@require_http_methods(["POST"])
def activity_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Log a note, call or meeting; the timeline hears about it (``activityLogged``)."""
    account = _get_account_for_user(request, pk)
    form = ActivityForm(request.POST)
    if form.is_valid():
        with transaction.atomic():  # the same form sent twice (a double click): one note
            first = once.claim(once.key_of(request.POST))
            if first:
                activity_log(
                    account=account,
                    author=request.user,
                    kind=form.cleaned_data["kind"],
                    subject=form.cleaned_data["subject"],
                    body=form.cleaned_data["body"],
                )
        done = (
            "Logged: it is on the timeline."
            if first
            else "Logged already (the form was sent twice): it is on the timeline once."
        )
        if not request.htmx:
            messages.success(request, done)
            return redirect("workspace:account", pk=account.pk)
        response = render(
            request,
            "workspace/account_detail.html#activity-form",
            {"account": account, "form": ActivityForm(), "saved": done},
        )
        response = announce(response, done)
        return trigger_client_event(response, "activityLogged", {"account_id": account.pk})
    # invalid: the fragment again with its errors, status 200 (htmx 2 swaps no 4xx)
    if not request.htmx:
        context = _account_context(request, account, group="", form=form)
        return render(request, "workspace/account_detail.html", context)
    return render(
        request, "workspace/account_detail.html#activity-form", {"account": account, "form": form}
    )


@require_http_methods(["POST"])
def first_value_update(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Record or change the account's first-value day, or clear it (the "clear" button);
    the timeline hears about it (``milestoneRecorded``). An invalid day re-renders the card
    with the error next to the field (status 200 for htmx, 400 without)."""
    account = _get_account_for_user(request, pk)
    if not milestone_editable_by(request.user, account, seen=True):
        raise PermissionDenied
    clearing = "clear" in request.POST
    form = FirstValueForm(request.POST)
    done = ""
    if clearing:
        milestone_clear(account=account, by=request.user, check_access=False)
        done, form = "Cleared.", None
    elif form.is_valid():
        try:
            milestone_record(
                account=account,
                reached_on=form.cleaned_data["reached_on"],
                note=form.cleaned_data["note"],
                by=request.user,
                check_access=False,  # checked above
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            done = "Saved: it is on the timeline."
            since, day = account.customer_since, form.cleaned_data["reached_on"]
            if since and day < since:  # allowed on purpose: a pilot can reach value first
                done += (
                    f" {utc.day_text(day)} is before becoming a customer "
                    f"({utc.day_text(since)}): counts as 0 days to first value."
                )
            form = None
    if not request.htmx:
        if done:
            messages.success(request, f"First value: {done}")
            return redirect("workspace:account", pk=account.pk)
        context = _account_context(request, account, group="", form=ActivityForm())
        context.update(
            _first_value_context(request, account, form=form, data_day=context["data_day"])
        )
        return render(request, "workspace/account_detail.html", context, status=400)
    response = render(
        request,
        "workspace/account_detail.html#first-value",
        _first_value_context(request, account, form=form, first_value_saved=done),
    )
    if done:
        response = announce(response, f"First value {done[:1].lower()}{done[1:]}")
        return trigger_client_event(response, "milestoneRecorded", {"account_id": account.pk})
    return response


def _add_service_errors(form, errors: dict[str, list[str]], *, names: dict[str, str]) -> None:
    """A service's errors on ``form``: each on its field (``names`` maps the service's
    argument to the form's field), or the whole form's when none matches; a field with an
    error of the form's own keeps that one alone."""
    for field, messages_ in errors.items():
        field = names.get(field, field)
        if field in form.fields:
            if field not in form.errors:
                form.add_error(field, messages_)
        else:
            form.add_error(None, messages_)


@require_http_methods(["POST"])
def health_override_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Override the account's health (or one component) until a day, with a reason: the row
    is the audit record, and today's score shows it at once."""
    account = _get_account_for_user(request, pk)
    latest = HealthSnapshot.objects.filter(account=account).select_related("model_version")
    last = latest.order_by("-day").first()
    form = HealthOverrideForm(
        request.POST,
        components=selectors.override_targets(last),
        locked=selectors.override_locked(last),
    )
    valid = form.is_valid()
    d = form.cleaned_data
    values = {
        "reason": d.get("reason") or "",
        # "until" is the last day in force: the override ends at the next midnight (UTC)
        "expires_at": (
            dt.datetime.combine(d["until"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            if d.get("until")
            else None
        ),
        "score": d.get("score"),
        "band": d.get("band") or "",
        "component": d.get("component") or "",
    }
    # the service's checks too, so every field's problem shows in one round; a field the
    # form already refused keeps the form's words
    problems = metrics_services.health_override_problems(account=account, **values)
    _add_service_errors(form, problems, names={"expires_at": "until"})
    if valid and not problems:
        try:
            with transaction.atomic():  # the same form sent twice (a double click): one
                first = once.claim(once.key_of(request.POST))
                if first:
                    metrics_services.health_override_create(
                        account=account, created_by=request.user, **values
                    )
        except ValidationError as exc:  # the model changed meanwhile (a component locked)
            _add_service_errors(form, exc.message_dict, names={"expires_at": "until"})
        else:
            messages.success(
                request,
                "Health overridden: today's score is recomputed with it within a minute."
                if first
                else "This override was saved already (the form was sent twice): one override.",
            )
            # a fragment of its own: the browser would keep the form's (#override-form, so
            # that its errors open in view) and land on the emptied form, not the message
            return redirect(reverse("workspace:account", args=[account.pk]) + "#main")
    context = _account_context(request, account, group="", form=ActivityForm())
    context["override_form"] = form
    return render(request, "workspace/account_detail.html", context, status=400)


# --- dashboard -----------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    context = dash.dashboard_context(request.user, request.GET)
    if request.GET.get("format") == "csv":
        return csv_response(
            export_filename("kpis", context["scope"].label, context["period_last_day"]),
            dash.TILES_CSV_HEADER,
            dash.tiles_csv_rows(context),
        )
    context["north_star"] = integrations.north_star(request.user)
    template = "workspace/dashboard.html"
    if request.htmx and request.htmx.target == "dashboard-body":
        template += "#dashboard-body"
    return render(request, template, context)


@require_GET
@vary_on_headers("HX-Request")
def cohorts(request: HtmxHttpRequest) -> HttpResponse:
    """The dashboard's cohort heatmap, loaded after the page (htmx: the fragment); opened
    directly (the loading link, a bookmark), a page of its own with the navigation."""
    try:
        context = dash.cohorts_context(request.user, request.GET)
    except ValidationError as exc:
        context = {"cohorts": [], "errors": exc.messages}
    if request.htmx:
        return render(request, "workspace/_cohorts.html", context)
    query = request.GET.urlencode()
    context["back"] = reverse("workspace:dashboard") + (f"?{query}" if query else "")
    return render(request, "workspace/cohorts.html", context)


@require_GET
def drilldown(request: HtmxHttpRequest) -> HttpResponse:
    """The accounts behind a number of the dashboard (the page lists the largest, the CSV
    all of them)."""
    if request.GET.get("format") == "csv":
        context = dash.drilldown_context(request.user, request.GET, limit=None, name_rows=False)
        on = context["mrr_on"]
        when = (on,) if on else (context["start"], "to", context["end"] - dt.timedelta(days=1))
        return csv_response(
            export_filename(context["title"], context["scope"].label, *when),
            dash.drilldown_csv_header(context),
            dash.drilldown_csv_rows(context),
        )
    context = dash.drilldown_context(request.user, request.GET, limit=dash.DRILL_ROWS)
    return render(request, "workspace/drilldown.html", context)


# --- after an inline CTA action --------------------------------------------------------------


@require_http_methods(["POST"])
def standing_refresh(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Recompute one account's queue standing (after one of its CTAs changed); 204."""
    account = _get_account_for_user(request, pk)
    standings.account_standings_refresh(account_ids=[account.pk])
    return HttpResponse(status=204)


# --- "how is this computed?" ------------------------------------------------------------------


@require_GET
def metrics_doc(request: HttpRequest) -> HttpResponse:
    """docs/metrics.md of this repository, as a page with an anchor per heading."""
    from .docs import metrics_html

    return render(request, "workspace/metrics_doc.html", {"html": metrics_html()})
