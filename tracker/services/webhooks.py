"""Webhooks: events written to an outbox with the change, fanned out per endpoint, delivered signed.

Events are thin: ids, states and outcomes, never a child's name or a restricted field. A partner
is told of an event only when it may see the case or the list the event is about, and the case's
id is left out where the case is not shared with it. Details are read through the API, where each
read is logged.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cases.models import Case
from tracker.models import Flag, Organisation, OutboxEvent, WebhookDelivery, WebhookEndpoint
from tracker.selectors import Viewer, live_shares, visible_lists

log = logging.getLogger(__name__)
Event = WebhookEndpoint.Event
SIGNATURE_HEADER = "X-Tracker-Signature"
FAN_OUT_BATCH = 500


# Names that stand for this machine or a private network, whatever they resolve to.
PRIVATE_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, if it is: deliveries carry signed data and must go over https,
    to a host on the public internet. An address inside our own networks (loopback, private ranges,
    link-local such as a cloud's metadata service) would let a partner make the server call it."""
    if not (url.startswith("https://") or (url.startswith("http://") and settings.WEBHOOK_ALLOW_HTTP)):
        return "must be an https:// URL"
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return "is not a URL"
    if not host:
        return "names no host"
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return None
    if host == "localhost" or host.endswith(PRIVATE_NAMES):
        return f"must be a public host, not {host}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked at each delivery (`target_problem`)
    return None if address.is_global else f"must be a public address, not {address}"


