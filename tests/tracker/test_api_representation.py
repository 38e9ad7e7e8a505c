"""The API's planned output (`tracker.api.representation`) is DRF's own, on every endpoint that reads:
each page is fetched twice, once as served and once with DRF's `to_representation`, and compared."""

from __future__ import annotations

import datetime

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory
from tracker.api import representation
from tracker.api.representation import PlannedRepresentation
from tracker.models import CaseShare, Organisation
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, reply_record
from tracker.services.flags import sweep_deadlines
from tracker.services.partners import api_key_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner_client() -> tuple[APIClient, list[str]]:
    """A partner with cases of every kind: restricted and not, on a list answered in part, with open
    flags, year-only and exact birth dates, blank and filled fields."""
    cache.clear()
    partner = OrganisationFactory(name="Gamma Tracing", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=partner, name="sync", scopes=["read", "contribute"], actor=None)
    children = [
        ChildFactory(family_name="Шевченко", given_name="Олена", birth_date=datetime.date(2012, 1, 1),
                     birth_date_precision="year", guardian_name="Guardian", last_known_location=""),
        ChildFactory(family_name="Бондар", given_name="Іван", birth_date=datetime.date(2014, 3, 9),
                     last_known_location="Ростов", last_known_on=datetime.date(2025, 5, 1)),
        ChildFactory(family_name="Коваль", given_name="Марія", birth_date=None, aliases=["Мария Коваль"]),
    ]
    cases = [CaseFactory(child=child) for child in children]
    for n, case in enumerate(cases):
        CaseShare.objects.create(case=case, organisation=partner, include_restricted=n == 0, can_contribute=True)
    handover_list = HandoverListFactory(sender=OrganisationFactory(name="Delegation"), recipient=partner)
    list_add_cases(handover_list=handover_list, cases=cases, actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2),
                   response_due_on=datetime.date(2025, 7, 2), actor=None)
    reply_record(handover_list=handover_list, received_on=datetime.date(2025, 7, 20),
                 outcomes=[OutcomeInput(position=2, outcome="located", reported_location="Ростов")], actor=None)
    sweep_deadlines(today=datetime.date(2025, 8, 1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    pages = ["/api/v1/organisations/", "/api/v1/cases/", f"/api/v1/cases/{cases[0].pk}/",
             f"/api/v1/cases/{cases[1].pk}/", f"/api/v1/cases/{cases[0].pk}/timeline/",
             f"/api/v1/cases/{cases[1].pk}/flags/", "/api/v1/lists/", f"/api/v1/lists/{handover_list.pk}/",
             f"/api/v1/lists/{handover_list.pk}/entries/", "/api/v1/replies/", "/api/v1/webhooks/"]
    return client, pages


def test_every_page_is_written_as_drf_writes_it(partner_client, monkeypatch):
    client, pages = partner_client
    served = {}
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, (page, response.content[:300])
        served[page] = response.json()
    assert served["/api/v1/cases/"]["results"][0]["child"]["family_name"]
    assert any(row["lists"] and row["open_flags"] for row in served["/api/v1/cases/"]["results"])

    monkeypatch.setattr(PlannedRepresentation, "to_representation", representation.drf_representation)
    for page in pages:
        assert client.get(page).json() == served[page], page


def test_the_plan_writes_plain_fields_itself():
    """The fast path is taken: text, choice, integer and date fields get a writer of their own."""
    from tracker.api.serializers import ChildSerializer

    planned = {name: writer for name, _, writer, _ in ChildSerializer()._representation_plan()}
    assert all(planned[name] is not None for name in ("family_name", "sex", "circumstances", "last_known_on"))
    assert planned["birth_date"] is None  # a method field: written by DRF
