"""Admin screens: the health model editor (live preview, save, backfill with progress), users
and roles, and links to the other editors. Admins only: anyone else gets 403 (these pages
hold no customer data, so their existence is no secret)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import (
    HttpResponseClientRedirect,
    HttpResponseClientRefresh,
    trigger_client_event,
)

from accounts import services as account_services
from accounts.models import AccountLifecycle, ApiToken, ChangeRecord, Role, User
from accounts.selectors import api_token_list
from accounts.services import user_access_update
from config.announce import announce
from metrics import health, pipeline_words
from metrics import services as metrics_services
from metrics.models import HealthAssignmentRule, HealthModel, HealthModelVersion
from metrics.selectors import health_assignment_changes, health_rules
from metrics.services import (
    health_model_ensure_default,
    health_model_version_restorable,
    health_model_version_restore,
    health_rule_state,
    health_rule_words,
)

from . import integrations, selectors, services
from .forms import ApiTokenForm
from .health_forms import MEASURE_CHOICES, DefaultForm, ModelCopyForm, ModelDraft, RuleForm

BACKFILL_DAYS_MAX = 400


def _require_admin(request: HttpRequest) -> None:
    if getattr(request.user, "role", None) != Role.ADMIN:
        raise PermissionDenied("Admins only")


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    return render(request, "workspace/manage/index.html", {"links": integrations.links()})


# --- health models -------------------------------------------------------------------------


@require_GET
def health_models(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    health_model_ensure_default()
    models = list(HealthModel.objects.prefetch_related("versions", "rules"))
    rows = []
    for m in models:
        versions = list(m.versions.all())
        active = next((v for v in versions if v.active), None)
        rows.append(
            {
                "model": m,
                "active": active,
                "versions": len(versions),
                "scores": metrics_services.health_model_scope_words(m, rules=list(m.rules.all())),
                # scored as it is, but the account page shows the two as one: say so
                "twins": health.twin_names_words(active.components) if active else "",
            }
        )
    return render(request, "workspace/manage/health_models.html", {"rows": rows})


def _active_version(pk: int) -> HealthModelVersion:
    model = get_object_or_404(HealthModel, pk=pk)
    version = model.versions.select_related("model").filter(active=True).first()
    if version is None:
        raise PermissionDenied("This model has no active version to edit")  # pragma: no cover
    return version


def _rescore_days(raw: str, *, least: int) -> tuple[int, list[str]]:
    """The number of past days to rescore, typed as ``raw``: a whole number from ``least``
    to ``BACKFILL_DAYS_MAX``, else the one message that says so. The editor's field allows
    0 (save without rescoring, also when left empty); the rescore forms start at 1."""
    raw = raw.strip()
    if raw == "" and least == 0:
        return 0, []
    if raw.isdigit() and least <= int(raw) <= BACKFILL_DAYS_MAX:
        return int(raw), []
    got = f", got “{raw[:20]}”" if raw else ""
    return 30, [f"a whole number of days from {least} to {BACKFILL_DAYS_MAX}{got}"]


def _backfill_days(data) -> tuple[int, list[str]]:
    """The editor's "Rescore the last … days after saving": 0 (or empty) rescores nothing."""
    return _rescore_days(data.get("backfill_days") or "", least=0)


def _editor(request, version, draft: ModelDraft, **extra) -> HttpResponse:
    """The editor page, or with htmx only its form (``#draft-form``), which then asks the
    preview to follow (``healthDraftChanged`` once swapped in)."""
    context = {
        "version": version,
        "model": version.model,
        "draft": draft,
        "measure_choices": MEASURE_CHOICES,
        "notes": request.POST.get("notes", "")[:2000],
        "backfill_days": request.POST.get("backfill_days", "30")[:10],
        "backfill_max": BACKFILL_DAYS_MAX,
        **extra,
    }
    if request.htmx:
        response = render(request, "workspace/manage/health_model_edit.html#draft-form", context)
        return trigger_client_event(response, "healthDraftChanged", after="settle")
    context["versions"] = list(version.model.versions.select_related("created_by")[:10])
    # the header's "Now scoring …" (a model has any number of rules), full page only
    context["rule_words"] = metrics_services.health_model_scope_words(version.model)
    return render(request, "workspace/manage/health_model_edit.html", context)


DRAFT_FIELDS = ("green_min", "yellow_min")


