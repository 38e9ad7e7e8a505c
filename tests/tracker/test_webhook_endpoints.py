"""Webhooks as a partner uses them: endpoints registered (pinged), limited, deleted, their secret rotated,
their deliveries listed and sent again; and how a delivery is sent: with no transaction open, once, to
the address that was checked. Receivers are real local HTTP servers."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import CaseFactory, OrganisationFactory
from tests.tracker.test_webhooks import Receiver, receivers  # noqa: F401 the fixture
from tracker.models import Organisation, WebhookDelivery, WebhookEndpoint
from tracker.services import webhooks
from tracker.services.partners import api_key_issue, case_share_grant
from tracker.services.webhooks import attempt_delivery, fan_out
from tracker.tasks import deliver_webhook

SECRET = "the-first-shared-secret"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receivers_check() -> Callable[..., bool]:
    """The receiver's verification example from docs/webhooks.md, run as written."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert code, "docs/webhooks.md has the receiver's example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 our own documentation's code
    return namespace["verify_signature"]


def partner(name: str) -> tuple[Organisation, APIClient]:
    organisation = OrganisationFactory(name=name, kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="hooks", scopes=["read", "contribute"], actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return organisation, client


def register(client: APIClient, url: str, **extra: Any):
    return client.post("/api/v1/webhooks/", {"url": url, "secret": SECRET, **extra}, format="json")


def status_event(organisation: Organisation) -> list[int]:
    """A case shared with the organisation changes status; the deliveries made of it."""
    case = CaseFactory()
    case_share_grant(case=case, organisation=organisation, actor=None)
    shared = fan_out().deliveries  # case.shared, for endpoints that take every event
    WebhookDelivery.objects.filter(pk__in=shared).update(state="delivered")
    webhooks.record_status_events([(case, "open", "on_list")])
    return fan_out().deliveries


@pytest.mark.django_db
def test_endpoints_are_limited_per_organisation_and_deleted_softly(settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION = 2
    organisation, client = partner("Limited Tracing")
    _, other = partner("Other Tracing")
    made = [register(client, f"https://hooks.example.org/{n}") for n in range(2)]
    assert [r.status_code for r in made] == [201, 201]

    refused = register(client, "https://hooks.example.org/3")
    assert refused.status_code == 400
    assert "at most 2 webhook endpoints" in refused.json()["errors"][0]["message"]
    assert register(other, "https://hooks.example.org/other").status_code == 201, "each organisation its own count"

    first = made[0].json()["id"]
    assert client.delete(f"/api/v1/webhooks/{first}/").status_code == 204
    assert client.get(f"/api/v1/webhooks/{first}/").status_code == 404
    assert {row["id"] for row in client.get("/api/v1/webhooks/").json()["results"]} == {made[1].json()["id"]}
    kept = WebhookEndpoint.objects.get(pk=first)
    assert (kept.is_active, kept.deleted_at is not None) == (False, True)
    assert kept.history.latest("history_date").history_change_reason == "Deleted"
    assert register(client, "https://hooks.example.org/3").status_code == 201, "a deleted one frees its place"
    assert other.delete(f"/api/v1/webhooks/{made[1].json()['id']}/").status_code == 404

    # A deleted endpoint is sent nothing more.
    deliveries = status_event(organisation)
    assert not WebhookDelivery.objects.filter(endpoint_id=first, pk__in=deliveries).exists()


@pytest.mark.django_db
def test_a_new_endpoint_is_pinged_alone_signed_as_the_documentation_says(receivers):  # noqa: F811
    organisation, client = partner("Pinged Tracing")
    older, newer = Receiver(), Receiver()
    receivers += [older, newer]
    WebhookEndpoint.objects.create(organisation=organisation, url=older.url, secret="an-older-secret-value")

    made = register(client, newer.url, events=["case.status_changed"])
    assert made.status_code == 201
    ping = WebhookDelivery.objects.get(endpoint_id=made.json()["id"])
    assert attempt_delivery(ping.pk) == "delivered"

    assert older.received == []
    [sent] = newer.received
    assert json.loads(sent["body"])["event"] == "webhook.ping"
    assert json.loads(sent["body"])["data"] == {"endpoint": made.json()["id"]}
    verify = receivers_check()
    signature = sent["headers"]["X-Tracker-Signature"]
    assert verify(signature, sent["body"], [SECRET])
    assert not verify(signature, sent["body"] + b" ", [SECRET]), "a changed body fails"
    assert not verify(signature, sent["body"], ["another-secret-entirely"])
    sent_at = int(signature.split(",")[0].removeprefix("t="))
    assert not verify(signature, sent["body"], [SECRET], now=sent_at + 301), "too old: a replay"
    assert verify(signature, sent["body"], [SECRET], now=sent_at + 299)


@pytest.mark.django_db
def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(receivers, settings):  # noqa: F811
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 1
    organisation, client = partner("Rotating Tracing")
    hook = Receiver()
    receivers.append(hook)
    endpoint_id = register(client, hook.url).json()["id"]
    rotated = client.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret/", {"secret": "the-second-shared-secret"},
                          format="json")
    assert rotated.status_code == 200 and "secret" not in rotated.json()
    same = client.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret/", {"secret": "the-second-shared-secret"},
                       format="json")
    assert same.status_code == 400 and same.json()["errors"][0]["field"] == "secret"

    verify = receivers_check()
    for delivery_id in WebhookDelivery.objects.filter(endpoint_id=endpoint_id).values_list("pk", flat=True):
        attempt_delivery(delivery_id)
    [during] = hook.received
    assert during["headers"]["X-Tracker-Signature"].count("v1=") == 2
    assert verify(during["headers"]["X-Tracker-Signature"], during["body"], [SECRET])
    assert verify(during["headers"]["X-Tracker-Signature"], during["body"], ["the-second-shared-secret"])

    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        previous_secret_until=timezone.now() - datetime.timedelta(seconds=1))
    attempt_delivery(status_event(organisation)[0])
    after = hook.received[-1]
    assert after["headers"]["X-Tracker-Signature"].count("v1=") == 1
    assert not verify(after["headers"]["X-Tracker-Signature"], after["body"], [SECRET])
    assert verify(after["headers"]["X-Tracker-Signature"], after["body"], ["the-second-shared-secret"])


