"""The page of cases written by PostgreSQL (`tracker.api.documents`) is the serializers' JSON: each
page is fetched as served and again through the serializers, for partners with and without restricted
fields, a flag on a list the partner may not read, a case worker, dates in summer and winter time,
names with quotes and line breaks, every filter and both directions of the cursor."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import DateTimeField, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from cases.models import Case, Child
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory
from tests.roles import make_case_worker
from tracker.api import documents
from tracker.api.views import CaseViewSet
from tracker.models import CaseShare, Flag, Organisation
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, reply_record
from tracker.services.flags import sweep_deadlines
from tracker.services.partners import api_key_issue

pytestmark = pytest.mark.django_db


def key_client(organisation: Organisation) -> APIClient:
    _, key = api_key_issue(organisation=organisation, name="sync", scopes=["read"], actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def register() -> dict[str, Any]:
    cache.clear()
    partner = OrganisationFactory(name="Gamma Tracing", kind=Organisation.Kind.PARTNER)
    other = OrganisationFactory(name="Delta Mediation", kind=Organisation.Kind.PARTNER)
    children = [
        ChildFactory(family_name="Шевченко", given_name="Олена", birth_date=datetime.date(2012, 1, 1),
                     birth_date_precision="year", guardian_name='Мати "Ганна"\nтел. 0501234567',
                     notes="back\\slash \u2028 and\ttab"),
        ChildFactory(family_name="Бондар", given_name="Іван", birth_date=datetime.date(2014, 3, 9),
                     birth_date_precision="month", last_known_location="Ростов",
                     last_known_on=datetime.date(2025, 5, 1)),
        ChildFactory(family_name="Коваль", given_name="Марія", birth_date=None, aliases=["Мария Коваль"]),
        ChildFactory(family_name="О'Коннор", given_name="Ян", birth_date=datetime.date(2011, 11, 30)),
    ]
    cases = [CaseFactory(child=child) for child in children]
    for n, case in enumerate(cases):
        CaseShare.objects.create(case=case, organisation=partner, include_restricted=n == 0, can_contribute=True)
    seen = HandoverListFactory(sender=OrganisationFactory(name="Delegation"), recipient=partner)
    unseen = HandoverListFactory(sender=OrganisationFactory(name="Delegation B"), recipient=other)
    for handover_list, listed in ((seen, cases[:3]), (unseen, cases[1:])):
        list_add_cases(handover_list=handover_list, cases=listed, actor=None)
        list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2),
                       response_due_on=datetime.date(2025, 7, 2), actor=None)
    reply_record(handover_list=seen, received_on=datetime.date(2025, 7, 20),
                 outcomes=[OutcomeInput(position=2, outcome="located", reported_location="Ростов")], actor=None)
    sweep_deadlines(today=datetime.date(2025, 8, 1))
    # Times in summer (+03:00) and in winter (+02:00), one to the whole second, one at the change of clocks.
    Case.objects.filter(pk=cases[0].pk).update(updated_at=datetime.datetime(2025, 7, 1, 9, 30, 5, 120000,
                                                                             tzinfo=datetime.UTC))
    Case.objects.filter(pk=cases[1].pk).update(updated_at=datetime.datetime(2025, 1, 15, 23, 0, 0,
                                                                             tzinfo=datetime.UTC))
    Child.objects.filter(pk=children[3].pk).update(updated_at=datetime.datetime(2024, 10, 27, 0, 59, 59, 1,
                                                                                 tzinfo=datetime.UTC))
    return {"partner": partner, "cases": cases, "unseen": unseen}


def both_ways(client: APIClient, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    served = client.get(url)
    assert served.status_code == 200, served.content[:300]
    with monkeypatch.context() as patch:
        patch.setattr(CaseViewSet, "page_written_by_database", lambda self, request: False)
        through_serializers = client.get(url)
    assert through_serializers.status_code == 200
    assert served["Content-Type"] == through_serializers["Content-Type"]
    return served.json(), through_serializers.json()


PAGES = ["/api/v1/cases/", "/api/v1/cases/?page_size=1", "/api/v1/cases/?flagged=true",
         "/api/v1/cases/?status=awaiting_reply&status=reply_received", "/api/v1/cases/?q=Коваль",
         "/api/v1/cases/?ordering=-updated_at", "/api/v1/cases/?updated_since=2025-01-01T00:00:00Z"]


@pytest.mark.parametrize("url", PAGES)
def test_a_partners_page_is_the_serializers_json(register, monkeypatch, url):
    served, expected = both_ways(key_client(register["partner"]), url, monkeypatch)
    assert served == expected


def test_the_cases_hold_what_the_comparison_is_about(register, monkeypatch):
    served, _ = both_ways(key_client(register["partner"]), "/api/v1/cases/", monkeypatch)
    by_name = {row["child"]["family_name"]: row for row in served["results"]}
    assert by_name["Шевченко"]["child"]["guardian_name"].startswith('Мати "Ганна"\n')
    assert "guardian_name" not in by_name["Бондар"]["child"]
    assert by_name["Шевченко"]["child"]["birth_date"] == "2012"
    assert by_name["Бондар"]["child"]["birth_date"] == "2014-03"
    assert by_name["Коваль"]["child"]["birth_date"] is None
    assert by_name["Шевченко"]["updated_at"] == "2025-07-01T12:30:05.120000+03:00"
    assert by_name["Бондар"]["updated_at"] == "2025-01-16T01:00:00+02:00"
    # A second before the clocks go back.
    assert by_name["О'Коннор"]["child"]["updated_at"] == "2024-10-27T03:59:59.000001+03:00"
    # Bondar is on a list the partner cannot read too: its flag there shows neither entry nor due date.
    hidden = [flag for flag in by_name["Бондар"]["open_flags"] if flag["entry"] is None]
    assert hidden and all(flag["due_on"] is None for flag in hidden)
    assert Flag.objects.filter(entry__handover_list=register["unseen"], case=register["cases"][1]).exists()
    assert [entry["list_reference"] for entry in by_name["Бондар"]["lists"]] != []


def test_following_the_cursor_both_ways_gives_the_same_pages(register, monkeypatch):
    client = key_client(register["partner"])
    url: str | None = "/api/v1/cases/?page_size=1"
    forward = []
    while url:
        served, expected = both_ways(client, url, monkeypatch)
        assert served == expected
        forward.append(served["results"][0]["id"])
        last, url = served, served["next"]
    assert len(forward) == 4
    url = last["previous"]
    backward = []
    while url:
        served, expected = both_ways(client, url, monkeypatch)
        assert served == expected
        backward.append(served["results"][0]["id"])
        url = served["previous"]
    assert backward == forward[-2::-1]


def test_a_case_workers_page_is_the_serializers_json(register, monkeypatch):
    client = APIClient()
    client.force_login(make_case_worker())
    served, expected = both_ways(client, "/api/v1/cases/", monkeypatch)
    assert served == expected
    assert len(served["results"]) == 4


def test_in_utc_the_times_end_in_z(register, monkeypatch, settings):
    client = key_client(register["partner"])
    with timezone.override(datetime.UTC):
        served, expected = both_ways(client, "/api/v1/cases/", monkeypatch)
    assert served == expected
    assert any(row["updated_at"] == "2025-07-01T09:30:05.120000Z" for row in served["results"])


@pytest.mark.parametrize("zone", ["Europe/Kyiv", "UTC", "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham",
                                  "America/Los_Angeles"])
def test_a_time_is_written_as_drf_writes_it_in_any_zone(zone):
    # Offsets east and west of UTC, of whole and half and three-quarter hours, both sides of a change
    # of clocks, with and without microseconds.
    instants = [datetime.datetime(*moment).replace(tzinfo=datetime.UTC) for moment in (
        (2024, 3, 31, 0, 59, 59), (2024, 3, 31, 1, 0), (2024, 10, 27, 0, 30, 0, 5), (2024, 11, 3, 9, 15),
        (2025, 1, 1, 0, 0, 0, 999999), (2025, 7, 1, 23, 59))]
    OrganisationFactory()
    with timezone.override(zone):
        written = [Organisation.objects.annotate(text=documents.DRFDateTime(
            Value(instant, output_field=DateTimeField()), zone)).values_list("text", flat=True)[0]
            for instant in instants]
        expected = [serializers.DateTimeField().to_representation(instant) for instant in instants]
    assert written == expected


def test_the_statement_is_built_once_per_viewer_and_the_page_costs_the_same_queries(register):
    documents.STATEMENTS.compiled.clear()
    client = key_client(register["partner"])
    client.get("/api/v1/cases/")
    assert len(documents.STATEMENTS.compiled) == 1
    with CaptureQueriesContext(connection) as one_case:
        client.get("/api/v1/cases/?page_size=1")
    with CaptureQueriesContext(connection) as four:
        client.get("/api/v1/cases/?page_size=4")
    assert len(documents.STATEMENTS.compiled) == 1
    assert len(one_case) == len(four)
    assert any("json_build_object" in query["sql"] for query in four.captured_queries)


def test_a_method_field_without_sql_is_refused_when_the_statement_is_built():
    from rest_framework import serializers

    from tracker.api.serializers import CaseEntrySerializer

    class WithAMethod(CaseEntrySerializer):
        extra = serializers.SerializerMethodField()

        class Meta(CaseEntrySerializer.Meta):
            fields = (*CaseEntrySerializer.Meta.fields, "extra")  # type: ignore[assignment]

        def get_extra(self, entry: Any) -> str:
            return "x"

    from tracker.models import ListEntry

    with pytest.raises(LookupError, match="extra is written by a method"):
        documents.document(WithAMethod(), ListEntry, "Europe/Kyiv")


def test_a_page_builds_no_serializer_per_case(register, monkeypatch):
    # Written by the database, no child serializer writes a case; through the serializers (the browsable
    # API, SQLite), one of each kind serves the whole page.
    from tracker.api import serializers

    made: list[type] = []
    original = serializers.ChildSerializer.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(serializers.ChildSerializer, "__init__", counted)
    documents.STATEMENTS.compiled.clear()
    client = key_client(register["partner"])
    assert len(client.get("/api/v1/cases/").json()["results"]) == 4
    built_for_the_statement = len(made)
    assert client.get("/api/v1/cases/").status_code == 200
    assert len(made) == built_for_the_statement, "the statement is built once, not per page"
    made.clear()
    monkeypatch.setattr(CaseViewSet, "page_written_by_database", lambda self, request: False)
    assert len(client.get("/api/v1/cases/").json()["results"]) == 4
    assert sorted(kind.__name__ for kind in made) == ["ChildSerializer", "RestrictedChildSerializer"]


def test_the_statement_is_logged_as_it_ran_so_that_it_can_be_explained(register):
    # Counted with the ORM's statements, with its values in place: a query log or a benchmark can run
    # it again under EXPLAIN.
    client = key_client(register["partner"])
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/cases/")
    logged = next(query["sql"] for query in queries.captured_queries if "json_build_object" in query["sql"])
    assert "%s" not in logged
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + logged)
        assert cursor.fetchall()


@pytest.mark.parametrize("prepared", [True, False])
def test_the_page_is_the_same_with_prepared_statements_on_or_off(register, monkeypatch, settings, prepared):
    settings.API_PREPARED_STATEMENTS = prepared
    client = key_client(register["partner"])
    for _ in range(6):  # past psycopg's threshold for preparing on its own
        served, expected = both_ways(client, "/api/v1/cases/", monkeypatch)
        assert served == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%json_build_object%"])
        assert (cursor.fetchone()[0] > 0) is prepared
