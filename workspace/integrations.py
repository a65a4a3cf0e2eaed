"""What the workspace shows from the playbooks and surveys apps when they are installed:
open CTAs per account, and links to their pages. The workspace is the top of the import
chain, so it may import them; this module keeps each page working before they land."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from accounts.models import User


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def links() -> dict[str, str | None]:
    """Pages of the other apps, by what they are (None while an app is not there)."""
    return {
        "ctas": _url("playbooks:cta-list"),
        "playbooks": _url("playbooks:playbook-list"),
        "surveys": _url("surveys:campaign-list"),
        "survey_results": _url("surveys:results"),
    }


def open_ctas_by_account(account_ids: list[int], *, user: User) -> dict[int, list]:
    """Open CTAs (with their steps) of these accounts, by account id. One or two queries."""
    return {}
