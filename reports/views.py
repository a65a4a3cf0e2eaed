"""Pages: the targets editor and the scheduled reports (managers and admins; CSMs get 403),
the off-track list (managers and admins), the digest preference (everyone with a role) and
the digest's unsubscribe link (no sign-in: a signed token; GET asks, POST unsubscribes)."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from accounts import once, utc
from accounts.models import ChangeRecord, Role
from accounts.services import change_last, changes_recent

from . import catalog, services
from .forms import DigestForm, NotificationSettingsForm, ScheduledReportForm, TargetForm
from .models import DigestSubscription, KpiTarget, ScheduledReport


def _require_leader(request: HttpRequest) -> None:
    if request.user.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied("targets and reports are for managers and admins")


def _scope_sent(query) -> dict[str, str]:
    """The scope fields as a form's htmx refresh sends them (a target's, a report's)."""
    return {name: query.get(name, "") for name in ("scope_kind", "scope_key", "book_owner")}


def _owner_picker(request: HttpRequest) -> HttpResponse:
    """The scope changed in a target's form (htmx): the owner's list again, judged for the
    scope as sent (a new target's or one being edited: the page's fields are the truth)."""
    form = TargetForm(
        user=request.user,
        initial={**_scope_sent(request.GET), "owner": request.GET.get("owner", "")},
    )
    form.owner_judge()
    return render(request, "reports/_owner_picker.html", {"form": form})


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def targets(request: HttpRequest) -> HttpResponse:
    _require_leader(request)
    if request.method == "GET" and request.htmx:
        return _owner_picker(request)
    if request.method == "POST" and request.POST.get("action") == "defaults":
        if request.user.role != Role.ADMIN:
            raise PermissionDenied("the benchmark defaults are for all accounts: admins add them")
        created = services.targets_load_defaults()
        messages.success(request, f"{created} default target(s) added.")
        return redirect("reports:targets")
    form = TargetForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.target_save(form=form, user=request.user)
        messages.success(request, "Target saved.")
        return redirect("reports:targets")
    form.owner_judge()
    rows = list(KpiTarget.objects.select_related("owner"))
    scopes = services.scope_texts(rows)
    check = services.scope_check(request.user)
    for t in rows:
        t.scope_text = scopes[(t.scope_kind, t.scope_key)]
        # made before the rule, or by an admin: listed (no figures here), changed by admins
        t.locked = check(t.scope_kind, t.scope_key)
    # why some rows are read-only for this person, said once above the list, not on each row
    locked_reasons = Counter(t.locked for t in rows if t.locked)
    have = {t.kpi for t in rows if t.scope_kind == "all"}
    tiers = [
        (cadence, [k for k in catalog.KPIS.values() if k.tier == cadence])
        for cadence in catalog.CADENCES
    ]
    return render(
        request,
        "reports/targets.html",
        {
            "targets": rows,
            "form": form,
            "tiers": tiers,
            "without": [k for k in catalog.KPIS.values() if k.key not in have],
            "texts": {t.pk: services.target_text(t) for t in rows},
            "is_admin": request.user.role == Role.ADMIN,
            "removed": changes_recent(ChangeRecord.Subject.KPI_TARGET, limit=8),
            "locked_reasons": list(locked_reasons.items()),
        },
        status=400 if request.method == "POST" else 200,
    )


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def target_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_leader(request)
    target = KpiTarget.objects.filter(pk=pk).first()
    if target is None:
        return _target_gone(request, pk)
    locked = services.scope_check(request.user)(target.scope_kind, target.scope_key)
    if request.method == "GET" and request.htmx and locked is None:
        return _owner_picker(request)
    if locked is not None and request.method == "POST":
        raise PermissionDenied(f"only an admin can change a target of this scope: {locked}")
    if request.method == "POST" and request.POST.get("action") == "delete":
        if request.POST.get("confirm") != "1":  # asked first: the page again, with the question
            form = TargetForm(instance=target, user=request.user)
            form.owner_judge()
            return render(
                request,
                "reports/target_edit.html",
                {"form": form, "target": target, "locked": None, "confirm_remove": True},
            )
        if services.target_remove(target=target, by=request.user):
            messages.success(request, "Target removed.")
        else:
            messages.info(request, "This target was removed already.")
        return redirect("reports:targets")
    form = TargetForm(
        request.POST if request.method == "POST" else None, instance=target, user=request.user
    )
    if locked is not None:  # shown read-only, with why
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            services.target_save(form=form, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
            # the heading names the target as saved now, not as the refused form had it
            target = KpiTarget.objects.get(pk=pk)
        else:
            messages.success(request, "Target saved.")
            return redirect("reports:targets")
    form.owner_judge()
    return render(
        request,
        "reports/target_edit.html",
        {"form": form, "target": target, "locked": locked},
        status=400 if request.method == "POST" else 200,
    )


def _target_gone(request: HttpRequest, pk: int) -> HttpResponse:
    """A target removed since its page was opened (another admin, another tab): say which,
    by whom and when, on the targets page, instead of a bare 404. Nothing is written. A
    number that never was a target is still a 404."""
    change = change_last(ChangeRecord.Subject.KPI_TARGET, pk)
    if change is None or change.action != ChangeRecord.Action.REMOVED:
        raise Http404("no such target")
    who = f" by {change.by}" if change.by else ""
    removed = f"{change.name} was removed{who} at {utc.moment_text(change.at)} UTC"
    if request.method != "POST":
        messages.info(request, f"{removed}.")
    elif request.POST.get("action") == "delete":
        messages.info(request, f"This target was removed already: {removed}.")
    else:
        messages.error(
            request,
            f"{removed}, after you opened it. Your changes are not saved: "
            "if it is still wanted, add it again below.",
        )
    return redirect("reports:targets")


@require_GET
def off_track(request: HttpRequest) -> HttpResponse:
    _require_leader(request)
    return render(request, "reports/off_track.html", services.off_track(user=request.user))


@require_http_methods(["GET", "POST"])
def digest(request: HttpRequest) -> HttpResponse:
    if request.user.role is None:
        raise PermissionDenied("no role")
    sub = DigestSubscription.objects.filter(user=request.user).first()
    form = DigestForm(
        request.POST if request.method == "POST" else None,
        initial={"weekly": bool(sub and sub.weekly)},
    )
    if request.method == "POST" and form.is_valid():
        services.digest_subscribe(request.user, weekly=form.cleaned_data["weekly"])
        messages.success(
            request,
            "You will receive the weekly digest."
            if form.cleaned_data["weekly"]
            else "You will not receive the weekly digest.",
        )
        return redirect("reports:digest")
    return render(
        request,
        "reports/digest.html",
        {"form": form, "is_leader": services.is_leader(request.user)},
    )


@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The emails the signed-in person gets: the weekly digest and each kind of CTA email,
    one box each (the user menu's "Email settings")."""
    from playbooks import services as playbooks_services

    sub = DigestSubscription.objects.filter(user=request.user).first()
    initial = {"weekly": bool(sub and sub.weekly)}
    initial.update(
        (f"cta_{kind}", on)
        for kind, on in playbooks_services.cta_email_settings(request.user).items()
    )
    form = NotificationSettingsForm(
        request.POST if request.method == "POST" else None, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        services.notifications_save(request.user, form.cleaned_data)
        messages.success(request, "Email settings saved.")
        return redirect("reports:notifications")
    return render(
        request,
        "reports/notifications.html",
        {"form": form, "has_role": request.user.role is not None},
    )


TITLE = "Weekly digest"


@never_cache
@csrf_exempt  # the signed token is the authority, not a session (see the docstring)
@login_not_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (mail scanners follow links); POST unsubscribes. The mail
    program's one-click button (the digest's ``List-Unsubscribe-Post`` header, RFC 8058)
    POSTs here without a session or a CSRF token; no CSRF check is needed, since the POST
    acts on the user the signed token names, not on whoever is signed in, and only turns
    their digest off."""
    user = services.unsubscribe_user(token)
    if user is None:
        return render(
            request, "reports/unsubscribe.html", {"invalid": True, "title": TITLE}, status=404
        )
    if request.method == "POST":
        services.digest_subscribe(user, weekly=False)
        return render(
            request,
            "reports/unsubscribe.html",
            {"done": True, "email": user.email, "title": TITLE},
        )
    return render(request, "reports/unsubscribe.html", {"email": user.email, "title": TITLE})


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def scheduled_reports(request: HttpRequest) -> HttpResponse:
    _require_leader(request)
    if request.method == "GET" and request.htmx:
        # the scope changed in the form: the recipients' list again, judged for it
        form = ScheduledReportForm(
            user=request.user,
            initial={**_scope_sent(request.GET), "recipients": request.GET.getlist("recipients")},
        )
        form.recipients_judge()
        return render(request, "reports/scheduled.html#recipients-picker", {"form": form})
    check = services.scope_check(request.user)
    if request.method == "POST" and request.POST.get("action") == "delete":
        raw = request.POST.get("pk", "")
        report = ScheduledReport.objects.filter(pk=raw if raw.isdigit() else 0).first()
        if report is None:  # a second click on Remove, or a page open from before
            messages.info(request, "This report is not there any more: it was removed already.")
            return redirect("reports:scheduled")
        why = check(report.scope_kind, report.scope_key)
        if why is not None:
            raise PermissionDenied(f"only an admin can remove a report of this scope: {why}")
        if request.POST.get("confirm") != "1":  # asked first: the page again, with the question
            form = ScheduledReportForm(user=request.user)
            return _scheduled_page(request, form, check, confirm_remove=report)
        if services.scheduled_report_remove(report=report, by=request.user):
            messages.success(request, "Scheduled report removed.")
        else:
            messages.info(request, f"“{report.name}” was removed already.")
        return redirect("reports:scheduled")
    form = ScheduledReportForm(
        request.POST if request.method == "POST" else None, user=request.user
    )
    if request.method == "POST" and form.is_valid():
        report, new = services.scheduled_report_create(
            form=form, user=request.user, key=once.key_of(request.POST)
        )
        if new:
            messages.success(request, "Scheduled report saved.")
        elif report is None:  # the first send's report was removed since
            messages.info(request, "This form was sent already.")
        else:
            messages.info(
                request, f"“{report.name}” was saved already (the form was sent twice): one report."
            )
        return redirect("reports:scheduled")
    return _scheduled_page(request, form, check)


def _scheduled_page(request: HttpRequest, form, check, confirm_remove=None) -> HttpResponse:
    """The scheduled reports page: its list, the form (refused when sent, then a 400) and,
    after a Remove, the question whether to remove it (``confirm_remove``, the report)."""
    form.recipients_judge()
    reports = list(ScheduledReport.objects.prefetch_related("recipients"))
    scopes = services.scope_texts(reports)
    for r in reports:
        r.scope_text = scopes[(r.scope_kind, r.scope_key)]
        r.skipped_period_text = services.period_key_text(r.skipped_period)
        r.locked = check(r.scope_kind, r.scope_key)
    return render(
        request,
        "reports/scheduled.html",
        {
            "reports": reports,
            "form": form,
            "removed": changes_recent(ChangeRecord.Subject.SCHEDULED_REPORT, limit=8),
            "confirm_remove": confirm_remove,
        },
        status=400 if request.method == "POST" and confirm_remove is None else 200,
    )
