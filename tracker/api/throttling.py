"""Rate limits: per API key (or signed-in case worker), and per client address for requests that
fail to authenticate, counted atomically in the shared cache so that they hold exactly across
processes and threads. Every answer says where the caller stands (`RateLimit-*` headers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.cache import count_in_window
from core.middleware import client_ip
from tracker.models import ApiKey

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RateWindow:
    limit: int
    count: int
    reset_seconds: int

    @property
    def admitted(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_seconds)}
        if not self.admitted:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


def parse_rate(rate: str) -> tuple[int, int]:
    """`1200/minute` → (1200, 60)."""
    number, _, period = rate.partition("/")
    if not number.strip().isdigit() or not period or period[0] not in PERIODS:
        raise ImproperlyConfigured(f"a rate limit is written like 1200/minute, not {rate!r}")
    return int(number), PERIODS[period[0]]


def count_request(bucket: str, rate: str) -> RateWindow:
    limit, seconds = parse_rate(rate)
    count, reset = count_in_window(f"ratelimit:{bucket}", seconds)
    return RateWindow(limit=limit, count=count, reset_seconds=reset)


def address_of(request: Request) -> str:
    return client_ip(request._request) or "unknown"


def count_failed_authentication(request: Request) -> RateWindow:
    """One more request from this address that no key or session vouched for."""
    window = count_request(f"unauthenticated:{address_of(request)}", settings.API_UNAUTHENTICATED_RATE_LIMIT)
    request.rate_window = window  # type: ignore[attr-defined]
    return window


class ApiRateThrottle(BaseThrottle):
    """Counts each request against its key, its case worker, or (with neither) its address."""

    window: RateWindow | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            self.window = count_request(f"key:{request.auth.pk}", settings.API_RATE_LIMIT)
        elif request.user and request.user.is_authenticated:
            self.window = count_request(f"user:{request.user.pk}", settings.API_RATE_LIMIT)
        else:
            self.window = count_failed_authentication(request)
        request.rate_window = self.window  # type: ignore[attr-defined]
        return self.window.admitted

    def wait(self) -> float | None:
        return None if self.window is None else float(self.window.reset_seconds)
