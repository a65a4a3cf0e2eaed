"""Reads over the customer data. Set-based: a fixed handful of queries per call."""

from __future__ import annotations

from django.db.models import Count

from .models import Account, User


def book_summary(*, user: User) -> dict:
    """How many accounts the user can see, and the ten most recently updated."""
    accounts = Account.objects.visible_to(user)
    return {
        "accounts": accounts.aggregate(n=Count("id"))["n"],
        "recent_accounts": list(accounts.select_related("owner").order_by("-updated_at")[:10]),
    }
