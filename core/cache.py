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

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
# How long, after a failure, the fallback is used without trying Redis again: while Redis is down
# each request would otherwise wait for its connection timeout first.
RETRY_AFTER_SECONDS = 5.0


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, with a per-process memory cache standing in while Redis is unreachable."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = params.setdefault("OPTIONS", {})
        # Short timeouts: a request that needs a counter should not hang on a dead server.
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 0.5)
        super().__init__(server, params)
        self._fallback = LocMemCache(f"fallback-{server}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._down_until = 0.0

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

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._resilient("has_key", lambda: super(ResilientRedisCache, self).has_key(key, version),
                               lambda: self._fallback.has_key(key, version))
