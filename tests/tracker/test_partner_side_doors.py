"""What a partner may not read does not reach it by a side door: two partners share one case, and one of
them alone may read the list it is on."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from cases.models import Case
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory
from tracker.models import HandoverList, Organisation, WebhookDelivery, WebhookEndpoint
from tracker.services.exchange import list_add_cases, list_hand_over
from tracker.services.flags import sweep_deadlines
from tracker.services.partners import api_key_issue, case_share_grant
from tracker.services.webhooks import fan_out

pytestmark = pytest.mark.django_db
HANDED_OVER = datetime.date(2025, 6, 2)
DUE = datetime.date(2025, 7, 2)


@dataclass
class Partner:
    organisation: Organisation
    client: APIClient
    endpoint: WebhookEndpoint


def make_partner(name: str) -> Partner:
    organisation = OrganisationFactory(name=name, kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="sync", scopes=["read", "contribute"], actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    endpoint = WebhookEndpoint.objects.create(organisation=organisation, url=f"http://127.0.0.1:9/{name}",
                                              secret="s" * 20)
    return Partner(organisation, client, endpoint)


@dataclass
class Story:
    reader: Partner  # the list was handed to it
    outsider: Partner  # shares the case, cannot read the list
    case: Case
    handover_list: HandoverList


@pytest.fixture
def story() -> Story:
    reader, outsider = make_partner("Reader Tracing"), make_partner("Outsider Watch")
    case = CaseFactory(child=ChildFactory())
    for partner in (reader, outsider):
        case_share_grant(case=case, organisation=partner.organisation, include_restricted=True, can_contribute=True,
                         actor=None)
    handover_list = HandoverListFactory(reference="READER-ONLY-7", recipient=reader.organisation)
    list_add_cases(handover_list=handover_list, cases=[case], actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=None)
    return Story(reader, outsider, case, handover_list)


def test_a_flag_shows_no_entry_or_due_date_of_a_list_the_partner_cannot_read(story):
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    assert story.outsider.client.get(f"/api/v1/lists/{story.handover_list.pk}/").status_code == 404
    for partner, seen in ((story.outsider, False), (story.reader, True)):
        case = partner.client.get(f"/api/v1/cases/{story.case.pk}/").json()
        flags = partner.client.get(f"/api/v1/cases/{story.case.pk}/flags/").json()
        assert len(case["open_flags"]) == len(flags) == 1, "the flag itself is shown"
        for flag in (case["open_flags"][0], flags[0]):
            assert (flag["entry"] is not None, flag["due_on"] is not None) == (seen, seen)
            assert flag["kind"] == "overdue" and flag["level"] == 1
        assert bool(case["lists"]) == seen


def test_entry_and_reply_webhooks_go_only_to_partners_that_read_the_list(story):
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    sweep_deadlines(today=DUE + datetime.timedelta(days=14))
    answered = story.reader.client.post(f"/api/v1/lists/{story.handover_list.pk}/replies/", {
        "received_on": "2025-07-20", "outcomes": [{"position": 1, "outcome": "located"}]}, format="json")
    assert answered.status_code == 201
    fan_out()

    def told(partner: Partner) -> list[dict]:
        return [d.payload for d in WebhookDelivery.objects.filter(endpoint=partner.endpoint).order_by("id")]

    # The case's status: on the list, handed over, answered.
    moves = ["case.status_changed"] * 3
    assert sorted(p["event"] for p in told(story.reader)) == [
        "case.shared", *moves, "entry.escalated", "entry.flagged", "reply.recorded"]
    assert all(p["data"]["list"] == story.handover_list.pk for p in told(story.reader)
               if p["event"].startswith(("entry.", "reply.")))
    outsider = told(story.outsider)
    assert sorted(p["event"] for p in outsider) == ["case.shared", *moves]
    said = json.dumps(outsider)
    assert "READER-ONLY-7" not in said and '"list"' not in said and '"entry"' not in said


def test_another_partners_contribution_is_not_labelled_with_its_name(story):
    url = f"/api/v1/cases/{story.case.pk}/"
    etag = story.reader.client.get(url)["ETag"]
    assert story.reader.client.patch(url, {"last_known_location": "Taganrog (synthetic)"},
                                     HTTP_IF_MATCH=etag).status_code == 200

    def notes(partner: Partner) -> list[str]:
        return [line["message"] for line in partner.client.get(f"{url}timeline/").json()
                if line["message"] and "whereabouts" in line["message"]]

    assert notes(story.reader) == ["Last known whereabouts from Reader Tracing: last known location: Taganrog "
                                   "(synthetic)"]
    assert notes(story.outsider) == ["Last known whereabouts from another organisation: last known location: "
                                     "Taganrog (synthetic)"]
    timeline = json.dumps(story.outsider.client.get(f"{url}timeline/").json())
    assert "Reader Tracing" not in timeline
    assert "READER-ONLY-7" not in timeline, "the hand-over line names a list the outsider cannot read"
    assert "READER-ONLY-7" in json.dumps(story.reader.client.get(f"{url}timeline/").json())
