"""A fixed-window request counter in the cache (Redis when deployed), for public endpoints:
at most ``limit`` hits per key in each clock window of ``window`` seconds (counters expire
on their own).

    if not ratelimit.allow(f"pwreset:ip:{ip}", limit=10, window=3600):
        return too_many_requests()

Fails open: when the cache is away (Redis outage) every request is allowed, because refusing
every sign-in or survey answer would be worse than a short window without a limit."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.http import HttpRequest


def allow(key: str, *, limit: int, window: int, now: float | None = None) -> bool:
    """Count one hit on ``key``; False once more than ``limit`` hits fell in the current
    clock window of ``window`` seconds."""
    slot = int((now if now is not None else time.time()) // window)
    cache_key = f"ratelimit:{key}:{window}:{slot}"
    if cache.add(cache_key, 1, timeout=window + 5):
        return limit >= 1
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: this hit opens a new count
        cache.add(cache_key, 1, timeout=window + 5)
        hits = 1
    if hits is None:  # the cache is away (its errors are ignored)
        return True
    return hits <= limit


def client_ip(request: HttpRequest) -> str:
    """The caller's address as the app sees it (behind a proxy, the proxy sets REMOTE_ADDR
    through gunicorn's --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"
