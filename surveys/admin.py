from django.contrib import admin

from .models import Campaign, Invitation, OptOut, Response, Survey


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "language"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "trigger", "event", "next_run_at", "runs"]
    list_filter = ["status", "trigger"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["campaign", "round", "email", "sent_at", "responded_at", "expires_at"]
    list_select_related = ["campaign"]
    raw_id_fields = ["stakeholder", "account"]
    exclude = ["token"]  # a live link: not shown in the admin


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["account", "kind", "score", "answered_at", "is_current", "source"]
    list_filter = ["kind", "source", "is_current"]
    list_select_related = ["account"]
    raw_id_fields = ["invitation", "account", "stakeholder", "campaign"]


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["email", "created_at"]
    raw_id_fields = ["invitation"]
