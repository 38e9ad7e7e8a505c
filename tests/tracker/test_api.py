"""The partner API from a partner's side: keys, what each partner sees, replies, updates, errors."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from cases.models import Case, CaseEvent, Child, RecordAccess
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory
from tracker import selectors
from tracker.models import ApiKey, CaseShare, Flag, HandoverList, ListEntry, Organisation, Reply
from tracker.services.exchange import list_add_cases, list_hand_over
from tracker.services.flags import sweep_deadlines
from tracker.services.partners import (
    api_key_authenticate,
    api_key_issue,
    api_key_revoke,
    case_shares_revoke,
)

pytestmark = pytest.mark.django_db
HANDED_OVER = datetime.date(2025, 6, 2)
DUE = datetime.date(2025, 7, 2)


@dataclass
class Partner:
    organisation: Organisation
    key: str
    client: APIClient
    cases: list[Case]
    handover_list: HandoverList


def client_with(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def make_partner(name: str, family: str, *, restricted: bool, scopes=("read", "contribute")) -> Partner:
    organisation = OrganisationFactory(name=name, kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="sync", scopes=scopes, actor=None)
    cases = [CaseFactory(child=ChildFactory(family_name=family, given_name=given, guardian_name=f"Guardian of {given}"))
             for given in ("Олександр", "Марія", "Кирило")]
    for case in cases:
        CaseShare.objects.create(case=case, organisation=organisation, include_restricted=restricted,
                                 can_contribute=True)
    sender = OrganisationFactory(name="Ukrainian delegation")
    handover_list = HandoverListFactory(sender=sender, recipient=organisation)
    list_add_cases(handover_list=handover_list, cases=cases, actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=None)
    return Partner(organisation, key, client_with(key), [Case.objects.get(pk=c.pk) for c in cases], handover_list)


@pytest.fixture
def alpha() -> Partner:
    return make_partner("Alpha Tracing", "Шевченко", restricted=False)


@pytest.fixture
def beta() -> Partner:
    return make_partner("Beta Rights Group", "Бондаренко", restricted=True)


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    cache.clear()


def ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


# --- keys ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "said"), [
    (None, "Authentication credentials were not provided."),
    ("Bearer nonsense", "malformed API key"),
    ("Bearer ctk_000000000000_notthesecret", "unknown API key"),
])
def test_requests_without_a_good_key_are_refused(alpha, header, said):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/cases/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == said


def test_a_revoked_or_expired_key_is_refused(alpha):
    key = ApiKey.objects.get(organisation=alpha.organisation)
    api_key_revoke(key=key)
    assert alpha.client.get("/api/v1/cases/").json()["detail"] == "this API key was revoked"

    _, expiring = api_key_issue(organisation=alpha.organisation, name="old", scopes=["read"], actor=None,
                                expires_at=timezone.now() - datetime.timedelta(seconds=1))
    response = client_with(expiring).get("/api/v1/cases/")
    assert (response.status_code, response.json()["detail"]) == (401, "this API key has expired")


def test_a_refused_key_is_told_why_in_the_language_asked_for(alpha):
    api_key_revoke(key=ApiKey.objects.get(organisation=alpha.organisation))
    said = {language: alpha.client.get("/api/v1/cases/", HTTP_ACCEPT_LANGUAGE=language).json()["detail"]
            for language in ("uk", "en")}
    assert said == {"uk": "цей ключ API відкликано", "en": "this API key was revoked"}
    malformed = client_with("nonsense").get("/api/v1/cases/", HTTP_ACCEPT_LANGUAGE="uk")
    assert (malformed.status_code, malformed.json()["detail"]) == (401, "ключ API має неправильний вигляд")


def test_a_wrong_key_for_a_real_prefix_is_refused(alpha):
    prefix = alpha.key.split("_")[1]
    response = client_with(f"ctk_{prefix}_{'x' * 43}").get("/api/v1/cases/")
    assert (response.status_code, response.json()["detail"]) == (401, "unknown API key")


def test_the_key_is_not_stored_in_clear(alpha):
    secret = alpha.key.split("_", 2)[2]
    key = ApiKey.objects.get(organisation=alpha.organisation)
    stored = [str(v) for v in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert not any(secret in value for value in stored)
    assert key.last_used_at is None
    alpha.client.get("/api/v1/cases/")
    key.refresh_from_db()
    assert key.last_used_at is not None


def concrete_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_key_comes_whole_with_its_organisation_and_their_account(alpha, django_assert_num_queries):
    key = ApiKey.objects.get(organisation=alpha.organisation)
    expected = ApiKey.objects.select_related("organisation__service_user").get(pk=key.pk)
    found = api_key_authenticate(alpha.key)
    with django_assert_num_queries(0):
        account = found.organisation.service_user
        assert account is not None and expected.organisation.service_user is not None
        assert concrete_values(found) == concrete_values(expected)
        assert concrete_values(found.organisation) == concrete_values(expected.organisation)
        assert concrete_values(account) == concrete_values(expected.organisation.service_user)
        assert account.partner_organisation is found.organisation
        assert not (found.get_deferred_fields() or found.organisation.get_deferred_fields()
                    or account.get_deferred_fields())


@pytest.mark.parametrize("change", [{"is_active": False}, {"service_user": None}])
def test_a_suspended_organisation_s_keys_are_refused(alpha, change):
    Organisation.objects.filter(pk=alpha.organisation.pk).update(**change)
    response = alpha.client.get("/api/v1/cases/")
    assert (response.status_code, response.json()["detail"]) == (401, "this organisation's access is suspended")


@pytest.mark.parametrize("prepared", [True, False])
def test_the_key_is_read_by_one_statement_prepared_on_the_connection(alpha, settings, prepared):
    # Prepared (where API_PREPARED_STATEMENTS allows it), and read again on every request: a key
    # revoked after its statement was prepared is refused at once.
    settings.API_PREPARED_STATEMENTS = prepared
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert alpha.client.get("/api/v1/organisations/").status_code == 200
        assert sum('"tracker_apikey"' in query["sql"] for query in queries.captured_queries) <= 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ['%"tracker_apikey"%'])
        assert (cursor.fetchone()[0] > 0) is prepared
    api_key_revoke(key=ApiKey.objects.get(organisation=alpha.organisation))
    response = alpha.client.get("/api/v1/organisations/")
    assert (response.status_code, response.json()["detail"]) == (401, "this API key was revoked")


def test_a_read_only_key_cannot_post_a_reply(alpha):
    _, read_only = api_key_issue(organisation=alpha.organisation, name="ro", scopes=["read"], actor=None)
    response = client_with(read_only).post(f"/api/v1/lists/{alpha.handover_list.pk}/replies/", {
        "received_on": "2025-07-10", "outcomes": [{"position": 1, "outcome": "located"}]}, format="json")
    assert response.status_code == 403
    assert not Reply.objects.exists()


# --- isolation ----------------------------------------------------------------------------------------

def test_each_partner_lists_only_the_cases_shared_with_it(alpha, beta):
    assert ids(alpha.client.get("/api/v1/cases/")) == {c.pk for c in alpha.cases}
    assert ids(beta.client.get("/api/v1/cases/")) == {c.pk for c in beta.cases}


def test_the_cases_a_partner_sees_follow_its_shares_from_one_request_to_the_next(alpha, beta):
    # The query of what a partner may see is built once per organisation, not per request; the shares
    # it reads are the ones of the moment it runs.
    selectors._cases_shared_with.cache_clear()
    assert ids(alpha.client.get("/api/v1/cases/")) == {c.pk for c in alpha.cases}
    shared = beta.cases[0]
    CaseShare.objects.create(case=shared, organisation=alpha.organisation)
    assert ids(alpha.client.get("/api/v1/cases/")) == {c.pk for c in alpha.cases} | {shared.pk}
    case_shares_revoke(share_ids=CaseShare.objects.filter(organisation=alpha.organisation, case__in=alpha.cases[:2])
                       .values_list("pk", flat=True), actor=None)
    assert ids(alpha.client.get("/api/v1/cases/")) == {alpha.cases[2].pk, shared.pk}
    assert ids(beta.client.get("/api/v1/cases/")) == {c.pk for c in beta.cases}
    assert selectors._cases_shared_with.cache_info().misses == 2, "built once for each organisation"


def test_another_partners_records_answer_404_on_every_endpoint(alpha, beta):
    theirs_case, theirs_list = beta.cases[0].pk, beta.handover_list.pk
    reply_from_beta = beta.client.post(f"/api/v1/lists/{theirs_list}/replies/", {
        "received_on": "2025-07-10", "outcomes": [{"position": 1, "outcome": "located"}]}, format="json")
    assert reply_from_beta.status_code == 201
    for url in (f"/api/v1/cases/{theirs_case}/", f"/api/v1/cases/{theirs_case}/timeline/",
                f"/api/v1/cases/{theirs_case}/flags/", f"/api/v1/lists/{theirs_list}/",
                f"/api/v1/lists/{theirs_list}/entries/", f"/api/v1/replies/{reply_from_beta.json()['id']}/",
                "/api/v1/cases/999999/"):
        response = alpha.client.get(url)
        assert response.status_code == 404, url
        assert response.json()["title"] == "Not found"
    assert alpha.client.patch(f"/api/v1/cases/{theirs_case}/", {"last_known_location": "x"},
                              HTTP_IF_MATCH="*").status_code == 404
    assert alpha.client.post(f"/api/v1/lists/{theirs_list}/replies/", {
        "received_on": "2025-07-10", "outcomes": [{"position": 2, "outcome": "located"}]}).status_code == 404
    assert ids(alpha.client.get("/api/v1/replies/")) == set()
    assert ids(alpha.client.get("/api/v1/lists/")) == {alpha.handover_list.pk}


def test_filters_and_search_leak_nothing_of_another_partner(alpha, beta):
    assert ids(alpha.client.get("/api/v1/cases/", {"q": "Bondarenko"})) == set()
    assert ids(alpha.client.get("/api/v1/cases/", {"q": "Бондаренко"})) == set()
    assert ids(beta.client.get("/api/v1/cases/", {"q": "Bondarenko"})) == {c.pk for c in beta.cases}
    # Another partner's list and a list that does not exist filter down to the same nothing.
    hidden = alpha.client.get("/api/v1/cases/", {"list": beta.handover_list.pk})
    missing = alpha.client.get("/api/v1/cases/", {"list": 999999})
    assert hidden.status_code == missing.status_code == 200
    assert ids(hidden) == ids(missing) == set()
    assert ids(alpha.client.get("/api/v1/cases/", {"list": alpha.handover_list.pk})) == {c.pk for c in alpha.cases}
    by_org = alpha.client.get("/api/v1/cases/", {"organisation": beta.organisation.pk})
    assert ids(by_org) == set()
    lists = alpha.client.get("/api/v1/lists/", {"organisation": beta.organisation.pk})
    assert ids(lists) == set()


def test_restricted_fields_only_where_the_share_grants_them(alpha, beta):
    plain = alpha.client.get(f"/api/v1/cases/{alpha.cases[0].pk}/").json()
    granted = beta.client.get(f"/api/v1/cases/{beta.cases[0].pk}/").json()
    for field in Child.RESTRICTED_FIELDS:
        assert field not in plain["child"]
        assert field in granted["child"]
    assert plain["restricted_fields_shared"] is False
    assert granted["child"]["guardian_name"] == "Guardian of Олександр"
    listed = alpha.client.get("/api/v1/cases/").json()["results"]
    assert all("guardian_name" not in row["child"] for row in listed)


def test_list_entries_show_case_ids_only_for_shared_cases(alpha):
    stranger = CaseFactory()
    draft = HandoverListFactory(recipient=alpha.organisation)
    list_add_cases(handover_list=draft, cases=[stranger, alpha.cases[0]], actor=None)
    list_hand_over(handover_list=draft, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=None)
    rows = alpha.client.get(f"/api/v1/lists/{draft.pk}/entries/").json()["results"]
    assert {row["position"]: row["case"] for row in rows} == {1: None, 2: alpha.cases[0].pk}
    assert all("guardian_name" not in row["child"] for row in rows)


def test_a_draft_list_addressed_to_a_partner_is_not_shown(alpha):
    draft = HandoverListFactory(recipient=alpha.organisation)
    assert alpha.client.get(f"/api/v1/lists/{draft.pk}/").status_code == 404


def test_case_workers_see_everything_through_their_session(alpha, beta, admin_user):
    client = APIClient()
    client.force_login(admin_user)
    assert ids(client.get("/api/v1/cases/")) >= {c.pk for c in alpha.cases + beta.cases}
    detail = client.get(f"/api/v1/cases/{alpha.cases[0].pk}/").json()
    assert "guardian_name" in detail["child"]


# --- the read log -------------------------------------------------------------------------------------

def test_every_read_of_a_child_is_logged_with_organisation_and_key(alpha):
    case = alpha.cases[0]
    alpha.client.get(f"/api/v1/cases/{case.pk}/")
    alpha.client.get("/api/v1/cases/")
    alpha.client.get(f"/api/v1/lists/{alpha.handover_list.pk}/entries/")
    prefix = alpha.key.split("_")[1]
    logged = RecordAccess.objects.filter(channel="api", partner_id=alpha.organisation.pk, api_key_prefix=prefix)
    assert logged.filter(child_id=case.child_id, path=f"/api/v1/cases/{case.pk}/").count() == 1
    assert logged.filter(path="/api/v1/cases/").count() == 3
    assert logged.filter(path=f"/api/v1/lists/{alpha.handover_list.pk}/entries/").count() == 3
    assert all("Alpha Tracing" in row.client for row in logged)


def test_every_statement_of_a_page_passes_the_connection_s_execute_wrappers(alpha):
    # Instrumentation installed with connection.execute_wrapper sees the key check and the page's
    # statement, which run outside the ORM, as it sees the ORM's own.
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    alpha.client.get("/api/v1/organisations/")  # the key's last-used time is written once a minute, not here
    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(spy):
        assert alpha.client.get("/api/v1/cases/").status_code == 200
    assert len(seen) == len(queries) == 3
    assert any('"tracker_apikey"' in sql for sql in seen) and any("cases_recordaccess" in sql for sql in seen)


def test_a_page_of_cases_and_its_read_log_are_one_statement(alpha):
    alpha.client.get("/api/v1/organisations/")  # the key's last-used time is written once a minute, not here
    with CaptureQueriesContext(connection) as queries:
        page = alpha.client.get("/api/v1/cases/?page_size=2").json()["results"]
    writes = [query["sql"] for query in queries.captured_queries if "cases_recordaccess" in query["sql"]]
    assert len(writes) == 1 and "json_build_object" in writes[0]
    logged = RecordAccess.objects.filter(path="/api/v1/cases/?page_size=2").order_by("pk")
    assert [row.child_id for row in logged] == [Case.objects.get(pk=case["id"]).child_id for case in page]
    assert {(row.channel, row.partner_id, row.user_id) for row in logged} == {
        ("api", alpha.organisation.pk, alpha.organisation.service_user_id)}
    out = io.StringIO()
    call_command("verify_audit_log", stdout=out)
    assert out.getvalue().startswith(f"OK: {RecordAccess.objects.count()} rows")


# --- replies ------------------------------------------------------------------------------------------

def post_reply(partner: Partner, outcomes, *, received_on="2025-07-10", **headers):
    return partner.client.post(f"/api/v1/lists/{partner.handover_list.pk}/replies/",
                               {"received_on": received_on, "reference": "R-1", "outcomes": outcomes},
                               format="json", **headers)


def test_a_partner_posts_a_reply_and_the_case_and_flags_move(alpha):
    sweep_deadlines(today=datetime.date(2025, 7, 5))
    first = alpha.handover_list.entries.get(position=1)
    response = post_reply(alpha, [{"entry": first.pk, "outcome": "located", "reported_location": "Taganrog"},
                                  {"position": 2, "outcome": "not_found"}])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [(o["position"], o["outcome"]) for o in body["outcomes"]] == [(1, "located"), (2, "not_found")]
    first.refresh_from_db()
    assert first.reply_state == ListEntry.ReplyState.ANSWERED
    assert first.case.status == Case.Status.VERIFYING
    assert not Flag.objects.filter(entry=first, resolved_at__isnull=True).exists()
    event = CaseEvent.objects.get(case=first.case, kind=CaseEvent.Kind.REPLY_RECORDED)
    assert event.actor == alpha.organisation.service_user, "the timeline says which partner answered"


def test_a_partners_further_claim_is_numbered_and_counted(alpha):
    assert post_reply(alpha, [{"position": 1, "outcome": "not_found"}]).status_code == 201
    response = post_reply(alpha, [{"position": 1, "outcome": "located"}], received_on="2025-07-20")
    assert response.status_code == 201, response.json()
    assert [(o["position"], o["claim_number"]) for o in response.json()["outcomes"]] == [(1, 2)]
    entries = alpha.client.get(f"/api/v1/lists/{alpha.handover_list.pk}/entries/").json()["results"]
    assert {(e["position"], e["last_outcome"], e["claim_count"]) for e in entries if e["claim_count"]} == {
        (1, "located", 2)}
    listed = alpha.client.get("/api/v1/lists/").json()["results"]
    assert [item["claimed"] for item in listed if item["id"] == alpha.handover_list.pk] == [1]


@pytest.mark.parametrize(("outcomes", "received_on", "field"), [
    ([{"position": 1, "outcome": "located"}, {"position": 42, "outcome": "located"}], "2025-07-10", "outcomes[1]"),
    ([{"position": 1, "outcome": "teleported"}], "2025-07-10", "outcomes[0].outcome"),
    ([{"position": 1, "outcome": "located"}], "2999-01-01", "received_on"),
    ([{"outcome": "located"}], "2025-07-10", "outcomes[0]"),
    ([], "2025-07-10", "outcomes"),
])
def test_a_bad_reply_changes_nothing_and_names_the_field(alpha, outcomes, received_on, field):
    before = list(ListEntry.objects.values_list("reply_state", flat=True))
    response = post_reply(alpha, outcomes, received_on=received_on)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not Reply.objects.exists()
    assert list(ListEntry.objects.values_list("reply_state", flat=True)) == before


def test_only_the_recipient_may_answer_a_list(alpha):
    shown = HandoverListFactory(sender=alpha.organisation)
    list_add_cases(handover_list=shown, cases=[CaseFactory()], actor=None)
    list_hand_over(handover_list=shown, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=None)
    response = alpha.client.post(f"/api/v1/lists/{shown.pk}/replies/", {
        "received_on": "2025-07-10", "outcomes": [{"position": 1, "outcome": "located"}]}, format="json")
    assert response.status_code == 403


def test_the_same_idempotency_key_twice_creates_one_reply(alpha):
    outcomes = [{"position": 3, "outcome": "now_adult"}]
    first = post_reply(alpha, outcomes, HTTP_IDEMPOTENCY_KEY="reply-2025-07-10-a")
    second = post_reply(alpha, outcomes, HTTP_IDEMPOTENCY_KEY="reply-2025-07-10-a")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Reply.objects.count() == 1
    changed = post_reply(alpha, [{"position": 2, "outcome": "located"}], HTTP_IDEMPOTENCY_KEY="reply-2025-07-10-a")
    assert changed.status_code == 422
    assert Reply.objects.count() == 1


def test_a_refused_request_does_not_use_up_its_idempotency_key(alpha):
    assert post_reply(alpha, [{"position": 9, "outcome": "located"}], HTTP_IDEMPOTENCY_KEY="k1").status_code == 400
    assert post_reply(alpha, [{"position": 1, "outcome": "located"}], HTTP_IDEMPOTENCY_KEY="k1").status_code == 201


# --- optimistic concurrency ---------------------------------------------------------------------------

def test_patch_with_the_current_etag_updates_and_a_stale_one_gets_412(alpha):
    url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    etag = alpha.client.get(url)["ETag"]

    ok = alpha.client.patch(url, {"last_known_location": "Rostov-on-Don, boarding school"}, HTTP_IF_MATCH=etag)
    assert ok.status_code == 200, ok.json()
    assert ok.json()["child"]["last_known_location"] == "Rostov-on-Don, boarding school"
    assert ok["ETag"] != etag

    stale = alpha.client.patch(url, {"last_known_location": "Somewhere else"}, HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert Child.objects.get(pk=alpha.cases[0].child_id).last_known_location == "Rostov-on-Don, boarding school"
    assert alpha.client.patch(url, {"last_known_location": "x"}).status_code == 428
    timeline = alpha.client.get(f"{url}timeline/").json()
    assert timeline[-1]["kind"] == "note" and timeline[-1]["actor_kind"] == "partner"


def test_patch_needs_a_contributing_share(alpha):
    CaseShare.objects.filter(case=alpha.cases[0]).update(can_contribute=False)
    url = f"/api/v1/cases/{alpha.cases[0].pk}/"
    etag = alpha.client.get(url)["ETag"]
    assert alpha.client.patch(url, {"last_known_location": "x"}, HTTP_IF_MATCH=etag).status_code == 403


# --- sync, paging, speed ------------------------------------------------------------------------------

def test_updated_since_returns_only_what_changed(alpha):
    mark = timezone.now()
    url = f"/api/v1/cases/{alpha.cases[1].pk}/"
    alpha.client.patch(url, {"last_known_on": "2025-05-01"}, HTTP_IF_MATCH=alpha.client.get(url)["ETag"])
    assert ids(alpha.client.get("/api/v1/cases/", {"updated_since": mark.isoformat()})) == {alpha.cases[1].pk}


def test_cursor_pages_walk_every_case_once(alpha):
    for _ in range(7):
        CaseShare.objects.create(case=CaseFactory(), organisation=alpha.organisation)
    seen, url = [], "/api/v1/cases/?page_size=4"
    while url:
        page = alpha.client.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 10


def test_list_page_queries_do_not_grow_with_page_size(alpha):
    for _ in range(30):
        case = CaseFactory()
        CaseShare.objects.create(case=case, organisation=alpha.organisation)
        Flag.objects.create(kind=Flag.Kind.MANUAL, case=case, note="check")

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert alpha.client.get(url).status_code == 200
        return len(queries)

    alpha.client.get("/api/v1/organisations/")  # the key's last-used time is written once a minute, not here
    # The key; the page's cases; their JSON, children, entries on visible lists and open flags in one
    # statement, which writes the read log too. Whatever the page size.
    assert count("/api/v1/cases/?page_size=3") == count("/api/v1/cases/?page_size=30") == 3
    entries = f"/api/v1/lists/{alpha.handover_list.pk}/entries/"
    assert count(entries + "?page_size=1") == count(entries + "?page_size=3")


def test_the_sync_order_index_holds_all_of_a_page_s_keys():
    # A page's keys are the case's id, its time and its child's key, in the sync order: all in the
    # index, so that they need no visit to each case's row.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'case_sync_order_idx'")
        (definition,) = cursor.fetchone()
    assert definition.endswith("USING btree (updated_at, id) INCLUDE (child_id)")


def test_throttling_counts_per_key_and_answers_429(alpha, beta, settings):
    settings.API_RATE_LIMIT = "3/minute"
    codes = [alpha.client.get("/api/v1/organisations/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = alpha.client.get("/api/v1/organisations/")
    assert limited["Content-Type"] == "application/problem+json" and "Retry-After" in limited
    assert beta.client.get("/api/v1/organisations/").status_code == 200, "another key has its own count"


def test_schema_and_documentation_pages_are_served(alpha, admin_user):
    schema = alpha.client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/lists/{id}/replies/" in schema.json()["paths"]
    for page in ("/api/v1/schema/swagger/", "/api/v1/schema/redoc/"):
        response = alpha.client.get(page)
        assert response.status_code == 200 and b"<html" in response.content.lower()


# --- webhooks registration ----------------------------------------------------------------------------

def test_a_partner_registers_its_own_webhook_and_never_sees_the_secret_again(alpha, beta, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    refused = alpha.client.post("/api/v1/webhooks/", {"url": "http://example.org/hook", "secret": "s" * 20},
                                format="json")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "url"
    made = alpha.client.post("/api/v1/webhooks/", {"url": "https://example.org/hook", "secret": "s" * 20,
                                                   "events": ["entry.flagged"]}, format="json")
    assert made.status_code == 201, made.json()
    assert "secret" not in made.json()
    assert ids(alpha.client.get("/api/v1/webhooks/")) == {made.json()["id"]}
    assert ids(beta.client.get("/api/v1/webhooks/")) == set()
    assert beta.client.get(f"/api/v1/webhooks/{made.json()['id']}/").status_code == 404


@pytest.mark.parametrize("moment", ["1213-02-22T14:56:17-22:31", "0001-01-01T00:00:00+10:00"])
def test_updated_since_takes_any_offset_python_reads(alpha, moment):
    for url in ("/api/v1/cases/", "/api/v1/lists/", "/api/v1/replies/"):
        response = alpha.client.get(url, {"updated_since": moment})
        assert response.status_code == 200, (url, response.content)
