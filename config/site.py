"""Absolute links to this site, for text that leaves it (emails): ``SITE_URL`` + a path."""

from __future__ import annotations

from django.conf import settings


def absolute_url(path: str) -> str:
    """``/ctas/5/`` → ``https://cs.example.com/ctas/5/`` (``SITE_URL`` without its slash)."""
    return settings.SITE_URL.rstrip("/") + path
