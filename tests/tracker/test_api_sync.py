"""Incremental sync from a partner's side: a copy kept with `updated_since` and `/cases/removed/` alone
stays exactly what the partner may see, through shares made, widened, narrowed and revoked."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from cases.models import Case
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory, UserFactory
from tracker.models import ListShare, Organisation, OutboxEvent, ShareEvent, WebhookDelivery, WebhookEndpoint
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, reply_record
from tracker.services.flags import sweep_deadlines
from tracker.services.partners import api_key_issue, case_share_grant, case_shares_revoke
from tracker.services.webhooks import fan_out

pytestmark = pytest.mark.django_db
HANDED_OVER = datetime.date(2025, 6, 2)
DUE = datetime.date(2025, 7, 2)


def walk(client: APIClient, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    response = client.get(url, params or {})
    while True:
        assert response.status_code == 200, response.content
        page = response.json()
        rows += page["results"]
        if not page["next"]:
            return rows
        response = client.get(page["next"])


class PartnerCopy:
    """What a partner keeps: every case it was sent, replaced whole when sent again, dropped when removed."""

    def __init__(self, client: APIClient) -> None:
        self.client = client
        self.cases = {row["id"]: row for row in walk(client, "/api/v1/cases/", {"page_size": "2"})}
        self.mark = timezone.now()

    def sync(self) -> None:
        # As docs/api-sync.md says: note the time, take the removals, then the changes.
        since, self.mark = self.mark.isoformat(), timezone.now()
        for gone in walk(self.client, "/api/v1/cases/removed/", {"since": since, "page_size": "2"}):
            assert set(gone) == {"id", "removed_at"}, "a removal says which and when, nothing else"
            self.cases.pop(gone["id"], None)
        for row in walk(self.client, "/api/v1/cases/", {"updated_since": since, "page_size": "2"}):
            self.cases[row["id"]] = row

    def exact(self) -> bool:
        return self.cases == {row["id"]: row for row in walk(self.client, "/api/v1/cases/")}


@pytest.fixture
def partner():
    organisation = OrganisationFactory(name="Sync Tracing Network", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="sync", scopes=["read"], actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return organisation, client


def restricted_case() -> Case:
    return CaseFactory(child=ChildFactory(guardian_name="Guardian (synthetic)", relatives="An aunt (synthetic)"))


def test_a_copy_synced_incrementally_holds_exactly_what_the_partner_may_see(partner):
    organisation, client = partner
    worker = UserFactory(username="sharing.worker")
    first, second, third = restricted_case(), restricted_case(), restricted_case()
    case_share_grant(case=first, organisation=organisation, actor=worker)
    copy = PartnerCopy(client)
    assert set(copy.cases) == {first.pk}

    case_share_grant(case=second, organisation=organisation, actor=worker)  # a new share
    copy.sync()
    assert set(copy.cases) == {first.pk, second.pk} and copy.exact()

    case_share_grant(case=first, organisation=organisation, include_restricted=True, actor=worker)  # widened
    copy.sync()
    assert copy.cases[first.pk]["child"]["guardian_name"] == "Guardian (synthetic)" and copy.exact()

    case_share_grant(case=first, organisation=organisation, include_restricted=False, actor=worker)  # narrowed
    copy.sync()
    assert "guardian_name" not in copy.cases[first.pk]["child"] and copy.exact()

    share = case_share_grant(case=second, organisation=organisation, actor=worker)
    case_shares_revoke(share_ids=[share.pk], actor=worker)  # revoked
    copy.sync()
    assert set(copy.cases) == {first.pk} and copy.exact()

    # Shared and revoked between two syncs: never seen, nothing kept.
    third_share = case_share_grant(case=third, organisation=organisation, include_restricted=True, actor=worker)
    case_shares_revoke(share_ids=[third_share.pk], actor=worker)
    # Revoked and shared again: kept, as the share now stands.
    again = case_share_grant(case=second, organisation=organisation, actor=worker)
    case_shares_revoke(share_ids=[again.pk], actor=worker)
    case_share_grant(case=second, organisation=organisation, can_contribute=True, actor=worker)
    copy.sync()
    assert set(copy.cases) == {first.pk, second.pk} and copy.exact()


def test_what_the_partner_sees_of_a_case_changing_on_its_lists_comes_with_the_next_sync(partner):
    organisation, client = partner
    cases = [CaseFactory(), CaseFactory()]
    for case in cases:
        case_share_grant(case=case, organisation=organisation, actor=None)
    handover_list = HandoverListFactory(recipient=organisation)
    list_add_cases(handover_list=handover_list, cases=cases, actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=None)
    copy = PartnerCopy(client)

    sweep_deadlines(today=DUE + datetime.timedelta(days=1))  # flags raised: no change to the case's own row
    copy.sync()
    assert all(copy.cases[case.pk]["open_flags"] for case in cases) and copy.exact()

    sweep_deadlines(today=DUE + datetime.timedelta(days=14))  # escalated
    copy.sync()
    assert copy.exact()

    reply_record(handover_list=handover_list, received_on=DUE + datetime.timedelta(days=15), actor=None,
                 outcomes=[OutcomeInput(position=1, outcome="located")])
    copy.sync()
    assert copy.exact()


def test_removals_are_the_partners_own_and_only_of_cases_it_no_longer_sees(partner):
    organisation, client = partner
    other = OrganisationFactory(name="Other Partner", kind=Organisation.Kind.PARTNER)
    case = CaseFactory()
    mark = timezone.now().isoformat()
    theirs = case_share_grant(case=case, organisation=other, actor=None)
    case_shares_revoke(share_ids=[theirs.pk], actor=None)
    assert walk(client, "/api/v1/cases/removed/", {"since": mark}) == []

    ours = case_share_grant(case=case, organisation=organisation, actor=None)
    case_shares_revoke(share_ids=[ours.pk], actor=None)
    removed = walk(client, "/api/v1/cases/removed/", {"since": mark})
    assert [row["id"] for row in removed] == [case.pk]
    assert ShareEvent.objects.filter(organisation=organisation).count() == 2
    assert walk(client, "/api/v1/cases/removed/", {"since": timezone.now().isoformat()}) == []

    missing = client.get("/api/v1/cases/removed/")
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "since"


def test_share_webhooks_go_to_that_partner_alone(partner):
    organisation, _ = partner
    other = OrganisationFactory(name="Other Partner", kind=Organisation.Kind.PARTNER)
    for owner in (organisation, other):
        WebhookEndpoint.objects.create(organisation=owner, url="http://127.0.0.1:9/hook", secret="s" * 20)
    case = CaseFactory()
    case_share_grant(case=case, organisation=other, actor=None)  # the other partner already sees it

    share = case_share_grant(case=case, organisation=organisation, actor=None)
    case_share_grant(case=case, organisation=organisation, include_restricted=True, actor=None)
    case_shares_revoke(share_ids=[share.pk], actor=None)
    fan_out()

    told = [(d.endpoint.organisation_id, d.payload["event"], d.payload["data"])
            for d in WebhookDelivery.objects.select_related("endpoint").order_by("outbox_event_id")]
    assert [t for t in told if t[0] == organisation.pk] == [
        (organisation.pk, "case.shared", {"case": case.pk, "restricted_fields_shared": False, "can_contribute": False}),
        (organisation.pk, "case.shared", {"case": case.pk, "restricted_fields_shared": True, "can_contribute": False}),
        (organisation.pk, "case.unshared", {"case": case.pk}),
    ]
    assert [t[1] for t in told if t[0] == other.pk] == ["case.shared"], "only its own share's event"
    assert OutboxEvent.objects.filter(event__startswith="case.").exclude(organisation=None).count() == 4


def queries(run: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        run()
    return len(captured)


def test_revoking_shares_and_reading_removals_cost_the_same_for_few_as_for_many(partner):
    organisation, client = partner
    WebhookEndpoint.objects.create(organisation=organisation, url="http://127.0.0.1:9/hook", secret="s" * 20)
    shares = [case_share_grant(case=CaseFactory(), organisation=organisation, actor=None) for _ in range(33)]
    mark = timezone.now().isoformat()
    # Lock the shares; write them; their history; the share events; is anyone listening; the outbox rows.
    few = queries(lambda: case_shares_revoke(share_ids=[s.pk for s in shares[:3]], actor=None))
    many = queries(lambda: case_shares_revoke(share_ids=[s.pk for s in shares[3:]], actor=None))
    assert few == many
    client.get("/api/v1/organisations/")  # the key's last-used time is written once a minute, not below
    # The key; the page of removals.
    assert queries(lambda: client.get("/api/v1/cases/removed/", {"since": mark, "page_size": "3"})) == queries(
        lambda: client.get("/api/v1/cases/removed/", {"since": mark, "page_size": "30"})) == 2
    # The key; the page of deliveries with their events.
    fan_out()
    assert queries(lambda: client.get("/api/v1/webhook-deliveries/", {"page_size": "3"})) == queries(
        lambda: client.get("/api/v1/webhook-deliveries/", {"page_size": "30"})) == 2


def test_a_list_shown_to_the_partner_comes_with_the_next_sync_with_its_replies_and_cases(partner):
    organisation, client = partner
    case = CaseFactory()
    case_share_grant(case=case, organisation=organisation, actor=None)
    elsewhere = HandoverListFactory()
    list_add_cases(handover_list=elsewhere, cases=[case], actor=None)
    list_hand_over(handover_list=elsewhere, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=None)
    reply = reply_record(handover_list=elsewhere, received_on=DUE, actor=None,
                         outcomes=[OutcomeInput(position=1, outcome="located")]).reply
    mark = timezone.now().isoformat()
    assert walk(client, "/api/v1/lists/", {"updated_since": mark}) == []

    ListShare.objects.create(handover_list=elsewhere, organisation=organisation)
    assert [row["id"] for row in walk(client, "/api/v1/lists/", {"updated_since": mark})] == [elsewhere.pk]
    assert [row["id"] for row in walk(client, "/api/v1/replies/", {"updated_since": mark})] == [reply.pk]
    [synced] = walk(client, "/api/v1/cases/", {"updated_since": mark})
    assert synced["id"] == case.pk and [entry["list"] for entry in synced["lists"]] == [elsewhere.pk]