def target_problem(url: str) -> str | None:
    """Why a delivery to `url` is refused now: what its name resolves to at the moment of sending, so
    that a name pointed at an inside address after it was registered is caught too."""
    problem = url_problem(url)
    if problem or settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return problem
    parts = urllib.parse.urlsplit(url)
    try:
        found = socket.getaddrinfo(parts.hostname or "", parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        return f"the host does not resolve ({error})"
    inside = sorted({str(info[4][0]) for info in found if not ipaddress.ip_address(info[4][0]).is_global})
    return f"the host resolves to {', '.join(inside)}, inside our networks" if inside else None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A delivery goes where the endpoint says and nowhere else: a redirect is an answer, not a road."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def subscribed(event: str) -> bool:
    """Whether any active endpoint wants this event: when none does, nothing is written."""
    return any(endpoint.wants(event) for endpoint in WebhookEndpoint.objects.filter(is_active=True).only("events"))


def record_reply_events(*, reply_id: int, answered: Iterable[tuple[int, int, str]]) -> int:
    """One reply.recorded event per child answered: (case id, entry id, outcome claimed), in the
    caller's transaction. Returns how many events were written."""
    if not subscribed(Event.REPLY_RECORDED):
        return 0
    made = OutboxEvent.objects.bulk_create([
        OutboxEvent(event=Event.REPLY_RECORDED, case_id=case_id, entry_id=entry_id, reply_id=reply_id,
                    data={"outcome": outcome})
        for case_id, entry_id, outcome in answered
    ], batch_size=2000)
    return len(made)


def record_flag_events(*, raised_at: datetime.datetime, escalated_at: datetime.datetime) -> int:
    """The sweep's events, set-based: one per flag this run raised or escalated."""
    flag_t, outbox_t = Flag._meta.db_table, OutboxEvent._meta.db_table
    # The level as JSON, in each database's own words.
    level_json = "jsonb_build_object('level', level)" if connection.vendor == "postgresql" else (
        "json_object('level', level)")
    written = 0
    with connection.cursor() as cursor:
        for event, column, moment in ((Event.ENTRY_FLAGGED, "raised_at", raised_at),
                                      (Event.ENTRY_ESCALATED, "escalated_at", escalated_at)):
            if not subscribed(event):
                continue
            cursor.execute(
                f"""
                INSERT INTO {outbox_t} (event, case_id, entry_id, reply_id, data, occurred_at, fanned_out_at)
                SELECT %s, case_id, entry_id, NULL, {level_json}, %s, NULL FROM {flag_t}
                WHERE {column} = %s AND kind = %s AND entry_id IS NOT NULL
                """,  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
                [event, moment, moment, Flag.Kind.OVERDUE],
            )
            written += cursor.rowcount
    return written


def record_status_events(changes: Iterable[tuple[Case, str, str]]) -> int:
    """One case.status_changed event per case moved: (case, from, to), in the caller's transaction."""
    if not subscribed(Event.CASE_STATUS_CHANGED):
        return 0
    made = OutboxEvent.objects.bulk_create([
        OutboxEvent(event=Event.CASE_STATUS_CHANGED, case_id=case.pk,
                    data={"from_status": from_status, "to_status": to_status})
        for case, from_status, to_status in changes
    ], batch_size=2000)
    return len(made)


def _visibility(organisation: Organisation, events: list[OutboxEvent]) -> tuple[set[int], set[int]]:
    """The cases shared with the organisation and the lists it may see, among those the events name:
    by the API's own rules, so that a webhook never tells what a read would not show."""
    viewer = Viewer(organisation=organisation)
    case_ids = {e.case_id for e in events}
    list_ids = {e.entry.handover_list_id for e in events if e.entry is not None}
    shared = set(live_shares(viewer).filter(case_id__in=case_ids).values_list("case_id", flat=True))
    seen = set(visible_lists(viewer).filter(pk__in=list_ids).values_list("pk", flat=True))
    return shared, seen


def payload_for(event: OutboxEvent, *, case_shared: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if case_shared:
        data["case"] = event.case_id
    if event.event == Event.CASE_STATUS_CHANGED:
        data.update(from_status=event.data.get("from_status"), to_status=event.data.get("to_status"))
    entry = event.entry
    if entry is not None:
        data.update(entry=entry.pk, list=entry.handover_list_id, list_reference=entry.handover_list.reference,
                    position=entry.position, due_on=entry.due_on.isoformat() if entry.due_on else None)
    if event.event in (Event.ENTRY_FLAGGED, Event.ENTRY_ESCALATED):
        data["level"] = event.data.get("level")
    if event.event == Event.REPLY_RECORDED:
        data.update(reply=event.reply_id, outcome=event.data.get("outcome"))
    return {"id": event.pk, "event": event.event, "occurred_at": event.occurred_at.isoformat(), "data": data}


@dataclass(frozen=True)
class FannedOut:
    """One fan-out: how many events it took from the outbox, and the deliveries they made, taken in
    turn from each endpoint so that one busy partner does not keep the others waiting."""

    events: int
    deliveries: list[int]


def fan_out(*, batch: int = FAN_OUT_BATCH) -> FannedOut:
    """Turn pending outbox events into deliveries for the endpoints that may hear of them.

    Rows are claimed with SKIP LOCKED so that two dispatchers share the work; a delivery exists at
    most once per endpoint and event, so a dispatcher killed half-way and run again sends nothing twice.
    Events no endpoint may hear of are marked done like the others: a batch of them is no sign that
    the outbox is empty (the caller drains until `events` is 0).
    """
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(fanned_out_at__isnull=True).select_related("entry__handover_list").order_by("id")[:batch]
        )
        if not events:
            return FannedOut(events=0, deliveries=[])
        endpoints = list(WebhookEndpoint.objects.filter(is_active=True).select_related("organisation"))
        deliveries = []
        for organisation in {e.organisation_id: e.organisation for e in endpoints}.values():
            shared, seen = _visibility(organisation, events)
            for endpoint in (e for e in endpoints if e.organisation_id == organisation.pk):
                for event in events:
                    if not endpoint.wants(event.event):
                        continue
                    case_shared = event.case_id in shared
                    list_seen = event.entry is not None and event.entry.handover_list_id in seen
                    if case_shared or (list_seen and event.event != Event.CASE_STATUS_CHANGED):
                        deliveries.append(WebhookDelivery(endpoint=endpoint, outbox_event=event,
                                                          payload=payload_for(event, case_shared=case_shared)))
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(fanned_out_at=timezone.now())
        made = WebhookDelivery.objects.filter(outbox_event__in=events, state=WebhookDelivery.State.PENDING).order_by(
            "id").values_list("pk", "endpoint_id")
    by_endpoint: dict[int, list[int]] = defaultdict(list)
    for delivery_id, endpoint_id in made:
        by_endpoint[endpoint_id].append(delivery_id)
    in_turn = [delivery_id for round_ in zip_longest(*by_endpoint.values()) for delivery_id in round_
               if delivery_id is not None]
    return FannedOut(events=len(events), deliveries=in_turn)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the time is signed so a replay can be refused."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def attempt_delivery(delivery_id: int) -> str:
    """One attempt to deliver; returns "delivered", "retry", "failed" or "skipped" (not pending, or busy)."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("endpoint").filter(pk=delivery_id).first())
        if delivery is None or delivery.state != WebhookDelivery.State.PENDING:
            return "skipped"
        endpoint = delivery.endpoint
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        now = timezone.now()
        request = urllib.request.Request(endpoint.url, data=body, method="POST", headers={  # noqa: S310 scheme and host checked before sending
            "Content-Type": "application/json",
            "User-Agent": "case-tracker-webhooks/1",
            "X-Tracker-Event": str(delivery.payload.get("event", "")),
            "X-Tracker-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: sign(endpoint.secret, int(now.timestamp()), body),
        })
        status_code, error = None, ""
        # Refused by policy, not by chance: not tried again.
        refused = target_problem(endpoint.url)
        try:
            if refused:
                raise urllib.error.URLError(f"not sent: {refused}")
            with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
                status_code = response.status
        except urllib.error.HTTPError as exc:
            status_code, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = status_code
        delivery.last_error = error
        if status_code is not None and 200 <= status_code < 300:
            delivery.state, delivery.delivered_at, outcome = WebhookDelivery.State.DELIVERED, now, "delivered"
        elif refused or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.state, outcome = WebhookDelivery.State.FAILED, "failed"
        else:
            outcome = "retry"
        delivery.save(update_fields=["attempts", "last_attempt_at", "last_status_code", "last_error", "state",
                                     "delivered_at", "updated_at"])
    if outcome != "delivered":
        log.warning("webhook delivery %s to %s: %s (%s)", delivery_id, endpoint.url, outcome, error)
    return outcome


def retry_delay(attempts_made: int) -> float:
    return float(settings.WEBHOOK_RETRY_BASE_SECONDS) * (2 ** max(attempts_made - 1, 0))


def stale_pending_deliveries(*, older_than: datetime.timedelta, limit: int = 1000) -> list[int]:
    """Deliveries still pending long after their last try: their task was lost with a worker."""
    cutoff = timezone.now() - older_than
    return list(WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, updated_at__lt=cutoff)
                .order_by("id").values_list("pk", flat=True)[:limit])


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Any) -> WebhookEndpoint:
    """A partner's endpoint deleted: deactivated, so no further event is fanned out to it, and marked
    deleted, so the API lists it no more; the row and its history are kept."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if endpoint.deleted_at is None:
            endpoint.is_active = False
            endpoint.deleted_at = timezone.now()
            endpoint._history_user = actor  # type: ignore[attr-defined]
            endpoint.save(update_fields=["is_active", "deleted_at", "updated_at"])
    return endpoint
