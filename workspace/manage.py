"""Admin screens: the health model editor (live preview, save, backfill with progress), users
and roles, and links to the other editors. Admins only: anyone else gets 403 (these pages
hold no customer data, so their existence is no secret)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts.models import Role, User
from accounts.services import user_access_update
from metrics.models import HealthModel, HealthModelVersion
from metrics.services import (
    health_model_ensure_default,
    health_model_version_restorable,
    health_model_version_restore,
)

from . import integrations, selectors, services

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
    models = list(HealthModel.objects.prefetch_related("versions"))
    rows = []
    for m in models:
        versions = list(m.versions.all())
        rows.append(
            {
                "model": m,
                "active": next((v for v in versions if v.active), None),
                "versions": len(versions),
            }
        )
    return render(request, "workspace/manage/health_models.html", {"rows": rows})


def _active_version(pk: int) -> HealthModelVersion:
    model = get_object_or_404(HealthModel, pk=pk)
    version = model.versions.select_related("model").filter(active=True).first()
    if version is None:
        raise PermissionDenied("This model has no active version to edit")  # pragma: no cover
    return version


def _read_draft(version: HealthModelVersion, data) -> tuple[dict, float, float, dict, int]:
    """Weights, thresholds and backfill days from the form; errors by field name."""
    errors: dict[str, list[str]] = {}
    weights: dict[str, float] = {}

    def number(name: str, default: float) -> float:
        raw = (data.get(name) or "").strip()
        if raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            errors[name] = [f"“{raw}” is not a number"]
            return default
        if value != value or value in (float("inf"), float("-inf")):
            errors[name] = ["must be a finite number"]
            return default
        return value

    for c in version.components:
        weights[c["key"]] = number(f"weight_{c['key']}", float(c["weight"]))
    green = number("green_min", version.green_min)
    yellow = number("yellow_min", version.yellow_min)
    days = int(number("backfill_days", 30)) if not errors.get("backfill_days") else 30
    if not 0 <= days <= BACKFILL_DAYS_MAX:
        errors["backfill_days"] = [f"must be between 0 and {BACKFILL_DAYS_MAX}"]
    for key, msgs in services.check_draft(version, weights, green, yellow).items():
        errors.setdefault(key, []).extend(msgs)
    return weights, green, yellow, errors, days


def _editor_context(version, weights, green, yellow, errors, days, notes="") -> dict:
    return {
        "version": version,
        "model": version.model,
        "fields": [
            {
                "key": c["key"],
                "label": c.get("label", c["key"]),
                "weight": weights.get(c["key"], c["weight"]),
                "current": c["weight"],
                "changed": weights.get(c["key"], c["weight"]) != c["weight"],
                "errors": errors.get(f"weight_{c['key']}", []),
            }
            for c in version.components
        ],
        "green_min": green,
        "yellow_min": yellow,
        "backfill_days": days,
        "notes": notes,
        "errors": errors,
        "field_errors": any(key != "form" for key in errors),
    }


DRAFT_FIELDS = ("green_min", "yellow_min")


def _review_context(version: HealthModelVersion, params) -> dict:
    """The editor filled from the URL (``?weight_<key>=…&green_min=…&notes=…``), e.g. the
    backtest's suggested weights (``&suggested_for=<version id>``): a draft to preview and
    confirm; nothing is saved until the admin presses Save."""
    weights, green, yellow, errors, days = _read_draft(version, params)
    keys = {c["key"] for c in version.components}
    unknown = sorted(k[7:] for k in params if k.startswith("weight_") and k[7:] not in keys)
    if unknown:
        errors.setdefault("form", []).append(
            f"{version} has no component {', '.join(unknown)}: "
            "the weights suggested for it are left out of the draft."
        )
    context = _editor_context(version, weights, green, yellow, errors, days)
    context["notes"] = params.get("notes", "")[:2000]
    suggested_for = None
    raw = params.get("suggested_for", "")
    if raw.isdigit() and int(raw) != version.pk:
        suggested_for = version.model.versions.filter(pk=int(raw)).first()
    context["review"] = {
        "from_backtest": bool(raw),
        "suggested_for": suggested_for,
        "preview_now": not errors,
    }
    return context


@require_http_methods(["GET", "POST"])
def health_model_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor; POST saves the draft as a new version (and starts the backfill when
    asked). GET with draft fields in the URL opens it filled (``_review_context``).

    The form carries the version it was drawn over (``base``): if another version became
    active meanwhile (a save or restore in another tab), the draft is shown again over the
    new one instead of silently replacing it."""
    _require_admin(request)
    version = _active_version(pk)
    if request.method == "POST":
        weights, green, yellow, errors, days = _read_draft(version, request.POST)
        notes = request.POST.get("notes", "")[:2000]
        base = request.POST.get("base", "")
        if base and base != str(version.pk):
            errors.setdefault("form", []).append(
                f"While you were editing, v{version.version} became the active version "
                f"({Truncator(version.notes).chars(80) or 'no note'}). Your draft is kept "
                f"below, now beside v{version.version}'s weights: check it and save again."
            )
        if not errors:
            try:
                new = services.health_model_draft_save(
                    version=version,
                    weights=weights,
                    green_min=green,
                    yellow_min=yellow,
                    user=request.user,
                    notes=notes,
                )
            except ValidationError as exc:
                errors = exc.message_dict
            else:
                if days:
                    job = services.backfill_start(days=days, user=request.user)
                    messages.success(
                        request,
                        f"Saved as {new}. Days not rescored keep the snapshots "
                        f"v{version.version} made.",
                    )
                    return redirect(reverse("workspace:backfill-status") + f"?job={job}")
                messages.success(request, f"Saved as {new}.")
                return _to_history(pk, changed=new)
        context = _editor_context(version, weights, green, yellow, errors, days, notes)
        return render(request, "workspace/manage/health_model_edit.html", context)
    if any(k.startswith("weight_") or k in DRAFT_FIELDS for k in request.GET):
        context = _review_context(version, request.GET)
    else:
        weights = {c["key"]: c["weight"] for c in version.components}
        context = _editor_context(version, weights, version.green_min, version.yellow_min, {}, 30)
    context["versions"] = list(version.model.versions.select_related("created_by")[:5])
    return render(request, "workspace/manage/health_model_edit.html", context)


