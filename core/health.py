"""Health endpoints for load balancers and orchestrators: /health/live and /health/ready.

`live` says the process answers and asks nothing else, so a slow database never gets a web process
restarted. `ready` asks the database for a trivial query and the broker for a connection, both at
once, and waits for each at most HEALTH_CHECK_TIMEOUT (1 s): 200 with each check's latency, or 503
naming the check that failed and how (the kind of error only; the details, which name hosts and
users, go to the log). No authentication, nothing about any case, never cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import psycopg
from celery import current_app
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from core.db import direct_connection_params

log = logging.getLogger(__name__)
LIVE_PATH, READY_PATH = "/health/live", "/health/ready"


def check_database(timeout: float) -> None:
    """SELECT 1 on a connection of its own, never one of the pool: a probe must not wait behind busy
    requests for a pooled connection (up to the pool's 30 s), nor hold one."""
    if connections["default"].vendor != "postgresql":
        # A local SQLite file: nothing on the network, Django's own connection (this thread's) will do.
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            connections["default"].close()
        return
    params = direct_connection_params(connect_timeout=max(1, round(timeout)))
    params["options"] = f"{params.get('options', '')} -c statement_timeout={int(timeout * 1000)}".strip()
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute("SELECT 1")


def check_broker(timeout: float) -> None:
    """A new connection to the broker tasks are sent to (for Redis, a PING), with short socket timeouts."""
    with current_app.connection_for_write(
        connect_timeout=timeout, transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
    ) as conn:
        conn.ensure_connection(max_retries=0)


CHECKS: dict[str, Callable[[float], None]] = {"database": check_database, "broker": check_broker}


def _timed(check: Callable[[float], None], timeout: float) -> tuple[float, BaseException | None]:
    started = time.perf_counter()
    try:
        check(timeout)
    except Exception as error:
        return time.perf_counter() - started, error
    return time.perf_counter() - started, None


def run_checks(timeout: float) -> dict[str, dict[str, Any]]:
    """Every check at once, each in a thread of its own, waited for until `timeout` after the start.

    libpq waits at least 2 s for a connection whatever it is told, and a socket may stall mid-answer:
    the deadline is kept here. A check still running when it passes is reported as timed out and left
    to end by its own timeouts (its thread is not waited for)."""
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="health")
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    try:
        futures = {name: pool.submit(_timed, check, timeout) for name, check in CHECKS.items()}
        for name, future in futures.items():
            try:
                latency, error = future.result(timeout=max(0.0, started + timeout - time.perf_counter()))
            except FutureTimeout:
                latency, error = time.perf_counter() - started, TimeoutError(f"no answer within {timeout:g} s")
            results[name] = {"ok": error is None, "latency_ms": round(latency * 1000, 1)}
            if error is not None:
                results[name]["error"] = type(error).__name__
                log.warning("health: the %s check failed after %.0f ms: %s: %s", name, latency * 1000,
                            type(error).__name__, error)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _answer(status: int, body: dict[str, Any]) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def live(request: HttpRequest) -> HttpResponse:
    return _answer(200, {"status": "ok"})


@require_safe
def ready(request: HttpRequest) -> HttpResponse:
    checks = run_checks(float(settings.HEALTH_CHECK_TIMEOUT))
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    if failed:
        return _answer(503, {"status": "unavailable", "failed": failed, "checks": checks})
    return _answer(200, {"status": "ok", "checks": checks})


VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {LIVE_PATH: live, READY_PATH: ready}


class HealthCheckMiddleware:
    """Answers the health paths ahead of the rest of the middleware: a load balancer calls a machine by
    its address, which is not among ALLOWED_HOSTS, and needs no session, CSRF token or message store.
    The same views are in the URLconf, where every URL of the product is listed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = VIEWS.get(request.path_info)
        return view(request) if view is not None else self.get_response(request)