def _same_number(a: str, b: str) -> bool:
    """ "35" and "35.0" are the same weight; text that is no number compares as text."""
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def _review(version: HealthModelVersion, params) -> tuple[ModelDraft, dict[str, Any]]:
    """The active version's draft with the weights and bands named in the URL
    (``?weight_<key>=…&green_min=…&yellow_min=…&notes=…``), e.g. the backtest's suggested
    weights (``&suggested_for=<version id>``), and what the page says of them: a draft to
    preview and confirm; nothing is saved until the admin presses Save."""
    draft = ModelDraft.from_version(version)
    changes, unknown = [], []
    by_key = {c.key: c for c in draft.components}
    for name, raw in params.items():
        if not name.startswith("weight_"):
            continue
        comp = by_key.get(name[7:])
        if comp is None:
            unknown.append(name[7:])
            continue
        text = str(raw)[:100]
        if not _same_number(text, comp.weight):
            changes.append({"label": comp.label, "now": comp.weight, "draft": text})
            comp.weight = text
    for name, label in (("green_min", "green from"), ("yellow_min", "yellow from")):
        if name in params and not _same_number(str(params[name])[:100], getattr(draft, name)):
            changes.append({"label": label, "now": getattr(draft, name), "draft": params[name]})
            setattr(draft, name, str(params[name])[:100])
    suggested_for = None
    raw = params.get("suggested_for", "")
    if raw.isdigit() and int(raw) != version.pk:
        suggested_for = version.model.versions.filter(pk=int(raw)).first()
    review = {
        "from_backtest": bool(raw),
        "suggested_for": suggested_for,
        "changes": changes,
        "unknown": [
            f"{version} has no component {', '.join(sorted(unknown))}: "
            "the weights suggested for it are left out of the draft."
        ]
        if unknown
        else [],
    }
    return draft, review