@pytest.mark.django_db
def test_a_partner_lists_and_redelivers_its_own_deliveries_only(receivers):  # noqa: F811
    organisation, client = partner("Listing Tracing")
    _, other = partner("Other Tracing")
    failing = Receiver(status=500)
    receivers.append(failing)
    endpoint_id = register(client, failing.url).json()["id"]
    other_id = register(other, "https://hooks.example.org/other").json()["id"]
    [delivery_id] = status_event(organisation)
    ping_id = WebhookDelivery.objects.get(endpoint_id=endpoint_id, outbox_event__event="webhook.ping").pk
    assert attempt_delivery(delivery_id) == "retry"

    listed = client.get("/api/v1/webhook-deliveries/").json()["results"]
    assert [row["event"] for row in listed] == ["case.status_changed", "case.shared", "webhook.ping"]
    assert (listed[0]["id"], listed[-1]["id"]) == (delivery_id, ping_id)
    assert listed[0]["last_status_code"] == 500 and listed[0]["attempts"] == 1
    assert [row["id"] for row in client.get("/api/v1/webhook-deliveries/", {"event": "webhook.ping"}).json()[
        "results"]] == [ping_id]
    theirs = WebhookDelivery.objects.get(endpoint_id=other_id).pk
    assert theirs not in {row["id"] for row in listed}
    assert client.get(f"/api/v1/webhook-deliveries/{theirs}/").status_code == 404
    assert client.post(f"/api/v1/webhook-deliveries/{theirs}/redeliver/").status_code == 404

    WebhookDelivery.objects.filter(pk=delivery_id).update(state="failed", attempts=6)
    failing.status = 200
    again = client.post(f"/api/v1/webhook-deliveries/{delivery_id}/redeliver/")
    assert again.status_code == 202 and (again.json()["state"], again.json()["attempts"]) == ("pending", 0)
    assert attempt_delivery(delivery_id) == "delivered"
    assert len(failing.received) == 2 and failing.received[0]["body"] == failing.received[1]["body"]

    client.delete(f"/api/v1/webhooks/{endpoint_id}/")
    refused = client.post(f"/api/v1/webhook-deliveries/{delivery_id}/redeliver/")
    assert refused.status_code == 400 and "not active" in refused.json()["errors"][0]["message"]


