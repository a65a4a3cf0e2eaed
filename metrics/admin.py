from django.contrib import admin

from .models import PipelineRun


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ["as_of", "status", "started_at", "finished_at", "duration"]
    list_filter = ["status"]
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in PipelineRun._meta.fields]
