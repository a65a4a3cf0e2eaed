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
import os
import socket
import threading
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
    moment = now if now is not None else time.time()
    keyed = [
        (f"ratelimit:{key}:{window}:{int(moment // window)}", limit, window)
        for key, limit, window in checks
    ]
    redis = _redis()
    if redis is not None:
        hits = _count_in_redis(redis, keyed)
    else:
        hits = [_count_in_cache(cache_key, window) for cache_key, _, window in keyed]
    return all(n is None or n <= limit for n, (_, limit, _) in zip(hits, keyed, strict=True))


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
        direct = _direct(redis)
        if direct is not None:
            return direct.count(keys, expiries)
        try:
            hits = redis.evalsha(_COUNT_SHA, len(keys), *keys, *expiries)
        except NoScriptError:  # the first call since Redis started: send the script itself
            hits = redis.eval(_COUNT, len(keys), *keys, *expiries)
        return [int(n) for n in hits]
    except RedisError as exc:  # the cache is away: allow (see the module's docstring)
        logger.warning("rate limit not counted, the cache is away: %s", exc)
        return [None] * len(keyed)


class _DirectRedis:
    """The counting script sent on a socket of this thread's own, without redis-py's command
    machinery (its pool, retries, events and metrics cost ~3/4 of the ~0.1 ms of CPU the
    survey answer's count took): one EVALSHA, its reply read with hiredis. Any error closes
    the socket and is raised as redis-py's ConnectionError (the caller fails open); the
    next count opens a new one."""

    def __init__(self, kwargs: dict):
        import hiredis

        self._reader_class = hiredis.Reader
        self._kwargs = kwargs
        self._sock: socket.socket | None = None
        self._pid = os.getpid()

    def _call(self, *args: bytes | str | int):
        sock = self._sock
        if sock is None:
            sock = self._sock = self._connect()
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
        sock.sendall(b"".join(parts))
        reader = self._reader_class()
        while True:
            data = sock.recv(65536)
            if not data:
                raise OSError("Redis closed the connection")
            reader.feed(data)
            reply = reader.gets()
            if reply is not False:
                return reply

    def _connect(self) -> socket.socket:
        kw = self._kwargs
        sock = socket.create_connection(
            (kw.get("host", "localhost"), kw.get("port", 6379)),
            timeout=kw.get("socket_connect_timeout") or kw.get("socket_timeout"),
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(kw.get("socket_timeout"))
        self._sock = sock
        if kw.get("password"):
            auth = ("AUTH", kw["username"], kw["password"]) if kw.get("username") else (
                "AUTH", kw["password"])  # fmt: skip
            self._checked(self._call(*auth))
        if kw.get("db"):
            self._checked(self._call("SELECT", kw["db"]))
        return sock

    @staticmethod
    def _checked(reply):
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def count(self, keys: list, expiries: list[int]) -> list[int]:
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            try:
                reply = self._call("EVALSHA", _COUNT_SHA, len(keys), *keys, *expiries)
            except OSError:
                if self._sock is None:  # a new connection failed: Redis is away
                    raise
                self.close()  # a reused one (Redis restarted, an idle timeout): once more
                reply = self._call("EVALSHA", _COUNT_SHA, len(keys), *keys, *expiries)
            if isinstance(reply, Exception) and str(reply).startswith("NOSCRIPT"):
                reply = self._call("EVAL", _COUNT, len(keys), *keys, *expiries)
            return [int(n) for n in self._checked(reply)]
        except Exception as exc:
            self.close()
            raise RedisConnectionError(str(exc)) from exc


_direct_clients = threading.local()


def _direct(redis) -> _DirectRedis | None:
    """This thread's direct client for ``redis``'s server, or None when its connections are
    not plain TCP ones (TLS, a Unix socket, a sentinel, a cluster): then redis-py counts."""
    from redis.connection import Connection

    pool = getattr(redis, "connection_pool", None)
    if pool is None or getattr(pool, "connection_class", None) is not Connection:
        return None
    kwargs = pool.connection_kwargs
    key = (kwargs.get("host"), kwargs.get("port"), kwargs.get("db"), kwargs.get("username"))
    clients = getattr(_direct_clients, "by_server", None)
    if clients is None:
        clients = _direct_clients.by_server = {}
    client = clients.get(key)
    if client is None or client._pid != os.getpid():  # a forked worker opens its own
        try:
            client = clients[key] = _DirectRedis(kwargs)
        except ImportError:  # no hiredis: redis-py's own parser
            return None
    return client


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
