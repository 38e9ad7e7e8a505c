"""A partner's whole flow through a client generated from the served schema with openapi-python-client:
the schema is the contract a partner's code is built from, so the code built from it must work."""

from __future__ import annotations

import datetime
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.cache import cache

from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory
from tracker.models import CaseShare, Organisation, Reply, WebhookEndpoint
from tracker.services.exchange import list_add_cases, list_hand_over
from tracker.services.partners import api_key_issue

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# The export's file types are bytes: the generator reads any text/* answer as text unless told.
GENERATOR_CONFIG = """\
project_name_override: tracker_client
package_name_override: tracker_client
post_hooks: []
content_type_overrides:
  text/csv: application/octet-stream
"""


@pytest.fixture
def generated_client(live_server, tmp_path, monkeypatch):
    schema = requests.get(f"{live_server.url}/api/v1/schema/?format=json", timeout=30)
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_bytes(schema.content)
    (tmp_path / "config.yaml").write_text(GENERATOR_CONFIG)
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", "schema.json", "--output-path", "tracker_client", "--meta", "none",
         "--config", "config.yaml", "--fail-on-warning"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module("tracker_client")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_partner_works_through_a_client_generated_from_the_schema(live_server, generated_client):
    organisation = OrganisationFactory(name="Generated Client Partner", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="sdk", scopes=["read", "contribute"], actor=None)
    cases = [CaseFactory(child=ChildFactory(family_name="Коваленко", given_name=given)) for given in ("Олег", "Ірина")]
    for case in cases:
        CaseShare.objects.create(case=case, organisation=organisation, can_contribute=True)
    handover_list = HandoverListFactory(recipient=organisation)
    list_add_cases(handover_list=handover_list, cases=cases, actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2),
                   response_due_on=datetime.date(2025, 7, 2), actor=None)
    cache.clear()

    from tracker_client import AuthenticatedClient
    from tracker_client.api.cases import (
        cases_export_retrieve,
        cases_list,
        cases_partial_update,
        cases_retrieve,
    )
    from tracker_client.api.lists import lists_entries_list, lists_list, lists_replies_create
    from tracker_client.api.webhooks import webhooks_create, webhooks_destroy, webhooks_list, webhooks_retrieve
    from tracker_client.models import (
        CasesExportRetrieveFormat,
        EventsEnum,
        OutcomeEnum,
        OutcomeInputRequest,
        PatchedCaseUpdateRequest,
        Problem,
        ReplyCreateRequest,
        WebhookEndpointRequest,
    )

    client = AuthenticatedClient(base_url=live_server.url, token=key)
    started = datetime.datetime.now(datetime.UTC)

    # List the cases, a page at a time, then sync what changed since a moment.
    first = cases_list.sync(client=client, page_size=1)
    assert len(first.results) == 1 and first.next_
    everything = {case.id for case in cases_list.sync(client=client).results}
    assert everything == {case.pk for case in cases}
    assert cases_list.sync(client=client, updated_since=started).results == []

    # Read a list's entries.
    lists = lists_list.sync(client=client)
    assert [item.id for item in lists.results] == [handover_list.pk]
    entries = lists_entries_list.sync(list_pk=handover_list.pk, client=client)
    assert [entry.position for entry in entries.results] == [1, 2]

    # Post a reply with an Idempotency-Key, twice: one reply.
    body = ReplyCreateRequest(received_on=datetime.date(2025, 7, 10), outcomes=[
        OutcomeInputRequest(position=1, outcome=OutcomeEnum.LOCATED, reported_location="Taganrog")])
    posted = lists_replies_create.sync_detailed(id=handover_list.pk, client=client, body=body,
                                                idempotency_key="reply-1")
    again = lists_replies_create.sync_detailed(id=handover_list.pk, client=client, body=body,
                                               idempotency_key="reply-1")
    assert posted.status_code == again.status_code == 201
    assert posted.parsed.id == again.parsed.id and again.headers["Idempotent-Replayed"] == "true"
    assert Reply.objects.count() == 1

    # The sync since the start now finds the case the reply moved.
    assert {case.id for case in cases_list.sync(client=client, updated_since=started).results} == {cases[0].pk}

    # PATCH with If-Match: the current ETag updates, the old one is refused as a problem.
    read = cases_retrieve.sync_detailed(id=cases[1].pk, client=client)
    etag = read.headers["ETag"]
    unchanged = cases_retrieve.sync_detailed(id=cases[1].pk, client=client, if_none_match=etag)
    assert unchanged.status_code == 304
    patched = cases_partial_update.sync_detailed(
        id=cases[1].pk, client=client, if_match=etag, body=PatchedCaseUpdateRequest(last_known_location="Rostov"))
    assert patched.status_code == 200 and patched.parsed.child.last_known_location == "Rostov"
    stale = cases_partial_update.sync_detailed(
        id=cases[1].pk, client=client, if_match=etag, body=PatchedCaseUpdateRequest(last_known_location="Elsewhere"))
    assert stale.status_code == 412 and isinstance(stale.parsed, Problem)
    assert stale.parsed.type_.endswith("/api/v1/problems/precondition-failed/")

    # Export: the file's bytes.
    export = cases_export_retrieve.sync_detailed(client=client, format_=CasesExportRetrieveFormat.CSV)
    assert export.status_code == 200
    csv = export.parsed.payload.read()
    assert isinstance(csv, bytes) and "Коваленко".encode() in csv

    # Register a webhook endpoint, then delete it.
    made = webhooks_create.sync(client=client, body=WebhookEndpointRequest(
        url="https://example.org/hooks/tracker", secret="s" * 24, events=[EventsEnum.ENTRY_FLAGGED]))
    assert made.id and made.events == [EventsEnum.ENTRY_FLAGGED]
    assert [hook.id for hook in webhooks_list.sync(client=client).results] == [made.id]
    assert webhooks_destroy.sync_detailed(id=made.id, client=client).status_code == 204
    gone = webhooks_retrieve.sync_detailed(id=made.id, client=client)
    assert gone.status_code == 404 and isinstance(gone.parsed, Problem)
    assert webhooks_list.sync(client=client).results == []
    assert WebhookEndpoint.objects.get(pk=made.id).deleted_at is not None
