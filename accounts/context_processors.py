from __future__ import annotations

from django.http import HttpRequest

from .models import Role


def roles(request: HttpRequest) -> dict:
    """The signed-in user's role, for the navigation (not for access decisions)."""
    user = getattr(request, "user", None)
    role = user.role if user is not None and user.is_authenticated else None
    return {"user_role": role, "is_admin_role": role == Role.ADMIN}
