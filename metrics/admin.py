from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from . import services
from .models import (
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
    fields = ["index", "accounts", "done_at", "counts"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ["as_of", "status", "started_at", "finished_at", "duration", "chunks_total"]
    list_filter = ["status"]
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in PipelineRun._meta.fields]
    inlines = [PipelineChunkInline]


class HealthModelVersionInline(admin.TabularInline):
    """Versions are read-only here: edit one from its own page, which saves a new version."""

    model = HealthModelVersion
    fields = ["version", "active", "green_min", "yellow_min", "created_by", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HealthModel)
class HealthModelAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "applies_to_segment", "applies_to_lifecycle"]
    inlines = [HealthModelVersionInline]


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
