"""A fixed-window request counter in the cache (Redis when deployed), for public endpoints:
at most ``limit`` hits per key in each clock window of ``window`` seconds (counters expire
on their own).

    if not ratelimit.allow(f"pwreset:ip:{ip}", limit=10, window=3600):
        return too_many_requests()

    # several counters at once (one round trip to Redis): the survey pages, per IP and link
    if not ratelimit.allow_all([(f"s-ip:{ip}", 1200, 60), (f"s-tok:{token}", 60, 60)]):
        ...

Fails open: when the cache is away (Redis outage) every request is allowed, because refusing
every sign-in or survey answer would be worse than a short window without a limit."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def allow(key: str, *, limit: int, window: int, now: float | None = None) -> bool:
    """Count one hit on ``key``; False once more than ``limit`` hits fell in the current
    clock window of ``window`` seconds."""
    return allow_all([(key, limit, window)], now=now)


def allow_all(checks: Sequence[tuple[str, int, int]], *, now: float | None = None) -> bool:
    """Count one hit on each ``(key, limit, window)``; False when any of them is over its
    limit. Every counter counts the hit, whatever the others say. With Redis this is one
    round trip (a script: INCR per counter, EXPIRE on the one that INCR created)."""
    return allow_each([checks], now=now)[0]


def allow_each(
    requests: Sequence[Sequence[tuple[str, int, int]]], *, now: float | None = None
) -> list[bool]:
    """``allow_all`` for several requests at once, in order, in one round trip to Redis (the
    survey answers' batches, ``surveys.answer_batch``): a counter two of them share counts
    both hits, the later one seeing the higher count, as if they had come one by one."""
    moment = now if now is not None else time.time()
    keyed = [
        (f"ratelimit:{key}:{window}:{int(moment // window)}", limit, window)
        for checks in requests
        for key, limit, window in checks
    ]
    redis = _redis()
    if redis is not None:
        hits = _count_in_redis(redis, keyed)
    else:
        hits = [_count_in_cache(cache_key, window) for cache_key, _, window in keyed]
    verdicts, counted = [], iter(zip(hits, keyed, strict=True))
    for checks in requests:
        mine = [next(counted) for _ in checks]
        verdicts.append(all(n is None or n <= limit for n, (_, limit, _) in mine))
    return verdicts


def _redis():
    """The Redis client behind the default cache (django-redis), or None for another cache
    (the embedded profile's local memory)."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client


# INCR each key; a key that INCR just created gets its expiry in the same atomic step, so no
# counter ever lives without one
_COUNT = """
local hits = {}
for i, key in ipairs(KEYS) do
    hits[i] = redis.call('INCR', key)
    if hits[i] == 1 then redis.call('EXPIRE', key, ARGV[i]) end
end
return hits
"""
# Redis names a cached script by the SHA-1 of its text (EVALSHA): an identifier, not security
_COUNT_SHA = hashlib.sha1(_COUNT.encode(), usedforsecurity=False).hexdigest()


def _count_in_redis(client, keyed: list[tuple[str, int, int]]) -> list[int | None]:
    from redis.exceptions import NoScriptError, RedisError

    # the same keys and integer encoding as cache.add/incr would use
    keys = [client.make_key(cache_key) for cache_key, _, _ in keyed]
    expiries = [window + 5 for _, _, window in keyed]
    try:
        redis = client.get_client(write=True)
        try:
            hits = redis.evalsha(_COUNT_SHA, len(keys), *keys, *expiries)
        except NoScriptError:  # the first call since Redis started: send the script itself
            hits = redis.eval(_COUNT, len(keys), *keys, *expiries)
        return [int(n) for n in hits]
    except RedisError as exc:  # the cache is away: allow (see the module's docstring)
        logger.warning("rate limit not counted, the cache is away: %s", exc)
        return [None] * len(keyed)


def _count_in_cache(cache_key: str, window: int) -> int | None:
    if cache.add(cache_key, 1, timeout=window + 5):
        return 1
    try:
        return cache.incr(cache_key)  # None when the cache is away (its errors are ignored)
    except ValueError:  # expired between add and incr: this hit opens a new count
        cache.add(cache_key, 1, timeout=window + 5)
        return 1


def client_ip(request: HttpRequest) -> str:
    """The caller's address as the app sees it (behind a proxy, the proxy sets REMOTE_ADDR
    through gunicorn's --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"