def _to_history(pk: int, *, changed: HealthModelVersion | None = None) -> HttpResponse:
    url = reverse("workspace:health-model-versions", args=[pk])
    return redirect(url + (f"?changed={changed.pk}" if changed else ""))


@require_POST
def health_model_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The draft's band distribution and backtest AUC beside the current version's."""
    _require_admin(request)
    version = _active_version(pk)
    weights, green, yellow, errors, _ = _read_draft(version, request.POST)
    preview = None
    if not errors:
        preview = services.health_model_preview(
            version=version, weights=weights, green_min=green, yellow_min=yellow
        )
    return render(
        request,
        "workspace/manage/_health_preview.html",
        {
            "preview": preview,
            "errors": errors,
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
    diff = None
    if confirm is not None and history["active"] is not None:
        diff = selectors.health_version_diff(history["active"], confirm)
    context = {
        "model": model,
        **history,
        "restore_errors": list(restore_errors),
        "confirm": confirm,
        "diff": diff,
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
    raw = request.POST.get("days", "").strip()
    back = request.POST.get("model", "")
    if not raw.isdigit() or not 1 <= int(raw) <= BACKFILL_DAYS_MAX:
        messages.error(
            request, f"Days to rescore: a whole number from 1 to {BACKFILL_DAYS_MAX}, got “{raw}”."
        )
        if back.isdigit() and HealthModel.objects.filter(pk=int(back)).exists():
            return _to_history(int(back))
        return redirect("workspace:health-models")
    job = services.backfill_start(days=int(raw), user=request.user)
    return redirect(reverse("workspace:backfill-status") + f"?job={job}")


@require_GET
def backfill_status(request: HttpRequest) -> HttpResponse:
    """A backfill's progress (``?job=<id>``); while it runs, a fragment polls."""
    _require_admin(request)
    job = request.GET.get("job", "")[:64]
    progress = services.backfill_progress(job)
    running = progress is not None and progress.get("status") in ("queued", "running")
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
        {"people": people, "managers": managers, "roles": Role.choices},
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
                user=person, role=role or None, manager=manager, is_active=active, by=request.user
            )
        except ValidationError as exc:
            errors.extend(exc.messages)
        else:
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
    return render(
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
