"""A shared cache that degrades instead of failing: when Redis cannot be reached, this process's
own memory stands in until it can.

What the cache holds here is worth keeping the product up for, not worth an error page: rate-limit
counters (while Redis is down each process counts for itself, so a key may get up to one limit per
process) and an import's progress (the page falls back to the batch row). Each failure is logged;
nothing written through the cache is the only copy of anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
# How long, after a failure, the fallback is used without trying Redis again: while Redis is down
# each request would otherwise wait for its connection timeout first.
RETRY_AFTER_SECONDS = 5.0


# One window's count, in one step on the server: concurrent hits each get their own number, so exactly
# the first `limit` of them see a count within it. The window starts at its first hit and lasts its
# seconds (the key's expiry); a key left without one (written by something else) is given one.
WINDOW_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


def _count_in_cache(backend: BaseCache, key: str, seconds: int) -> tuple[int, int]:
    """The same count through any cache's add and incr (atomic in memory, close enough on disk)."""
    now = time.time()
    backend.add(f"{key}:start", now, seconds)
    started = backend.get(f"{key}:start", now)
    backend.add(key, 0, seconds)
    try:
        count = backend.incr(key)
    except ValueError:  # the window ended between the two calls
        backend.set(key, 1, seconds)
        count = 1
    return count, max(1, int(started + seconds - now + 0.999))


def count_in_window(key: str, seconds: int) -> tuple[int, int]:
    """Adds a hit to the window `key` of `seconds`, which starts with its first hit; returns the
    hits so far, this one included, and the seconds until the window ends."""
    backend = caches["default"]
    if isinstance(backend, ResilientRedisCache):
        return backend.count_in_window(key, seconds)
    return _count_in_cache(backend, key, seconds)


class KeptRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping the redis-py client it makes for each server where
    Django makes a new one on every call (a tenth of a millisecond each). A redis-py client takes a
    connection from its server's pool for each command, as the ones made per call did."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django: Any = self  # Django's attributes, which its type stubs do not declare
        index = django._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            # As Django's get_client, for the server it chose: its pool, made once, and a client on it.
            if index not in django._pools:
                django._pools[index] = django._pool_class.from_url(django._servers[index], **django._pool_options)
            client = self._clients[index] = django._client(connection_pool=django._pools[index])
        return client


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, with a per-process memory cache standing in while Redis is unreachable."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = params.setdefault("OPTIONS", {})
        # Short timeouts: a request that needs a counter should not hang on a dead server.
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 0.5)
        super().__init__(server, params)
        self._class = KeptRedisCacheClient
        self._fallback = LocMemCache(f"fallback-{server}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._down_until = 0.0
        self._window_script: Any = None

    def _resilient(self, operation: str, primary: Callable[[], T], fallback: Callable[[], T]) -> T:
        if time.monotonic() < self._down_until:
            return fallback()
        try:
            return primary()
        except UNREACHABLE as error:
            self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            log.warning("cache unreachable (%s: %s); using this process's memory for %.0f s",
                        operation, error, RETRY_AFTER_SECONDS)
            return fallback()

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._resilient("get", lambda: super(ResilientRedisCache, self).get(key, default, version),
                               lambda: self._fallback.get(key, default, version))

    def set(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> None:
        timeout = self.default_timeout if timeout is None else timeout
        self._resilient("set", lambda: super(ResilientRedisCache, self).set(key, value, timeout, version),
                        lambda: self._fallback.set(key, value, timeout, version))

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> bool:
        timeout = self.default_timeout if timeout is None else timeout
        return self._resilient("add", lambda: super(ResilientRedisCache, self).add(key, value, timeout, version),
                               lambda: self._fallback.add(key, value, timeout, version))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._resilient("delete", lambda: super(ResilientRedisCache, self).delete(key, version),
                               lambda: self._fallback.delete(key, version))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        return self._resilient("incr", lambda: super(ResilientRedisCache, self).incr(key, delta, version),
                               lambda: self._fallback.incr(key, delta, version))

    def count_in_window(self, key: str, seconds: int) -> tuple[int, int]:
        def in_redis() -> tuple[int, int]:
            full_key = self.make_and_validate_key(key)
            client = self._cache.get_client(full_key, write=True)
            if self._window_script is None:
                self._window_script = client.register_script(WINDOW_SCRIPT)
            # By its digest (EVALSHA); redis-py sends the script again if the server has lost it.
            count, ttl = self._window_script(keys=[full_key], args=[seconds], client=client)
            return int(count), max(1, int(ttl))

        return self._resilient("count_in_window", in_redis, lambda: _count_in_cache(self._fallback, key, seconds))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._resilient("has_key", lambda: super(ResilientRedisCache, self).has_key(key, version),
                               lambda: self._fallback.has_key(key, version))