@pytest.mark.django_db
def test_deliveries_queued_for_an_endpoint_deleted_or_paused_since_are_not_attempted(receivers):  # noqa: F811
    organisation, client = partner("Departed Tracing")
    deleted, paused = Receiver(), Receiver()
    receivers += [deleted, paused]
    deleted_id = register(client, deleted.url).json()["id"]
    paused_id = WebhookEndpoint.objects.create(organisation=organisation, url=paused.url, secret=SECRET).pk
    queued = status_event(organisation)
    assert len(queued) == 2

    assert client.delete(f"/api/v1/webhooks/{deleted_id}/").status_code == 204
    assert client.patch(f"/api/v1/webhooks/{paused_id}/", {"is_active": False}, format="json").status_code == 200
    # The queued tasks run after that, as a worker would run them.
    assert [deliver_webhook.apply(args=(delivery_id,)).get() for delivery_id in queued] == ["not_sent", "not_sent"]

    assert (deleted.received, paused.received) == ([], [])
    assert sorted(WebhookDelivery.objects.filter(pk__in=queued).values_list(
        "endpoint_id", "state", "attempts", "last_attempt_at", "last_error")) == [
        (deleted_id, "failed", 0, None, "not sent: the endpoint was deleted"),
        (paused_id, "failed", 0, None, "not sent: the endpoint was deactivated")]
    assert deliver_webhook.apply(args=(queued[0],)).get() == "skipped", "ended, not queued again"


# --- how a delivery is sent ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_refuses_to_run_inside_a_transaction(receivers):  # noqa: F811
    organisation, _ = partner("Careful Tracing")
    hook = Receiver()
    receivers.append(hook)
    WebhookEndpoint.objects.create(organisation=organisation, url=hook.url, secret=SECRET)
    [delivery_id] = status_event(organisation)
    with transaction.atomic(), pytest.raises(RuntimeError):
        attempt_delivery(delivery_id)
    assert hook.received == []


@pytest.mark.django_db(transaction=True)
def test_the_receiver_is_called_with_the_delivery_row_unlocked_and_nothing_open(receivers):  # noqa: F811
    organisation, _ = partner("Watching Tracing")
    seen: list[Any] = []

    def look_at_the_row(sent: dict) -> None:
        # From the receiver's side, on a connection of its own: the delivery's row must not be locked.
        delivery_id = int(sent["headers"]["X-Tracker-Delivery"])
        try:
            with transaction.atomic():
                row = WebhookDelivery.objects.select_for_update(nowait=True).get(pk=delivery_id)
                seen.append((row.state, row.claimed_until is not None))
        except Exception as error:  # reported to the test below
            seen.append(error)
        finally:
            connection.close()

    hook = Receiver(on_post=look_at_the_row)
    receivers.append(hook)
    WebhookEndpoint.objects.create(organisation=organisation, url=hook.url, secret=SECRET)
    [delivery_id] = status_event(organisation)
    assert attempt_delivery(delivery_id) == "delivered"
    assert seen == [("pending", True)], "claimed, not locked, while the receiver answers"
    assert WebhookDelivery.objects.get(pk=delivery_id).claimed_until is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_a_delivery_once_and_a_dead_workers_claim_runs_out(receivers):  # noqa: F811
    organisation, _ = partner("Busy Tracing")
    answering = threading.Event()

    def slow(sent: dict) -> None:
        answering.wait(10)

    hook = Receiver(on_post=slow)
    receivers.append(hook)
    WebhookEndpoint.objects.create(organisation=organisation, url=hook.url, secret=SECRET)
    [delivery_id] = status_event(organisation)
    outcomes: list[str] = []

    def work() -> None:
        try:
            outcomes.append(attempt_delivery(delivery_id))
        finally:
            connection.close()

    first = threading.Thread(target=work)
    first.start()
    while not hook.received:
        threading.Event().wait(0.05)
    work()  # the second worker, while the first waits for the receiver
    answering.set()
    first.join(10)
    assert sorted(outcomes) == ["delivered", "skipped"] and len(hook.received) == 1

    # A worker killed mid-call leaves its claim; once the claim has run out another sends it.
    [second_id] = status_event(organisation)
    WebhookDelivery.objects.filter(pk=second_id).update(claimed_until=timezone.now() + datetime.timedelta(minutes=5))
    assert attempt_delivery(second_id) == "skipped"
    WebhookDelivery.objects.filter(pk=second_id).update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    assert attempt_delivery(second_id) == "delivered"
    assert WebhookDelivery.objects.get(pk=second_id).attempts == 1


