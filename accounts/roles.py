"""The three roles as Django groups with their permissions.

Kept in code and applied after every ``migrate`` (permissions only exist after migrations
ran), so a fresh install and an upgraded one end with the same groups."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from .models import Role

CUSTOMER_MODELS = (
    "account",
    "contract",
    "stakeholder",
    "usageevent",
    "usagedaily",
    "usagefeaturedaily",
    "trackeduser",
    "ticket",
    "invoice",
    "activity",
    "milestone",
    "timelineentry",
    "importrecord",
)
PRODUCT_APPS = ("accounts", "metrics", "playbooks", "surveys")


def _codenames_for(role: str) -> set[tuple[str, str]]:
    """(app_label, codename) pairs each role holds."""
    view = {("accounts", f"view_{m}") for m in CUSTOMER_MODELS}
    if role == Role.CSM:
        return view | {("accounts", "add_activity"), ("accounts", "change_activity")}
    if role == Role.MANAGER:
        return view | {
            ("accounts", "add_activity"),
            ("accounts", "change_activity"),
            ("accounts", "change_account"),  # reassign owners
        }
    return set()  # Admin: every permission of the product's apps, see below


def ensure_roles(**_kwargs) -> None:
    """Create or update the Admin, Manager and CSM groups. Idempotent."""
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        if role == Role.ADMIN:
            perms = Permission.objects.filter(content_type__app_label__in=PRODUCT_APPS)
        else:
            pairs = _codenames_for(role)
            perms = [
                p
                for p in Permission.objects.filter(
                    content_type__app_label__in=PRODUCT_APPS
                ).select_related("content_type")
                if (p.content_type.app_label, p.codename) in pairs
            ]
        group.permissions.set(perms)
