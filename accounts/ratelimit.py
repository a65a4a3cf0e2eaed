"""A fixed-window request counter in the cache (Redis when deployed), for public endpoints.

    if not ratelimit.allow(f"pwreset:ip:{ip}", limit=10, window=3600):
        return too_many_requests()

Fails open: when the cache is away (Redis outage) every request is allowed, because refusing
every sign-in or survey answer would be worse than a short window without a limit."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest


def allow(key: str, *, limit: int, window: int) -> bool:
    """Count one hit on ``key``; False once more than ``limit`` hits fell in this window of
    ``window`` seconds (the window starts at the first hit)."""
    cache_key = f"ratelimit:{key}"
    if cache.add(cache_key, 1, timeout=window):
        return True
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(cache_key, 1, timeout=window)
        return True
    if hits is None:  # the cache is away
        return True
    return hits <= limit


def client_ip(request: HttpRequest) -> str:
    """The caller's address as the app sees it (behind a proxy, the proxy sets REMOTE_ADDR
    through gunicorn's --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"
