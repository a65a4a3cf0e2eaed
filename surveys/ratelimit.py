"""A small fixed-window rate limiter on the Django cache (Redis when deployed): at most N
requests per key in each clock minute. Counters expire on their own."""

from __future__ import annotations

import time

from django.core.cache import cache

WINDOW = 60  # seconds


def hit(name: str, limit: int, *, now: float | None = None) -> bool:
    """Count one request for ``name``; True while the window's count is within ``limit``."""
    window = int((now if now is not None else time.time()) // WINDOW)
    key = f"rl:{name}:{window}"
    if cache.add(key, 1, timeout=WINDOW + 5):
        return limit >= 1
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens a new count
        cache.add(key, 1, timeout=WINDOW + 5)
        count = 1
    if count is None:  # the cache is down (its errors are ignored): fail open, not shut
        return True
    return count <= limit
