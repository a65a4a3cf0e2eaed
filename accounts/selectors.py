"""Reads over the customer data. Set-based: a fixed handful of queries per call."""

from __future__ import annotations

from django.db.models import Count

from .models import Account, ImportRecord, User


def book_summary(*, user: User) -> dict:
    """Counts of what the user can see, and the latest imports (for admins)."""
    accounts = Account.objects.visible_to(user)
    agg = accounts.aggregate(
        accounts=Count("id", distinct=True),
    )
    return {
        "accounts": agg["accounts"],
        "recent_accounts": list(accounts.select_related("owner").order_by("-updated_at")[:10]),
        "recent_imports": list(ImportRecord.objects.select_related("user")[:5]),
    }