@pytest.mark.django_db
def test_the_connection_goes_to_the_address_checked_not_to_a_second_answer(receivers, monkeypatch,  # noqa: F811
                                                                          settings):
    """DNS rebinding: a name that answers the check with an allowed address and the connection with an
    inside one. Here 127.0.0.1 stands for a public address (the check is told so) and 127.0.0.2 for an
    inside one: no traffic leaves the machine."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    organisation, _ = partner("Rebinding Tracing")
    allowed = Receiver()
    inside = Receiver(host="127.0.0.2", port=allowed.server.server_port)
    receivers += [allowed, inside]
    port = allowed.server.server_port
    monkeypatch.setattr(webhooks, "is_inside", lambda address: address != "127.0.0.1")
    answers = iter(["127.0.0.1", *["127.0.0.2"] * 10])
    real = socket.getaddrinfo

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebinding.test":
            return real(next(answers), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    WebhookEndpoint.objects.create(organisation=organisation, url=f"http://hooks.rebinding.test:{port}/hook",
                                   secret=SECRET)
    [delivery_id] = status_event(organisation)

    assert attempt_delivery(delivery_id) == "delivered"
    assert len(allowed.received) == 1 and inside.received == []
    assert allowed.received[0]["headers"]["Host"] == f"hooks.rebinding.test:{port}", "the name, not the address"


def make_certificates(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway authority and a certificate it signed for `name`, made by the openssl tool."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test authority")
    run("req", *curve, "-keyout", "host.key", "-out", "host.csr", "-subj", f"/CN={name}")
    (folder / "san.cnf").write_text(f"subjectAltName=DNS:{name}\n")
    run("x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "host.pem", "-days", "2", "-extfile", "san.cnf")
    return folder / "ca.pem", folder / "host.pem", folder / "host.key"


@pytest.mark.django_db
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool to make certificates")
@pytest.mark.parametrize(("certified", "outcome"), [("hooks.pinned.test", "delivered"),
                                                   ("elsewhere.test", "retry")])
def test_a_pinned_https_connection_still_verifies_the_certificate_for_the_name(
        certified, outcome, receivers, monkeypatch, settings, tmp_path):  # noqa: F811
    """Connected to the address checked, TLS still sends the name (SNI) and checks the certificate
    against it: a certificate for another name is refused."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    authority, certificate, key = make_certificates(tmp_path, certified)
    hook = Receiver()
    receivers.append(hook)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(certificate, key)
    hook.server.socket = served.wrap_socket(hook.server.socket, server_side=True)
    trusting = ssl.create_default_context(cafile=str(authority))
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: trusting)
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: real(
        "127.0.0.1" if host == "hooks.pinned.test" else host, *args, **kwargs))
    organisation, _ = partner("Pinned Tracing")
    WebhookEndpoint.objects.create(organisation=organisation, secret=SECRET,
                                   url=f"https://hooks.pinned.test:{hook.server.server_port}/hook")
    [delivery_id] = status_event(organisation)

    assert attempt_delivery(delivery_id) == outcome
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if outcome == "delivered":
        assert len(hook.received) == 1
    else:
        assert hook.received == [] and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