@require_http_methods(["GET", "POST"])
def health_model_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor: each component's name, weight, lock and measures with their mappings,
    and the bands. GET with weights or bands in the URL opens the active version's draft
    with them (``_review``: the backtest's suggested weights). POST with ``op=save`` saves
    the draft as a new version (a draft based on an older version than the active one is
    refused by the service) and shows the versions page, or the backfill's progress when
    days are to be rescored; any other ``op`` adds or removes a part of the draft and
    shows it again."""
    _require_admin(request)
    version = _active_version(pk)
    if request.method == "GET":
        if any(k.startswith("weight_") or k in DRAFT_FIELDS for k in request.GET):
            draft, review = _review(version, request.GET)
            notes = request.GET.get("notes", "")[:2000]
            return _editor(request, version, draft, review=review, notes=notes)
        return _editor(request, version, ModelDraft.from_version(version))
    draft = ModelDraft.from_data(request.POST, based_on=version.version)
    op = request.POST.get("op", "save")
    if op != "save":
        # what changed is said to screen readers (the page's live region) with the htmx
        # answer; a page loaded without htmx has its focus moved by autofocus alone
        words = draft.apply(op)
        response = _editor(request, version, draft)
        return announce(response, words) if words and request.htmx else response
    days, day_errors = _backfill_days(request.POST)
    valid = draft.is_valid()
    if valid and not day_errors:
        try:
            new = services.health_model_draft_save(
                model=version.model,
                based_on=draft.based_on,
                spec=draft.spec,
                user=request.user,
                notes=request.POST.get("notes", "")[:2000],
            )
        except ValidationError as exc:
            draft.add_errors(exc.messages)
        else:
            # the versions page says what happens to the snapshots already recorded and
            # offers to rescore past days; with days to rescore, their progress instead
            url = reverse("workspace:health-model-versions", args=[pk]) + f"?changed={new.pk}"
            if days:
                url = _rescore_url(request, days)
                messages.success(
                    request,
                    f"Saved as {new}. Days not rescored keep the scores of the versions "
                    "that made them.",
                )
            else:
                messages.success(request, f"Saved as {new}.")
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return redirect(url)
    if day_errors:
        draft.summary.append(("backfill_days", f"rescore: {day_errors[0]}"))
    return _editor(request, version, draft, day_errors=day_errors, tried=True)


def _to_history(pk: int, *, changed: HealthModelVersion | None = None) -> HttpResponse:
    url = reverse("workspace:health-model-versions", args=[pk])
    return redirect(url + (f"?changed={changed.pk}" if changed else ""))


@require_POST
def health_model_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The draft's band distribution and backtest AUC beside the current version's."""
    _require_admin(request)
    version = _active_version(pk)
    draft = ModelDraft.from_data(request.POST, based_on=version.version)
    preview = None
    if draft.is_valid():
        preview = services.health_model_preview(version=version, spec=draft.spec)
    return render(
        request,
        "workspace/manage/_health_preview.html",
        {
            "preview": preview,
            "draft": draft,
            "version": version,
            # the restore confirmation previews an earlier version: its column says which
            "draft_label": request.POST.get("draft_label", "")[:20] or "Draft",
        },
    )


def _history(
    request: HttpRequest,
    model: HealthModel,
    *,
    confirm: HealthModelVersion | None = None,
    restore_errors: Sequence[str] = (),
) -> HttpResponse:
    history = selectors.health_model_history(model)
    raw = request.GET.get("changed", "")
    changed = next((v for v in history["versions"] if str(v.pk) == raw and v.active), None)
    diff = restore_data = None
    if confirm is not None and history["active"] is not None:
        diff = selectors.health_version_diff(history["active"], confirm)
        # the preview scores the restored version as the editor's form would post it
        restore_data = ModelDraft.from_version(confirm).as_data()
    context = {
        "model": model,
        **history,
        # a model no rule names (and not the default) scores no account: a new version of
        # it changes no score, so there is nothing to rescore, only a rule to give it
        "scores_nothing": changed is not None and not model.is_default and not model.rules.exists(),
        "restore_errors": list(restore_errors),
        "confirm": confirm,
        "diff": diff,
        "restore_data": restore_data,
        "changed": changed,
        "backfill_days": 30,
        "backfill_days_max": BACKFILL_DAYS_MAX,
    }
    return render(request, "workspace/manage/health_model_versions.html", context)


@require_GET
def health_model_versions(request: HttpRequest, pk: int) -> HttpResponse:
    """Every version of a model (weights, bands, who and why), the active one marked.
    ``?restore=<version id>`` adds the confirmation of making that version score again;
    ``?changed=<version id>`` (after a save or restore, while that version is active) says
    what happens to the snapshots already recorded and offers to rescore past days."""
    _require_admin(request)
    model = get_object_or_404(HealthModel, pk=pk)
    raw = request.GET.get("restore")
    if raw is None:
        return _history(request, model)
    try:
        old = health_model_version_restorable(
            model=model, version_id=int(raw) if raw.isdigit() else None
        )
    except ValidationError as exc:
        return _history(request, model, restore_errors=exc.messages)
    return _history(request, model, confirm=old)


@require_POST
def health_model_restore(request: HttpRequest, pk: int) -> HttpResponse:
    """Restore the version named by ``version`` (its id): a new version copying it becomes
    active (``metrics.services.health_model_version_restore``). Refused, with the reason
    and nothing written, for a version that is unknown, of another model, active now or
    with the active version's rules (``health_model_version_restorable``)."""
    _require_admin(request)
    model = get_object_or_404(HealthModel, pk=pk)
    raw = request.POST.get("version", "")
    try:
        new = health_model_version_restore(
            model=model,
            version_id=int(raw) if raw.isdigit() else None,
            restored_by=request.user,
            notes=request.POST.get("notes", "")[:2000],
        )
    except ValidationError as exc:
        return _history(request, model, restore_errors=exc.messages)
    messages.success(request, f"Restored v{new.restored_from.version} as {new}.")
    return _to_history(pk, changed=new)


@require_POST
def backfill_start(request: HttpRequest) -> HttpResponse:
    """Rescore the last ``days`` days with the versions active now, then show the progress
    (the history page's offer after a save or restore)."""
    _require_admin(request)
    days, errors = _rescore_days(request.POST.get("days", ""), least=1)
    back = request.POST.get("model", "")
    if errors:
        messages.error(request, f"Days to rescore: {errors[0]}.")
        if back.isdigit() and HealthModel.objects.filter(pk=int(back)).exists():
            return _to_history(int(back))
        return redirect("workspace:health-models")
    return redirect(_rescore_url(request, days))


def _rescore_url(request: HttpRequest, days: int) -> str:
    """Start rescoring the last ``days`` days (days already checked by the caller's form)
    and return the page of its progress: the editor's save, the versions page's offer and
    the assignments page's form all start a rescoring here."""
    job = services.backfill_start(days=days, user=request.user)
    return reverse("workspace:backfill-status") + f"?job={job}"


# --- which model scores which accounts ------------------------------------------------------


def _assignments(
    request, *, row: str = "", errors: dict[str, list[str]] | None = None, posted=None
) -> HttpResponse:
    """The assignments page. After a refused form: ``row`` says which form (``rule-<pk>``,
    ``rule-default``, ``rule-new``, ``model-new``, ``rescore``), ``errors`` why, by field
    (``__all__`` for the form as a whole), ``posted`` what was sent (shown again)."""
    data = health_rules()
    posted = posted or {}
    errors = errors or {}
    scoring = [m for m in data["models"] if m.active_version is not None]

    def shown(form_row: str, **initial) -> dict:
        """The values a form shows: as posted when it was refused, else ``initial``; with
        its errors by field."""
        if form_row == row and posted:
            values = {k: str(posted.get(k, "")) for k in initial}
        else:
            values = {k: "" if v is None else str(v) for k, v in initial.items()}
        values["errors"] = errors if form_row == row else {}
        values["general"] = values["errors"].get("__all__", [])  # not a field's
        return values

    for r in data["rules"]:
        # seen: the rule (or the default) as shown; a refused form keeps the one it was sent
        # with, so its next Save is refused too until the page is reloaded
        seen = health_rule_state(r.rule) if r.rule else r.model.pk
        r.form = shown(r.key, segment=r.segment, lifecycle=r.lifecycle, model=r.model.pk, seen=seen)
        # a model without an active version stays listed for its own rule
        r.model_choices = scoring if r.active_version is not None else [r.model, *scoring]
    shown_rows = {r.key for r in data["rules"]} | {"rule-new", "model-new", "rescore"}
    context = {
        **data,
        # a refused change of a rule gone meanwhile: no row to show the errors at
        "page_errors": [m for ms in errors.values() for m in ms] if row not in shown_rows else [],
        "scoring_models": scoring,
        "stages": AccountLifecycle.choices,
        "new_rule": shown("rule-new", segment="", lifecycle="", model=""),
        "copy": shown("model-new", name="", source=""),
        "rescore": shown("rescore", backfill_days=30),
        "backfill_max": BACKFILL_DAYS_MAX,
        "changes": health_assignment_changes(limit=8),
    }
    return render(request, "workspace/manage/health_assignments.html", context)


@require_GET
def health_assignments(request: HttpRequest) -> HttpResponse:
    """Which model scores which accounts: the rules in the order an account meets them,
    each with the accounts it covers now; add, change or remove a rule, move the default;
    the recent changes; a new model as a copy of another; rescore past days."""
    _require_admin(request)
    return _assignments(request)


def _field_errors(form, exc: ValidationError | None = None) -> dict[str, list[str]]:
    """A refused form's errors by field, the form's own and the service's."""
    errors: dict[str, list[str]] = {k: list(v) for k, v in form.errors.items()}
    if exc is not None:
        found = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        for field, messages_ in found.items():
            errors.setdefault(field, []).extend(messages_)
    return errors


@require_POST
def health_rule_save(request: HttpRequest) -> HttpResponse:
    """Add a rule (``rule`` blank) or change one (``rule``: its id)."""
    _require_admin(request)
    form = RuleForm(request.POST)
    raw = request.POST.get("rule", "")
    row = f"rule-{raw}" if raw.isdigit() else "rule-new"
    if not form.is_valid():
        return _assignments(request, row=row, errors=_field_errors(form), posted=request.POST)
    data = form.cleaned_data
    scope = {"model": data["model"], "segment": data["segment"], "lifecycle": data["lifecycle"]}
    try:
        if data["rule"] is None:
            rule = metrics_services.health_rule_add(**scope, by=request.user)
        else:
            rule = metrics_services.health_rule_change(
                rule=data["rule"], **scope, by=request.user, seen=request.POST.get("seen")
            )
    except ValidationError as exc:
        return _assignments(request, row=row, errors=_field_errors(form, exc), posted=request.POST)
    words = health_rule_words(segment=rule.segment, lifecycle=rule.lifecycle)
    messages.success(request, f"Saved: {words} → {rule.model}. {TAKES_EFFECT}")
    return redirect("workspace:health-assignments")


TAKES_EFFECT = (
    "It applies from the next nightly run (02:15 UTC), to an account as soon as its new data "
    "rescores it, and to past days once you rescore them."
)


@require_POST
def health_default_save(request: HttpRequest) -> HttpResponse:
    """Move the default (every account no rule matches) to another model."""
    _require_admin(request)
    form = DefaultForm(request.POST)
    exc = None
    if form.is_valid():
        try:
            model = metrics_services.health_default_move(
                model=form.cleaned_data["model"], by=request.user, seen=request.POST.get("seen")
            )
        except ValidationError as error:
            exc = error
        else:
            messages.success(request, f"Saved: every other account → {model}. {TAKES_EFFECT}")
            return redirect("workspace:health-assignments")
    return _assignments(
        request, row="rule-default", errors=_field_errors(form, exc), posted=request.POST
    )


@require_POST
def health_rule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove rule ``pk``: its accounts go to the next rule that matches them."""
    _require_admin(request)
    rule = get_object_or_404(HealthAssignmentRule, pk=pk)
    try:
        words = metrics_services.health_rule_remove(rule=rule, by=request.user)
    except ValidationError as exc:
        return _assignments(request, row=f"rule-{pk}", errors={"__all__": exc.messages})
    messages.success(
        request,
        f"Removed the rule {words}: those accounts go to the next rule that matches them. "
        f"{TAKES_EFFECT}",
    )
    return redirect("workspace:health-assignments")


@require_POST
def health_model_copy(request: HttpRequest) -> HttpResponse:
    """A new model, applying to no account yet, as a copy of another's active version."""
    _require_admin(request)
    form = ModelCopyForm(request.POST)
    exc = None
    if form.is_valid():
        try:
            model = metrics_services.health_model_copy(
                source=form.cleaned_data["source"],
                name=form.cleaned_data["name"],
                created_by=request.user,
            )
        except ValidationError as error:
            exc = error
        else:
            messages.success(
                request,
                f"Created {model}, a copy of {form.cleaned_data['source']}. It scores no "
                "account yet: edit its components, then give it a rule.",
            )
            return redirect("workspace:health-assignments")
    return _assignments(
        request, row="model-new", errors=_field_errors(form, exc), posted=request.POST
    )


@require_POST
def health_rescore(request: HttpRequest) -> HttpResponse:
    """Rescore the last ``days`` days with the rules and models in force now (the backfill
    of the editor), then show its progress."""
    _require_admin(request)
    days, errors = _rescore_days(request.POST.get("backfill_days") or "", least=1)
    if errors:
        return _assignments(
            request, row="rescore", errors={"backfill_days": errors}, posted=request.POST
        )
    return redirect(_rescore_url(request, days))


@require_GET
def backfill_status(request: HttpRequest) -> HttpResponse:
    """A backfill's progress (``?job=<id>``); while it runs, a fragment polls. Without an
    id: the rescorings of the last day, each with its state and a link."""
    _require_admin(request)
    job = request.GET.get("job", "")[:64]
    if not job:
        return render(
            request, "workspace/manage/backfill_list.html", {"jobs": services.backfill_recent()}
        )
    progress = services.backfill_progress(job)
    running = progress is not None and progress.get("status") in ("queued", "waiting", "running")
    if request.htmx:
        if not running:
            return HttpResponseClientRefresh()
        return render(
            request, "workspace/manage/_backfill_progress.html", {"job": job, "progress": progress}
        )
    return render(
        request,
        "workspace/manage/backfill.html",
        {"job": job, "progress": progress, "running": running},
    )


# --- the nightly pipeline ------------------------------------------------------------------


@require_GET
def pipeline_runs(request: HttpRequest) -> HttpResponse:
    """The nightly pipeline's recent runs, each step in words, and whether the book's
    scores are as fresh as they should be."""
    _require_admin(request)
    return render(
        request,
        "workspace/manage/pipeline_runs.html",
        {"runs": pipeline_words.runs_recent(), "fresh": pipeline_words.freshness()},
    )


# --- users and roles -----------------------------------------------------------------------


@require_GET
def users(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    people = list(
        User.objects.prefetch_related("groups")
        .select_related("manager")
        .order_by("-is_active", "email")
    )
    managers = [u for u in people if u.role in (Role.MANAGER, Role.ADMIN) and u.is_active]
    return render(
        request,
        "workspace/manage/users.html",
        {
            "people": people,
            "managers": managers,
            "roles": Role.choices,
            "changes": account_services.changes_recent(ChangeRecord.Subject.USER),
        },
    )


@require_POST
def user_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Change one user's role, manager and active flag; re-renders their row."""
    _require_admin(request)
    person = get_object_or_404(User.objects.prefetch_related("groups"), pk=pk)
    errors: list[str] = []
    role = request.POST.get("role", "")
    manager_id = request.POST.get("manager", "")
    active = request.POST.get("is_active") == "on"
    manager = None
    if role not in Role.values and role != "":
        errors.append(f"Unknown role “{role}”.")
    if manager_id:
        manager = User.objects.filter(pk=manager_id if manager_id.isdigit() else 0).first()
        if manager is None:
            errors.append(f"Unknown manager “{manager_id}”.")
    if not errors:
        try:
            person = user_access_update(
                user=person,
                role=role or None,
                manager=manager,
                is_active=active,
                by=request.user,
                seen=request.POST.get("seen"),
            )
        except ValidationError as exc:
            errors.extend(exc.messages)
        # the row as saved now (after a refusal too: it shows the other admin's change)
        person = User.objects.prefetch_related("groups").select_related("manager").get(pk=pk)
    if not request.htmx:
        if errors:
            messages.error(request, f"{person}: {' '.join(errors)}")
        else:
            messages.success(request, f"Saved {person}.")
        return redirect("workspace:users")
    managers = list(
        User.objects.filter(is_active=True, groups__name__in=[Role.MANAGER, Role.ADMIN]).distinct()
    )
    response = render(
        request,
        "workspace/manage/users.html#user-row",
        {
            "person": person,
            "managers": managers,
            "roles": Role.choices,
            "row_errors": errors,
            "saved": not errors,
        },
    )
    # the trail below the table gets the change just made, or, on a refusal, the other
    # admin's change the refusal names (it said "No role … changed here yet" under it)
    changes = account_services.changes_recent(ChangeRecord.Subject.USER)
    response.content += render(
        request,
        "workspace/manage/users.html#recent-changes",
        {"changes": changes, "oob": True},
    ).content
    if errors:
        return response
    return announce(response, f"Saved {person}.")


# --- API tokens ----------------------------------------------------------------------------


def _api_tokens(
    request: HttpRequest,
    *,
    form: ApiTokenForm | None = None,
    issued: tuple[ApiToken, str] | None = None,
    confirm: ApiToken | None = None,
    revoke_errors: Sequence[str] = (),
) -> HttpResponse:
    """The tokens page. ``issued``: the token just created with its clear key, shown this
    once; the response is never stored (``no-store``) and the key goes nowhere else."""
    context = {
        "tokens": list(api_token_list()),
        "form": form or ApiTokenForm(),
        "issued": issued,
        "confirm": confirm,
        "revoke_errors": list(revoke_errors),
        "admin_role": Role.ADMIN,
        "manager_role": Role.MANAGER,
    }
    response = render(request, "workspace/manage/api_tokens.html", context)
    if issued is not None:
        response["Cache-Control"] = "no-store"
    return response


@require_GET
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Every API token (name, user, scope, created, last used, revoked) and the form for a
    new one. ``?revoke=<id>`` adds the confirmation of revoking that token."""
    _require_admin(request)
    raw = request.GET.get("revoke")
    if raw is None:
        return _api_tokens(request)
    token = ApiToken.objects.select_related("user").filter(pk=raw if raw.isdigit() else 0).first()
    if token is None:
        return _api_tokens(request, revoke_errors=[f"No token with id “{raw[:20]}”."])
    if token.revoked_at is not None:
        return _api_tokens(request, revoke_errors=[f"“{token.name}” is revoked already."])
    return _api_tokens(request, confirm=token)


@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    """Issue a token and show its key once, on this response (not after a redirect: the key
    would have to wait in the session). A refused form comes back with its errors by field
    and nothing written."""
    _require_admin(request)
    form = ApiTokenForm(request.POST)
    if form.is_valid() and not _first_sending(form.cleaned_data["once"]):
        messages.error(
            request,
            "This form was sent already and its token created: its key was shown once and "
            "is not shown again. To make another token, fill in the form anew.",
        )
        return _api_tokens(request)
    if form.is_valid():
        try:
            issued = account_services.api_token_issue(
                user=form.cleaned_data["user"],
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)  # a dict by field: each lands at its field
        else:
            return _api_tokens(request, issued=issued)
    return _api_tokens(request, form=form)


def _first_sending(once) -> bool:
    """Whether the token form with this ``once`` value comes for the first time (kept a
    day). A form without one (an older page) counts as new."""
    if once is None:
        return True
    return cache.add(f"api-token-form:{once}", True, 24 * 3600)


@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke token ``pk`` (the confirmation is ``?revoke=<id>`` on the tokens page)."""
    _require_admin(request)
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
    try:
        account_services.api_token_revoke(token=token, by=request.user)
    except ValidationError as exc:
        return _api_tokens(request, revoke_errors=exc.messages)
    messages.success(
        request, f"Revoked “{token.name}” ({token.user.email}): calls with its key now get 401."
    )
    return redirect("workspace:api-tokens")
