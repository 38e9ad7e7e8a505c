"""Webhooks end to end: a real local HTTP receiver, a real Celery worker on Redis, signed deliveries."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.contrib.testing.worker import start_worker
from rest_framework.test import APIClient

from config.celery import app
from tests.factories import CaseFactory, HandoverListFactory, OrganisationFactory
from tracker.models import CaseShare, Organisation, OutboxEvent, WebhookDelivery, WebhookEndpoint
from tracker.services import webhooks
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, reply_record
from tracker.services.flags import sweep_deadlines
from tracker.services.partners import api_key_issue
from tracker.services.webhooks import fan_out, record_status_events

SECRET = "a-shared-secret-of-some-length"
DUE = datetime.date(2025, 7, 2)


class Receiver:
    """A local HTTP server that records what it is sent and answers with a chosen status."""

    def __init__(self, status: int = 204, location: str = "", *, host: str = "127.0.0.1", port: int = 0,
                 on_post: Callable[[dict], None] | None = None) -> None:
        self.status = status
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append({"headers": dict(self.headers), "body": body})
                if on_post is not None:
                    on_post(outer.received[-1])
                self.send_response(outer.status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.server.shutdown()


def receiver(receivers: list[Receiver], status: int = 204) -> Receiver:
    made = Receiver(status)
    receivers.append(made)
    return made


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def verify(secret: str, headers: dict, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in headers["X-Tracker-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def partner_with_list(db):
    partner = OrganisationFactory(name="Gamma Mediators", kind=Organisation.Kind.PARTNER)
    shared, unshared = CaseFactory(), CaseFactory()
    CaseShare.objects.create(case=shared, organisation=partner)
    handover_list = HandoverListFactory(recipient=partner)
    list_add_cases(handover_list=handover_list, cases=[shared, unshared], actor=None)
    return partner, handover_list, shared, unshared


@pytest.fixture
def worker(transactional_db, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.2
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    app.control.purge()
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=10) as w:
        yield w


@pytest.mark.slow
def test_signed_deliveries_reach_a_real_receiver(worker, receivers, partner_with_list):
    partner, handover_list, shared, _ = partner_with_list
    hook = receiver(receivers)
    WebhookEndpoint.objects.create(organisation=partner, url=hook.url, secret=SECRET)

    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)
    sweep_deadlines(today=DUE + datetime.timedelta(days=20))
    reply_record(handover_list=handover_list, received_on=DUE + datetime.timedelta(days=21), actor=None,
                 outcomes=[OutcomeInput(position=1, outcome="located"), OutcomeInput(position=2, outcome="deceased")])

    # Of the shared case only: its status change at hand-over and at the reply. Of both entries (the
    # list was handed to this partner): flagged, and the reply.
    wait_for(lambda: len(hook.received) >= 6)
    time.sleep(0.5)
    events = hook.events()
    assert sorted(e["event"] for e in events) == sorted(
        ["case.status_changed"] * 2 + ["entry.flagged"] * 2 + ["reply.recorded"] * 2)
    for delivery in hook.received:
        assert verify(SECRET, delivery["headers"], delivery["body"])
        assert delivery["headers"]["X-Tracker-Event"] == json.loads(delivery["body"])["event"]
    # The unshared case is never named; its entry is (the list was handed to this partner).
    assert all(e["data"].get("case") in (None, shared.pk) for e in events)
    assert {e["data"]["outcome"] for e in events if e["event"] == "reply.recorded"} == {"located", "deceased"}
    assert all(set(e["data"]) <= {"case", "from_status", "to_status", "entry", "list", "list_reference",
                                  "position", "due_on", "level", "reply", "outcome"} for e in events)
    assert WebhookDelivery.objects.filter(state="delivered").count() == 6


@pytest.mark.slow
def test_a_failing_receiver_is_retried_then_failed_and_holds_up_nothing(worker, receivers, partner_with_list):
    partner, handover_list, shared, _ = partner_with_list
    broken, healthy = receiver(receivers, status=500), receiver(receivers)
    WebhookEndpoint.objects.create(organisation=partner, url=broken.url, secret=SECRET,
                                   events=["case.status_changed"])
    other = OrganisationFactory(name="Delta Watch", kind=Organisation.Kind.PARTNER)
    CaseShare.objects.create(case=shared, organisation=other)
    WebhookEndpoint.objects.create(organisation=other, url=healthy.url, secret=SECRET, events=["case.status_changed"])

    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)

    wait_for(lambda: len(healthy.received) == 1)
    wait_for(lambda: WebhookDelivery.objects.filter(endpoint__url=broken.url, state="failed").exists())
    failed = WebhookDelivery.objects.get(endpoint__url=broken.url)
    assert (failed.attempts, failed.last_status_code, len(broken.received)) == (3, 500, 3)
    assert WebhookDelivery.objects.get(endpoint__url=healthy.url).state == "delivered"


@pytest.mark.django_db
def test_events_are_written_with_the_change_and_only_when_someone_listens(partner_with_list):
    partner, handover_list, _, _ = partner_with_list
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)
    assert not OutboxEvent.objects.exists(), "no endpoint, no outbox rows"

    WebhookEndpoint.objects.create(organisation=partner, url="http://127.0.0.1:9/hook", secret=SECRET,
                                   events=["entry.flagged", "entry.escalated"])
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    sweep_deadlines(today=DUE + datetime.timedelta(days=14))
    assert sorted(OutboxEvent.objects.values_list("event", flat=True)) == [
        "entry.escalated", "entry.escalated", "entry.flagged", "entry.flagged"]
    assert {e.data["level"] for e in OutboxEvent.objects.filter(event="entry.escalated")} == {2}


@pytest.mark.django_db
def test_fanning_out_twice_delivers_nothing_twice_and_hides_unshared_cases(partner_with_list):
    partner, handover_list, shared, _ = partner_with_list
    outsider = OrganisationFactory(name="Epsilon", kind=Organisation.Kind.PARTNER)
    WebhookEndpoint.objects.create(organisation=partner, url="http://127.0.0.1:9/a", secret=SECRET)
    WebhookEndpoint.objects.create(organisation=outsider, url="http://127.0.0.1:9/b", secret=SECRET)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)

    made = fan_out().deliveries
    assert fan_out().events == 0
    OutboxEvent.objects.update(fanned_out_at=None)  # as if the dispatcher died before marking them
    fan_out()
    assert WebhookDelivery.objects.count() == len(made) == 1, "one status change, of the one shared case"
    delivery = WebhookDelivery.objects.get()
    assert delivery.endpoint.organisation == partner
    assert delivery.payload["data"] == {"case": shared.pk, "from_status": "on_list", "to_status": "awaiting_reply"}


@pytest.mark.django_db
def test_the_dispatcher_drains_past_batches_no_one_may_hear_of_and_takes_endpoints_in_turn(
        partner_with_list, monkeypatch):
    from tracker import tasks

    partner, _, shared, _ = partner_with_list
    second = WebhookEndpoint.objects.create(organisation=partner, url="http://127.0.0.1:9/b", secret=SECRET)
    first = WebhookEndpoint.objects.create(organisation=partner, url="http://127.0.0.1:9/a", secret=SECRET)
    # Many events about cases the partner may not see, then one it may: the batches of the first
    # make no delivery, and the dispatcher must go on past them.
    unseen = [CaseFactory() for _ in range(7)]
    record_status_events([(case, "open", "on_list") for case in unseen])
    record_status_events([(shared, "on_list", "awaiting_reply")])
    queued: list[int] = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
    monkeypatch.setattr(webhooks, "FAN_OUT_BATCH", 3)

    assert tasks.dispatch_outbox() == 2
    assert not OutboxEvent.objects.filter(fanned_out_at__isnull=True).exists()
    endpoints = list(WebhookDelivery.objects.filter(pk__in=queued).order_by("id").values_list("endpoint_id", flat=True))
    assert sorted(endpoints) == sorted([first.pk, second.pk])


# --- Targets inside our own networks ----------------------------------------------------------------


INSIDE = ["https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hook",
          "https://[::1]/hook", "https://localhost/hook", "https://192.168.1.20/hook", "https://metadata.internal/"]


@pytest.fixture
def strict_partner_client(settings) -> APIClient:
    """A partner's client, with webhook targets held to public https addresses as in production."""
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    partner = OrganisationFactory(name="Gamma", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=partner, name="hooks", scopes=["read", "contribute"], actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", INSIDE)
def test_a_webhook_pointing_inside_our_networks_is_refused_at_registration(url, strict_partner_client):
    client = strict_partner_client
    answer = client.post("/api/v1/webhooks/", {"url": url, "secret": "s" * 20}, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["errors"][0]["field"] == "url"
    assert not WebhookEndpoint.objects.exists()
    assert client.post("/api/v1/webhooks/", {"url": "https://hooks.example.org/in", "secret": "s" * 20},
                       format="json").status_code == 201


@pytest.mark.django_db
def test_a_refused_target_is_explained_in_the_language_asked_for(strict_partner_client):
    client = strict_partner_client
    said = [client.post("/api/v1/webhooks/", {"url": url, "secret": "s" * 20}, format="json",
                        HTTP_ACCEPT_LANGUAGE="uk").json()["errors"][0]["message"]
            for url in ("http://hooks.example.org/in", "https://10.0.0.1/hook", "https://localhost/hook")]
    assert said == ["має бути адресою https://", "має бути загальнодоступною адресою, а не 10.0.0.1",
                    "має бути загальнодоступним хостом, а не localhost"]


@pytest.mark.django_db
def test_a_delivery_to_a_name_that_resolves_inside_is_not_sent_and_not_tried_again(partner_with_list, settings):
    """A name registered when it pointed outside, pointing inside when the delivery goes: checked again
    at each delivery, by what it resolves to then. Here the machine's own name, which resolves to an
    inside address as a name a partner controls could."""
    host = socket.gethostname()
    inside = {str(info[4][0]) for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)}
    if all(ipaddress.ip_address(address).is_global for address in inside):
        pytest.skip(f"this machine's name ({host}) resolves to public addresses only")
    partner, handover_list, _, _ = partner_with_list
    endpoint = WebhookEndpoint.objects.create(organisation=partner, url=f"https://{host}:9/hook", secret=SECRET)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)
    delivery_id = fan_out().deliveries[0]
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    assert webhooks.attempt_delivery(delivery_id) == "failed"
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.endpoint == endpoint and delivery.attempts == 1 and delivery.last_status_code is None
    assert "not sent: the host resolves to" in delivery.last_error
    assert any(str(address) in delivery.last_error for address in inside)


@pytest.mark.django_db
def test_a_redirect_is_not_followed(partner_with_list, receivers):
    partner, handover_list, _, _ = partner_with_list
    elsewhere = Receiver()
    receivers.append(elsewhere)

    first = Receiver(status=307, location=elsewhere.url)
    receivers.append(first)
    WebhookEndpoint.objects.create(organisation=partner, url=first.url, secret=SECRET)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)

    assert webhooks.attempt_delivery(fan_out().deliveries[0]) == "retry"
    assert len(first.received) == 1 and elsewhere.received == [], "the redirect's target heard nothing"
    assert WebhookDelivery.objects.get().last_status_code == 307

