"""HTTP hardening shared by every page: no caching of children's data, and the client's real address."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    """`Cache-Control: no-store` (and private, no-cache) on every response under NO_STORE_PATH_PREFIXES.

    The admin already marks its own views so, but not every response under /admin/ comes from one of
    them (a 404, a redirect of the login), and the API marks nothing: a shared proxy or the browser's
    disk would otherwise keep a child's record, an export or a list's entries after the session ended.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path_info.startswith(tuple(settings.NO_STORE_PATH_PREFIXES)):
            add_never_cache_headers(response)
        return response


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, for counting failed logins per address (django-axes).

    With TRUSTED_PROXY_COUNT proxies in front, each appends the address it got the request from to
    X-Forwarded-For, so the client is the address that many places from the right; anything further
    left was written by the client and proves nothing. Without proxies it is the peer's address.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
