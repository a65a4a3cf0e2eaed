from django.contrib import admin, messages

from . import services
from .models import DeferredTask, Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["key", "kind", "status", "source", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["kind", "status"]
    search_fields = ["key", "source"]
    exclude = ["secret"]
    readonly_fields = [f.name for f in Message._meta.fields if f.name != "secret"]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Try the selected failed messages again")
    def retry(self, request, queryset):
        failed = list(queryset.filter(status=Message.Status.FAILED))
        for message in failed:
            services.message_retry(message=message)
        self.message_user(request, f"{len(failed)} message(s) queued again.", messages.INFO)


@admin.register(DeferredTask)
class DeferredTaskAdmin(admin.ModelAdmin):
    list_display = ["name", "args", "attempts", "created_at", "last_error"]
    readonly_fields = ["name", "args", "kwargs", "attempts", "last_error", "created_at"]

    def has_add_permission(self, request):
        return False
