from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError

from . import models, services


@admin.register(models.User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "manager", "is_active", "is_staff"]
    list_filter = ["groups", "is_active", "is_staff"]
    search_fields = ["email", "first_name", "last_name"]
    raw_id_fields = ["manager"]
    list_select_related = ["manager"]

    def get_readonly_fields(self, request, obj=None):
        # the Admin role manages users but cannot hand out (or take) superuser rights
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly.append("is_superuser")
        return readonly

    def save_model(self, request, obj, form, change):
        # a change of role, manager or sign-in is recorded as the users page records it
        # (``services.user_access_recorded``): its "Recent changes" lists it, and a save
        # there from a page opened before names who made it. The row as it was, locked
        # until the change is saved (the admin saves in one transaction).
        # (on the object, not on this admin: one admin serves every request)
        obj._access_before = services.user_access_locked(obj.pk) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # the groups: the role
        before = getattr(form.instance, "_access_before", None)
        if before is not None:
            after = models.User.objects.select_related("manager").get(pk=before.pk)
            services.user_access_recorded(before=before, after=after, by=request.user)

    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "manager")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made on Manage → API tokens or with ``manage.py create_api_token``, which
    show the key once: an admin "add" form has nowhere to show it. Revoking here is the
    "Revoke" action, through the same service as the page (it records who); who made and
    who revoked a token, and when, are read-only."""

    list_display = [
        "name",
        "user",
        "prefix",
        "scope",
        "last_used_at",
        "created_at",
        "created_by",
        "revoked_at",
        "revoked_by",
    ]
    list_filter = ["scope"]
    list_select_related = ["user", "created_by", "revoked_by"]
    readonly_fields = [
        "prefix",
        "key_hash",
        "last_used_at",
        "created_by",
        "created_via",
        "revoked_at",
        "revoked_by",
        "revoked_via",
    ]
    raw_id_fields = ["user"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at=None):
            try:
                services.api_token_revoke(token=token, by=request.user, via=token.Via.ADMIN)
            except ValidationError:
                continue  # revoked meanwhile by someone else: theirs stays
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s): calls with their keys get 401.")


class ContractInline(admin.TabularInline):
    model = models.Contract
    extra = 0
    fields = ["external_id", "product", "start_date", "end_date", "mrr", "quantity"]
    show_change_link = True


@admin.register(models.Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "segment", "owner", "lifecycle_stage", "customer_since"]
    list_filter = ["segment", "lifecycle_stage"]
    search_fields = ["name", "external_id", "domain"]
    raw_id_fields = ["owner", "parent"]
    list_select_related = ["owner"]
    inlines = [ContractInline]


@admin.register(models.Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "account",
        "product",
        "start_date",
        "end_date",
        "mrr",
        "quantity",
    ]
    list_filter = ["product", "auto_renew"]
    search_fields = ["external_id", "account__name", "account__external_id"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]
    date_hierarchy = "start_date"


@admin.register(models.Stakeholder)
class StakeholderAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "account", "role", "is_primary"]
    list_filter = ["role", "is_primary"]
    search_fields = ["name", "email", "external_id", "account__name"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(models.UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "account", "user_id", "event", "value"]
    search_fields = ["account__external_id", "user_id", "event"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]
    show_full_result_count = False  # COUNT(*) over millions of events is slow


@admin.register(models.UsageDaily)
class UsageDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "account", "events", "active_users", "value_sum"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]
    date_hierarchy = "day"
    show_full_result_count = False


@admin.register(models.UsageFeatureDaily)
class UsageFeatureDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "account", "event", "events", "users"]
    list_filter = ["event"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]
    show_full_result_count = False


@admin.register(models.TrackedUser)
class TrackedUserAdmin(admin.ModelAdmin):
    list_display = ["user_id", "account", "updated_at"]
    search_fields = ["user_id"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(models.Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "account",
        "subject",
        "priority",
        "status",
        "escalated",
        "opened_at",
    ]
    list_filter = ["priority", "status", "escalated"]
    search_fields = ["external_id", "subject", "account__name"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(models.Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["external_id", "account", "issued_on", "due_on", "amount", "status", "paid_on"]
    list_filter = ["status"]
    search_fields = ["external_id", "account__name"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(models.Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "account", "kind", "subject", "author"]
    list_filter = ["kind"]
    search_fields = ["subject", "body", "account__name"]
    raw_id_fields = ["account", "author", "stakeholders"]
    list_select_related = ["account", "author"]


@admin.register(models.Milestone)
class MilestoneAdmin(admin.ModelAdmin):
    """Read-only: a milestone is recorded on the account page or through the API
    (``services.milestone_record``), which also writes its timeline fact."""

    list_display = ["account", "kind", "reached_on", "recorded_by", "recorded_at"]
    list_filter = ["kind"]
    search_fields = ["account__name", "note"]
    list_select_related = ["account", "recorded_by"]
    readonly_fields = ["account", "kind", "reached_on", "note", "recorded_by", "recorded_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(models.TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "account", "kind", "title"]
    list_filter = ["kind"]
    search_fields = ["title", "account__name", "key"]
    raw_id_fields = ["account"]
    list_select_related = ["account"]


@admin.register(models.ImportRecord)
class ImportRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "origin",
        "kind",
        "filename",
        "status",
        "rows",
        "created",
        "updated",
        "rejected",
        "user",
    ]
    list_filter = ["origin", "status", "kind"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in models.ImportRecord._meta.fields]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the app only, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.ChangeRecord)
class ChangeRecordAdmin(ReadOnlyAdmin):
    """The audit trail: written in the same transaction as each change it records (the users
    page, the KPI targets and scheduled reports, a user changed here)."""

    list_display = ["at", "subject", "name", "action", "words", "by"]
    list_filter = ["subject", "action"]
    search_fields = ["name", "words", "by__email"]
    list_select_related = ["by"]
    date_hierarchy = "at"


@admin.register(models.FormOnce)
class FormOnceAdmin(ReadOnlyAdmin):
    """The keys of the forms sent in the last two days (``accounts.once``), and what each
    made: a second send of one of them makes nothing."""

    list_display = ["at", "key", "made"]
    search_fields = ["key", "made"]
    date_hierarchy = "at"
    show_full_result_count = False
