from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from accounts.days import parse_day
from accounts.models import Role

from . import pipeline, services
from .models import (
    HealthAssignmentChange,
    HealthAssignmentRule,
    HealthModel,
    HealthModelVersion,
    HealthOverride,
    HealthSnapshot,
    KpiSnapshot,
    PipelineChunk,
    PipelineRun,
)


class PipelineChunkInline(admin.TabularInline):
    """The health chunk tasks of a run through Celery: which are done, with their counts."""

    model = PipelineChunk
    fields = ["index", "accounts_scored", "done_at", "counts"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Accounts (churned ones too)")
    def accounts_scored(self, obj: PipelineChunk) -> int:
        return obj.accounts


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    """The health counts are of every account scored, churned ones included, unlike the
    dashboard's distribution (current customers only): ``health`` says so in words."""

    list_display = [
        "as_of",
        "status",
        "started_at",
        "finished_at",
        "duration",
        "chunks_total",
        "health",
    ]
    list_filter = ["status"]
    date_hierarchy = "as_of"
    readonly_fields = [*(f.name for f in PipelineRun._meta.fields), "health"]
    inlines = [PipelineChunkInline]

    @admin.display(description="Health step")
    def health(self, obj: PipelineRun) -> str:
        return pipeline.health_words(obj.steps or []) or "—"


class HealthModelVersionInline(admin.TabularInline):
    """Versions are read-only here: edit one from its own page, which saves a new version."""

    model = HealthModelVersion
    fields = [
        "version",
        "active",
        "green_min",
        "yellow_min",
        "created_by",
        "created_at",
        "restored_from",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _review_url(version: HealthModelVersion, result: dict) -> str:
    """The app's health model editor for ``version``'s model, filled with the weights the
    backtest suggested and a note saying where they come from (nothing saved yet)."""
    s = result["suggestion"]
    query = {f"weight_{key}": f"{weight:g}" for key, weight in s["weights"].items()}
    query["notes"] = (
        f"weights suggested by the backtest as of {result['as_of']} ({result['horizon']} days): "
        f"AUC {s['auc']} vs {s['current_auc']} for {s['model_version']}"
    )
    query["suggested_for"] = s["model_version_id"]
    # the editor is an app page (workspace); linked by URL name, nothing imported from it
    return reverse("workspace:health-model-edit", args=[version.model_id]) + "?" + urlencode(query)


class HealthAssignmentRuleInline(admin.TabularInline):
    """The model's assignment rules, read-only: they are changed on the app's assignments
    page, which checks them against the other rules and writes the audit trail."""

    model = HealthAssignmentRule
    fields = ["segment", "lifecycle", "created_by", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HealthModel)
class HealthModelAdmin(admin.ModelAdmin):
    """Which accounts a model scores is read-only here (the rules and the default flag):
    the app's assignments page changes them, with its checks and the audit trail."""

    list_display = ["name", "is_default", "scores"]
    readonly_fields = ["is_default", "assignments_link"]
    inlines = [HealthAssignmentRuleInline, HealthModelVersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("rules")

    @admin.display(description="Scores")
    def scores(self, obj: HealthModel) -> str:
        return services.health_model_scope_words(obj, rules=list(obj.rules.all()))

    @admin.display(description="Which accounts it scores")
    def assignments_link(self, obj: HealthModel) -> str:
        url = reverse("workspace:health-assignments")
        return format_html('<a href="{}">Change the rules on the assignments page</a>', url)


@admin.register(HealthAssignmentChange)
class HealthAssignmentChangeAdmin(admin.ModelAdmin):
    """The audit trail of the assignment rules: read-only, written by the services."""

    list_display = ["at", "by", "action", "before", "after"]
    list_filter = ["action"]
    list_select_related = ["by"]
    search_fields = ["before", "after"]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HealthModelVersion)
class HealthModelVersionAdmin(admin.ModelAdmin):
    """Saving a version (new or edited) always creates the next version of its model through
    ``services.health_model_version_create``; the version edited stays as it was, with the
    snapshots it made."""

    list_display = [
        "__str__",
        "model",
        "version",
        "active",
        "green_min",
        "yellow_min",
        "created_at",
    ]
    list_filter = ["model", "active"]
    fields = ["model", "components", "green_min", "yellow_min", "notes"]
    readonly_fields = ["backtest_link"]

    def get_fields(self, request, obj=None):
        return self.fields + (["backtest_link"] if obj is not None else [])

    @admin.display(description="Backtest")
    def backtest_link(self, obj: HealthModelVersion) -> str:
        url = reverse("admin:metrics_healthmodelversion_backtest", args=[obj.pk])
        return format_html('<a href="{}">Backtest this model against churn</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.backtest_view)
        return [
            path("<int:pk>/backtest/", view, name="metrics_healthmodelversion_backtest"),
            *super().get_urls(),
        ]

    def backtest_view(self, request, pk: int):
        """The predictive check of this version's model (``services.health_backtest``) for
        ``?as_of=&horizon=`` (default horizon 90 days; default day: the latest with health
        snapshots a whole horizon before the latest snapshot day, at most yesterday UTC,
        ``services.health_backtest_day``, which the page names in one line), with the
        suggested weights and a link that opens them in the app's health model editor
        (``review_url``). A window
        that ends after today is refused unless ``partial=1`` (the form's checkbox), which
        observes it up to today, labelled as such.

        The page writes nothing: suggested weights become a version only after an admin has
        seen their preview in the editor (how many accounts change band, the draft's AUC
        beside the current one's) and pressed Save there. It used to create and activate a
        version in one click, with no preview and nothing to confirm."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        version = get_object_or_404(HealthModelVersion.objects.select_related("model"), pk=pk)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        params = request.GET
        errors: list[str] = []
        try:
            horizon = int(params.get("horizon") or 90)
        except ValueError:
            errors.append(f"horizon: expected a whole number of days, got {params['horizon']!r}")
            horizon = 90
        partial = params.get("partial") == "1"
        as_of = None
        raw = params.get("as_of") or ""
        if raw:
            try:
                as_of = parse_day(raw)  # exactly YYYY-MM-DD, as the backtest command reads it
            except ValueError as exc:
                errors.append(f"as of: {exc}")
        result = None
        chosen = ""
        if not errors:
            try:
                # no day asked: the latest one with snapshots a whole horizon back, named in
                # one line above the result; a day asked without snapshots is refused
                as_of, chosen = services.health_backtest_day(
                    as_of=as_of, horizon=horizon, partial=partial
                )
                result = services.health_backtest(
                    as_of=as_of, horizon=horizon, version=version, partial=partial
                )
            except ValidationError as exc:
                errors.extend(
                    f"{field.replace('_', ' ')}: {e.message}"
                    + (
                        " (tick “only the days observed so far”)"
                        if e.code == "incomplete_window"
                        else ""
                    )
                    for field, field_errors in exc.error_dict.items()
                    for e in field_errors
                )
        can_review = getattr(request.user, "role", None) == Role.ADMIN
        review_url = None
        if result and result["suggestion"] and can_review:
            review_url = _review_url(version, result)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Backtest of {version}",
            "version": version,
            "as_of": as_of.isoformat() if as_of else raw,
            "day_chosen": chosen,
            "horizon": horizon,
            "max_horizon": services.BACKTEST_MAX_HORIZON,
            "partial": partial,
            "result": result,
            "errors": errors,
            "review_url": review_url,
        }
        return TemplateResponse(request, "admin/metrics/backtest.html", context)

    def save_model(self, request, obj, form, change) -> None:
        try:
            new = services.health_model_version_create(
                model=obj.model,
                components=obj.components,
                green_min=obj.green_min,
                yellow_min=obj.yellow_min,
                created_by=request.user,
                notes=obj.notes,
            )
        except ValidationError as exc:  # form validation (model.clean) catches these first
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        obj.pk, obj.version = new.pk, new.version
        if change:
            self.message_user(
                request,
                f"Saved as {new}; the version you edited is kept for its snapshots. "
                "Run `manage.py recompute --from … --to …` to rescore past days.",
                messages.INFO,
            )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # snapshots point at versions


@admin.register(HealthOverride)
class HealthOverrideAdmin(admin.ModelAdmin):
    """Audit trail of manual overrides; create them through the service (reason, expiry and
    locks are checked there)."""

    list_display = [
        "account",
        "component",
        "score",
        "band",
        "expires_at",
        "created_by",
        "created_at",
    ]
    list_select_related = ["account", "created_by"]
    readonly_fields = [f.name for f in HealthOverride._meta.fields]
    search_fields = ["account__name", "account__external_id", "reason"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(admin.ModelAdmin):
    list_display = ["account", "day", "score", "band", "computed_score", "model_version"]
    list_filter = ["band"]
    list_select_related = ["account", "model_version__model"]
    date_hierarchy = "day"
    search_fields = ["account__name", "account__external_id"]
    readonly_fields = [f.name for f in HealthSnapshot._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(KpiSnapshot)
class KpiSnapshotAdmin(admin.ModelAdmin):
    """Nightly KPI snapshots (written by the pipeline, read-only here)."""

    list_display = ["day", "scope_kind", "scope_key", "period_start", "period_end", "mrr_end"]
    list_filter = ["scope_kind"]
    date_hierarchy = "day"
    search_fields = ["scope_key"]
    readonly_fields = [f.name for f in KpiSnapshot._meta.fields]

    @admin.display(description="MRR at end")
    def mrr_end(self, obj: KpiSnapshot) -> str:
        try:
            return obj.report["revenue"]["mrr_end"]["value"]
        except (KeyError, TypeError):
            return "-"

    def has_add_permission(self, request) -> bool:
        return False
