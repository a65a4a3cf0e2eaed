"""Admin screens: the health model editor (live preview, save, backfill with progress), users
and roles, and links to the other editors. Admins only: anyone else gets 403 (these pages
hold no customer data, so their existence is no secret)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts.models import Role, User
from accounts.services import user_access_update
from metrics.models import HealthModel, HealthModelVersion
from metrics.services import health_model_ensure_default

from . import integrations, services

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
    version = model.versions.filter(active=True).first()
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
                "errors": errors.get(f"weight_{c['key']}", []),
            }
            for c in version.components
        ],
        "green_min": green,
        "yellow_min": yellow,
        "backfill_days": days,
        "notes": notes,
        "errors": errors,
    }


@require_http_methods(["GET", "POST"])
def health_model_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor; POST saves the draft as a new version and starts the backfill."""
    _require_admin(request)
    version = _active_version(pk)
    if request.method == "POST":
        weights, green, yellow, errors, days = _read_draft(version, request.POST)
        notes = request.POST.get("notes", "")[:2000]
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
                url = reverse("workspace:health-model-edit", args=[pk])
                if days:
                    job = services.backfill_start(days=days, user=request.user)
                    url = reverse("workspace:backfill-status") + f"?job={job}"
                messages.success(request, f"Saved as {new}.")
                return redirect(url)
        context = _editor_context(version, weights, green, yellow, errors, days, notes)
        context["preview"] = None
        return render(request, "workspace/manage/health_model_edit.html", context)
    weights = {c["key"]: c["weight"] for c in version.components}
    context = _editor_context(version, weights, version.green_min, version.yellow_min, {}, 30)
    context["versions"] = list(version.model.versions.select_related("created_by")[:10])
    return render(request, "workspace/manage/health_model_edit.html", context)


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
        {"preview": preview, "errors": errors, "version": version},
    )


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
