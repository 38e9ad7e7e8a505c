"""The partner API's contract at its edges, as a partner's client meets it: what is refused and how,
request sizes, conditional requests, and the error catalogue every problem points to."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.core.cache import cache
from django.test import Client

from tests.tracker.test_api import Partner, make_partner
from tracker.api.errors import PROBLEM_TYPES
from tracker.models import Reply, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha() -> Partner:
    return make_partner("Alpha Tracing", "Шевченко", restricted=False)


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    cache.clear()


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("http") and "/api/v1/problems/" in body["type"]
    if field is not None:
        assert field in [error["field"] for error in body.get("errors", [])], body
    return body


def deep(levels: int) -> str:
    return '{"received_on": "2025-07-10", "outcomes": ' + "[" * levels + "]" * levels + "}"


# --- bodies: nesting, size, JSON only --------------------------------------------------------------

@pytest.mark.parametrize("method", ["post", "patch"])
def test_deeply_nested_json_is_refused_as_a_bad_request(alpha, method):
    case_url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    url = f"/api/v1/lists/{alpha.handover_list.pk}/replies/" if method == "post" else case_url
    headers = {"HTTP_IF_MATCH": alpha.client.get(case_url)["ETag"]} if method == "patch" else {}
    for levels in (1000, 100_000):
        response = getattr(alpha.client, method)(url, deep(levels), content_type="application/json", **headers)
        assert_problem(response, 400)
    assert not Reply.objects.exists()


def test_a_body_over_the_size_limit_is_413_problem_json(alpha, settings):
    url = f"/api/v1/lists/{alpha.handover_list.pk}/replies/"
    padding = "x" * (10 * 1024 * 1024)
    body = json.dumps({"received_on": "2025-07-10", "notes": padding, "outcomes": [{"position": 1,
                                                                                    "outcome": "located"}]})
    assert_problem(alpha.client.post(url, body, content_type="application/json"), 413)
    assert not Reply.objects.exists()


def test_form_and_multipart_bodies_are_refused_415(alpha):
    url = f"/api/v1/lists/{alpha.handover_list.pk}/replies/"
    assert_problem(alpha.client.post(url, {"received_on": "2025-07-10"}, format="multipart"), 415)
    assert_problem(alpha.client.post(url, "received_on=2025-07-10",
                                     content_type="application/x-www-form-urlencoded"), 415)


# --- strict bodies and filters ---------------------------------------------------------------------

def test_unknown_fields_in_a_body_are_refused_naming_them(alpha):
    url = f"/api/v1/lists/{alpha.handover_list.pk}/replies/"
    response = alpha.client.post(url, {"received_on": "2025-07-10", "recieved_by": "x",
                                       "outcomes": [{"position": 1, "outcome": "located", "colour": "red"}]})
    body = assert_problem(response, 400)
    assert {e["field"] for e in body["errors"]} == {"recieved_by", "outcomes[0].colour"}
    assert not Reply.objects.exists()

    case_url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    etag = alpha.client.get(case_url)["ETag"]
    patched = alpha.client.patch(case_url, {"last_known_location": "Taganrog", "status": "closed"}, HTTP_IF_MATCH=etag)
    assert_problem(patched, 400, "status")

    hook = alpha.client.post("/api/v1/webhooks/", {"url": "https://example.org/h", "secret": "s" * 20,
                                                   "is_admin": True})
    assert_problem(hook, 400, "is_admin")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(("url", "query", "field"), [
    ("/api/v1/cases/", {"flagged": "maybe"}, "flagged"),
    ("/api/v1/cases/", {"overdue": "yes please"}, "overdue"),
    ("/api/v1/cases/", {"page_size": "abc"}, "page_size"),
    ("/api/v1/cases/", {"page_size": "0"}, "page_size"),
    ("/api/v1/cases/", {"page_size": "100000"}, "page_size"),
    ("/api/v1/cases/", {"colour": "red"}, "colour"),
    ("/api/v1/cases/", {"ordering": "family_name"}, "ordering"),
    ("/api/v1/cases/", {"updated_since": "last tuesday"}, "updated_since"),
    ("/api/v1/lists/", {"overdue": "2"}, "overdue"),
    ("/api/v1/replies/", {"since": "2025-01-01"}, "since"),
    ("/api/v1/organisations/", {"q": "x"}, "q"),
])
def test_unknown_or_bad_query_parameters_are_refused_naming_them(alpha, url, query, field):
    assert_problem(alpha.client.get(url, query), 400, field)


def test_good_filters_still_answer(alpha):
    for query in ({"flagged": "false"}, {"flagged": "true"}, {"page_size": "2"}, {"ordering": "-id"},
                  {"status": ["open", "on_list"]}):
        assert alpha.client.get("/api/v1/cases/", query).status_code == 200, query


def forge(cursor_url: str, position: str) -> str:
    parsed = urlparse(cursor_url)
    cursor = parse_qs(parsed.query)["cursor"][0]
    fields = parse_qs(base64.b64decode(cursor).decode())
    fields["p"] = [position]
    forged = base64.b64encode(urlencode(fields, doseq=True).encode()).decode()
    return f"{parsed.path}?{urlencode({'cursor': forged, 'page_size': 1})}"


@pytest.mark.parametrize("position", ["not a date", "2025-13-45T99:00:00", "9999-12-31T23:59:59-23:59", "1" * 400])
def test_a_forged_or_invalid_cursor_is_400(alpha, position):
    next_url = alpha.client.get("/api/v1/cases/", {"page_size": 1}).json()["next"]
    assert_problem(alpha.client.get(forge(next_url, position)), 400, "cursor")
    assert_problem(alpha.client.get("/api/v1/cases/", {"cursor": "!!not base64!!"}), 400, "cursor")


def test_a_genuine_cursor_still_pages(alpha):
    first = alpha.client.get("/api/v1/cases/", {"page_size": 1}).json()
    second = alpha.client.get(first["next"]).json()
    assert [r["id"] for r in first["results"]] != [r["id"] for r in second["results"]]


# --- conditional requests --------------------------------------------------------------------------

def test_if_match_takes_a_list_holding_the_current_etag(alpha):
    url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    etag = alpha.client.get(url)["ETag"]
    ok = alpha.client.patch(url, {"last_known_location": "Taganrog"}, HTTP_IF_MATCH=f'"stale", {etag}')
    assert ok.status_code == 200, ok.content
    assert_problem(alpha.client.patch(url, {"last_known_location": "x"}, HTTP_IF_MATCH=f'"a", {etag}'), 412)
    # If-Match compares strongly: a weak tag never matches.
    new = ok["ETag"]
    assert_problem(alpha.client.patch(url, {"last_known_location": "x"}, HTTP_IF_MATCH=f"W/{new}"), 412)


def test_if_none_match_with_the_current_etag_gives_304(alpha):
    url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    etag = alpha.client.get(url)["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = alpha.client.get(url, HTTP_IF_NONE_MATCH=header)
        assert response.status_code == 304, header
        assert response["ETag"] == etag and not response.content
    assert alpha.client.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200


# --- the error catalogue ---------------------------------------------------------------------------

def test_every_problem_type_resolves_to_a_page_of_the_catalogue(alpha):
    browser = Client()
    answered = alpha.client.get("/api/v1/cases/", {"flagged": "maybe"}).json()["type"]
    assert browser.get(urlparse(answered).path).status_code == 200
    for slug, problem_type in PROBLEM_TYPES.items():
        page = browser.get(f"/api/v1/problems/{slug}/")
        assert page.status_code == 200, slug
        assert str(problem_type.title) in page.content.decode()
    assert browser.get("/api/v1/problems/").status_code == 200
    assert browser.get("/api/v1/problems/no-such-problem/").status_code == 404


@pytest.mark.parametrize(("method", "url", "status"), [
    ("get", "/api/v1/cases/999999/", 404),
    ("get", "/api/v1/no-such-endpoint/", 404),
    ("delete", "/api/v1/cases/1/", 405),
])
def test_every_4xx_is_problem_json(alpha, method, url, status):
    assert_problem(getattr(alpha.client, method)(url), status)


# --- webhook endpoints: deleting one ---------------------------------------------------------------

def test_a_partner_deletes_its_webhook_endpoint_which_is_kept_in_history(alpha):
    made = alpha.client.post("/api/v1/webhooks/", {"url": "https://example.org/hook", "secret": "s" * 20}).json()
    other = make_partner("Beta Rights Group", "Бондаренко", restricted=True)
    assert_problem(other.client.delete(f"/api/v1/webhooks/{made['id']}/"), 404)
    assert alpha.client.delete(f"/api/v1/webhooks/{made['id']}/").status_code == 204
    assert_problem(alpha.client.get(f"/api/v1/webhooks/{made['id']}/"), 404)
    assert alpha.client.get("/api/v1/webhooks/").json()["results"] == []
    assert_problem(alpha.client.delete(f"/api/v1/webhooks/{made['id']}/"), 404)
    endpoint = WebhookEndpoint.objects.get(pk=made["id"])
    assert endpoint.deleted_at is not None and not endpoint.is_active
    last = endpoint.history.order_by("-history_date").first()
    assert last.deleted_at is not None and last.history_user == alpha.organisation.service_user


@pytest.mark.parametrize("url", ["/api/v1/cases/", "/api/v1/lists/", "/api/v1/replies/"])
def test_a_typed_filter_sent_empty_is_refused(alpha, url):
    assert_problem(alpha.client.get(url, {"updated_since": ""}), 400, "updated_since")


def test_an_unknown_format_is_400_and_a_format_suffix_is_no_url(alpha):
    assert_problem(alpha.client.get("/api/v1/cases/export/", {"format": "pdf"}), 400, "format")
    assert_problem(alpha.client.get(f"/api/v1/cases/{alpha.cases[0].pk}.json/"), 404)


@pytest.mark.parametrize(("body", "field"), [
    ({"last_known_location": 5}, "last_known_location"),
    ({"last_known_location": None}, "last_known_location"),
    ({"last_known_on": 20250101}, "last_known_on"),
])
def test_a_body_value_of_the_wrong_json_type_is_refused(alpha, body, field):
    url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    assert_problem(alpha.client.patch(url, body, HTTP_IF_MATCH=alpha.client.get(url)["ETag"]), 400, field)
    hook = alpha.client.post("/api/v1/webhooks/", {"url": "https://example.org/h", "secret": "s" * 20,
                                                   "is_active": 0})
    assert_problem(hook, 400, "is_active")
    reply = alpha.client.post(f"/api/v1/lists/{alpha.handover_list.pk}/replies/", {
        "received_on": "2025-07-10", "outcomes": [{"position": "1", "outcome": "located"}]})
    assert_problem(reply, 400, "outcomes[0].position")


def test_ordering_takes_offered_fields_only_as_written(alpha):
    assert alpha.client.get("/api/v1/cases/", {"ordering": "-updated_at,id"}).status_code == 200
    for bad in ("id, updated_at", "", "--id", "child__family_name"):
        assert_problem(alpha.client.get("/api/v1/cases/", {"ordering": bad}), 400, "ordering")


def test_a_filter_set_given_none_of_its_parameters_leaves_the_records_as_they_are(alpha):
    # What lets the API's filter backend skip a filter set's form when none of its parameters is given.
    from django.test import RequestFactory

    from cases.models import Case
    from tracker.api import filters
    from tracker.models import HandoverList, ListEntry, WebhookDelivery

    request = RequestFactory().get("/api/v1/cases/", HTTP_AUTHORIZATION=f"Bearer {alpha.key}")
    for filterset, model in ((filters.CaseFilter, Case), (filters.HandoverListFilter, HandoverList),
                             (filters.ListEntryFilter, ListEntry), (filters.ReplyFilter, Reply),
                             (filters.WebhookDeliveryFilter, WebhookDelivery)):
        assert not any(given.extra.get("required") for given in filterset.base_filters.values())
        queryset = model.objects.all()
        unfiltered = filterset(data={}, queryset=queryset, request=request)
        assert unfiltered.is_valid(), (filterset.__name__, unfiltered.errors)
        assert str(unfiltered.qs.query) == str(queryset.query), filterset.__name__
    # A filter set with a required parameter is always checked: the removals feed wants `since`.
    assert filters.RemovedCaseFilter.base_filters["since"].extra.get("required")
    missing = alpha.client.get("/api/v1/cases/removed/")
    assert missing.status_code == 400, missing.content[:300]
    assert [error["field"] for error in missing.json()["errors"]] == ["since"]
