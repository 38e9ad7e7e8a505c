"""Rate limits as a partner meets them: exact under concurrency (counted in the real Redis), per key,
per address for requests that fail to authenticate, and announced on every answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.core.cache import cache, caches
from rest_framework.test import APIClient

from core.cache import ResilientRedisCache, count_in_window
from tests.factories import OrganisationFactory
from tracker.api.throttling import count_request
from tracker.models import Organisation
from tracker.services.partners import api_key_issue


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()


def test_the_suite_counts_in_redis():
    assert isinstance(caches["default"], ResilientRedisCache), "run these with CACHE_URL=redis://…"
    assert caches["default"].count_in_window("probe", 60)[0] == 1
    assert caches["default"]._fallback.get("probe") is None, "counted in Redis, not the fallback"


def redis_cache() -> ResilientRedisCache:
    backend = caches["default"]
    assert isinstance(backend, ResilientRedisCache), "run these with CACHE_URL=redis://…"
    return backend


def test_the_cache_keeps_its_redis_client_instead_of_making_one_per_call():
    client = redis_cache()._cache
    assert client.get_client(write=True) is client.get_client(write=True)
    assert client.get_client() is client.get_client(write=True), "one server: reads and writes share it"


def test_a_window_is_counted_by_its_script_s_digest_not_its_text(monkeypatch):
    assert count_in_window("ratelimit:digest", 60)[0] == 1

    def text_sent(*args, **kwargs):
        raise AssertionError("the script's text was sent again (EVAL)")

    monkeypatch.setattr(redis.Redis, "eval", text_sent)
    assert count_in_window("ratelimit:digest", 60)[0] == 2
    assert redis_cache()._fallback.get("ratelimit:digest") is None, "counted in Redis, not the fallback"


def test_concurrent_hits_on_one_window_are_counted_exactly():
    with ThreadPoolExecutor(max_workers=32) as pool:
        counts = list(pool.map(lambda _: count_request("key:concurrency", "50/hour").count, range(320)))
    assert sorted(counts) == list(range(1, 321)), "every hit got its own number"
    assert sum(count <= 50 for count in counts) == 50


def test_a_window_starts_with_its_first_hit_and_says_when_it_ends():
    first, reset = count_in_window("ratelimit:window", 60)
    again, reset_again = count_in_window("ratelimit:window", 60)
    assert (first, again) == (1, 2)
    assert 59 <= reset <= 60 and reset_again <= reset


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_thirty_two_threads_against_the_live_server_get_exactly_the_limit(live_server, settings):
    settings.API_RATE_LIMIT = "20/hour"
    organisation = OrganisationFactory(name="Concurrent Partner", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="burst", scopes=["read"], actor=None)
    cache.clear()

    def call(_: int) -> int:
        return requests.get(f"{live_server.url}/api/v1/organisations/", timeout=60,
                            headers={"Authorization": f"Bearer {key}"}).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        codes = list(pool.map(call, range(64)))
    assert codes.count(200) == 20
    assert codes.count(429) == 44


@pytest.mark.django_db
def test_every_answer_says_where_the_key_stands(settings):
    settings.API_RATE_LIMIT = "3/minute"
    organisation = OrganisationFactory(name="Counted Partner", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="k", scopes=["read"], actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    answers = [client.get("/api/v1/organisations/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a["RateLimit-Limit"] == "3" for a in answers)
    assert all(1 <= int(a["RateLimit-Reset"]) <= 60 for a in answers)
    assert "Retry-After" not in answers[0]
    limited = answers[-1]
    assert limited["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["type"].endswith("/api/v1/problems/rate-limited/")
    # A 4xx of the key's own counts too, and says so.
    assert client.get("/api/v1/cases/", {"colour": "red"})["RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_failed_authentication_is_limited_per_address(settings):
    settings.API_UNAUTHENTICATED_RATE_LIMIT = "3/minute"
    settings.API_RATE_LIMIT = "100/minute"
    organisation = OrganisationFactory(name="Honest Partner", kind=Organisation.Kind.PARTNER)
    _, good_key = api_key_issue(organisation=organisation, name="k", scopes=["read"], actor=None)
    guesser = APIClient(REMOTE_ADDR="203.0.113.9")
    codes = []
    for header in ("Bearer ctk_000000000000_wrong", "Bearer nonsense", None, "Bearer ctk_000000000000_again"):
        guesser.credentials(**({"HTTP_AUTHORIZATION": header} if header else {}))
        response = guesser.get("/api/v1/cases/")
        codes.append(response.status_code)
    assert codes == [401, 401, 401, 429]
    assert response["Content-Type"] == "application/problem+json" and int(response["Retry-After"]) >= 1
    assert response["RateLimit-Limit"] == "3" and response["RateLimit-Remaining"] == "0"

    elsewhere = APIClient(REMOTE_ADDR="198.51.100.7")
    elsewhere.credentials(HTTP_AUTHORIZATION="Bearer ctk_000000000000_wrong")
    assert elsewhere.get("/api/v1/cases/").status_code == 401, "another address has its own count"
    honest = APIClient(REMOTE_ADDR="203.0.113.9")
    honest.credentials(HTTP_AUTHORIZATION=f"Bearer {good_key}")
    assert honest.get("/api/v1/cases/").status_code == 200, "a good key is counted by its key, not the address"
