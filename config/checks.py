"""System checks of the deployment configuration (registered by accounts.apps).

``SITE_URL`` is the address every emailed link starts with (survey invitations, CTA and
report mails). Unset, it is ``make run``'s http://127.0.0.1:8000: right on a laptop, wrong
for a server, and nothing else would say so: the links would only fail in the customers'
inboxes. In deployed mode (``DATABASE_URL`` set) whose ``ALLOWED_HOSTS`` name a host other
than this machine, a loopback or relative ``SITE_URL`` is therefore an *error*, not a
warning: ``manage.py check``, ``migrate`` (the compose ``web`` service runs it before
gunicorn) and ``runserver`` stop on it, as the app stops without ``DJANGO_SECRET_KEY``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

# this machine's names, and Django's test client's (CI and the benchmarks allow it)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "testserver"}


def _is_loopback(host: str) -> bool:
    host = host.lower().strip("[]")
    return host in LOOPBACK_HOSTS or host.startswith("127.") or host.endswith(".localhost")


@register("deployment")
def site_url_check(app_configs=None, **kwargs) -> list[Error]:
    if settings.EMBEDDED:
        return []
    site_url = settings.SITE_URL
    parts = urlsplit(site_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"SITE_URL must be an absolute http(s) address, got {site_url!r}.",
                hint="Set SITE_URL to the public address of the site, e.g. https://cs.example.com",
                id="config.E001",
            )
        ]
    if not _is_loopback(parts.hostname):
        return []
    public = [host for host in settings.ALLOWED_HOSTS if not _is_loopback(host.lstrip("."))]
    if not public:
        return []  # a site that only answers on this machine: a loopback SITE_URL is right
    said = (
        f"SITE_URL is not set (default {site_url})"
        if site_url == settings.SITE_URL_DEFAULT
        else f"SITE_URL is {site_url}"
    )
    return [
        Error(
            f"{said} while DJANGO_ALLOWED_HOSTS names {', '.join(public)}: links in survey "
            "invitations and other emails would point at the recipient's own machine.",
            hint=(
                "Set SITE_URL to the address users and customers open, e.g. "
                f"https://{next((h.lstrip('.') for h in public if h != '*'), 'cs.example.com')}"
            ),
            id="config.E002",
        )
    ]
