"""Webhooks: events written to an outbox with the change, fanned out per endpoint, delivered signed.

Events are thin: ids, states and outcomes, never a child's name or a restricted field. A partner
is told of a case's event only when the case is shared with it, and of an entry's event (flagged,
escalated, answered) only when it may read the entry's list; the case's id is left out where the
case is not shared with it. A share's own events (`case.shared`, `case.unshared`) go to the
organisation it is with, and to no one else. Details are read through the API, where each read is
logged.

A delivery is claimed in one short transaction, sent with no transaction open, and its result
written in another (`attempt_delivery`): a slow receiver holds no lock and no database connection's
transaction, and a worker killed mid-call leaves a claim that runs out.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from cases.models import Case
from tracker.models import Flag, Organisation, OutboxEvent, ShareEvent, WebhookDelivery, WebhookEndpoint
from tracker.selectors import Viewer, live_shares, visible_lists

log = logging.getLogger(__name__)
Event = WebhookEndpoint.Event
SIGNATURE_HEADER = "X-Tracker-Signature"
FAN_OUT_BATCH = 500


# Names that stand for this machine or a private network, whatever they resolve to.
PRIVATE_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def is_inside(address: str) -> bool:
    """Whether an IP address is one of ours or nobody's: loopback, private, link-local, reserved,
    anything not on the public internet."""
    return not ipaddress.ip_address(address.split("%")[0]).is_global


def url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, if it is: deliveries carry signed data and must go over https,
    to a host on the public internet. An address inside our own networks (loopback, private ranges,
    link-local such as a cloud's metadata service) would let a partner make the server call it."""
    if not (url.startswith("https://") or (url.startswith("http://") and settings.WEBHOOK_ALLOW_HTTP)):
        return gettext("must be an https:// URL")
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return gettext("is not a URL")
    if not host:
        return gettext("names no host")
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return None
    if host == "localhost" or host.endswith(PRIVATE_NAMES):
        return gettext("must be a public host, not %(host)s") % {"host": host}
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked at each delivery (`target_problem`)
    return gettext("must be a public address, not %(address)s") % {"address": address} if is_inside(host) else None


@dataclass(frozen=True)
class Target:
    """Where a delivery may go now: the address its name resolves to, checked; or why not."""

    address: str | None = None
    # Refused by policy (a scheme, an inside address): not tried again.
    refused: str | None = None
    # Could not be resolved just now (a DNS failure): tried again later.
    unresolved: str | None = None


def resolve_target(url: str) -> Target:
    """What `url`'s host resolves to at the moment of sending, checked: a name pointed at an inside
    address after it was registered is caught too. The delivery then connects to the address checked
    here and to no other (`_post`): connecting by name would resolve it again, and a name that answers
    with a public address to the check and an inside one to the connection would get through."""
    problem = url_problem(url)
    if problem:
        return Target(refused=problem)
    parts = urllib.parse.urlsplit(url)
    try:
        found = socket.getaddrinfo(parts.hostname or "", parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        return Target(unresolved=gettext("the host does not resolve (%(error)s)") % {"error": error})
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        return Target(unresolved=gettext("the host resolves to no address"))
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        inside = sorted({address for address in addresses if is_inside(address)})
        if inside:
            return Target(refused=gettext("the host resolves to %(addresses)s, inside our networks") % {
                "addresses": ", ".join(inside)})
    return Target(address=addresses[0])


def target_problem(url: str) -> str | None:
    """Why a delivery to `url` cannot go now, if it cannot."""
    target = resolve_target(url)
    return target.refused or target.unresolved


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address checked, not to whatever the name resolves to by then."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.pinned_address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.pinned_address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS: the certificate is still verified for the host's name, which SNI sends."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.pinned_address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.pinned_address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def _post(url: str, address: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to `url` through `address`; the answer's status. No redirect is followed: a
    redirect is an answer (not 2xx), not a road to somewhere else."""
    parts = urllib.parse.urlsplit(url)
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    port = parts.port or (443 if parts.scheme == "https" else 80)
    conn = kind(parts.hostname or "", port, address=address, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        conn.request("POST", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")), body=body,
                     headers=headers)
        response = conn.getresponse()
        response.read(65536)
        return response.status
    finally:
        conn.close()


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


def record_share_events(events: Iterable[ShareEvent]) -> int:
    """One case.shared (a share begun or changed, with what it now grants) or case.unshared per share
    event, addressed to the share's organisation alone, in the caller's transaction."""
    wanted = {kind for kind in (Event.CASE_SHARED, Event.CASE_UNSHARED) if subscribed(kind)}
    rows = []
    for share_event in events:
        revoked = share_event.kind == ShareEvent.Kind.REVOKED
        event = Event.CASE_UNSHARED if revoked else Event.CASE_SHARED
        if event in wanted:
            data = {} if revoked else {"restricted_fields_shared": share_event.include_restricted,
                                       "can_contribute": share_event.can_contribute}
            rows.append(OutboxEvent(event=event, case_id=share_event.case_id,
                                    organisation_id=share_event.organisation_id, data=data,
                                    occurred_at=share_event.occurred_at))
    return len(OutboxEvent.objects.bulk_create(rows, batch_size=2000))


def _visibility(organisation: Organisation, events: list[OutboxEvent]) -> tuple[set[int], set[int]]:
    """The cases shared with the organisation and the lists it may see, among those the events name:
    by the API's own rules, so that a webhook never tells what a read would not show."""
    viewer = Viewer(organisation=organisation)
    case_ids = {e.case_id for e in events if e.case_id is not None}
    list_ids = {e.entry.handover_list_id for e in events if e.entry is not None}
    shared = set(live_shares(viewer).filter(case_id__in=case_ids).values_list("case_id", flat=True))
    seen = set(visible_lists(viewer).filter(pk__in=list_ids).values_list("pk", flat=True))
    return shared, seen


def payload_for(event: OutboxEvent, *, case_shared: bool, list_seen: bool) -> dict[str, Any]:
    """What one organisation is told of an event: only what it may read through the API."""
    data: dict[str, Any] = {}
    if case_shared:
        data["case"] = event.case_id
    if event.event == Event.CASE_STATUS_CHANGED:
        data.update(from_status=event.data.get("from_status"), to_status=event.data.get("to_status"))
    entry = event.entry
    if entry is not None and list_seen:
        data.update(entry=entry.pk, list=entry.handover_list_id, list_reference=entry.handover_list.reference,
                    position=entry.position, due_on=entry.due_on.isoformat() if entry.due_on else None)
    if event.event in (Event.ENTRY_FLAGGED, Event.ENTRY_ESCALATED):
        data["level"] = event.data.get("level")
    if event.event == Event.REPLY_RECORDED:
        data.update(reply=event.reply_id, outcome=event.data.get("outcome"))
    if event.event in (Event.CASE_SHARED, Event.CASE_UNSHARED, Event.PING):
        data.update(event.data)
    return {"id": event.pk, "event": event.event, "occurred_at": event.occurred_at.isoformat(), "data": data}


def _told(event: OutboxEvent, organisation_id: int, shared: set[int], seen: set[int]) -> dict[str, bool] | None:
    """Whether an organisation hears of an event, and what of it: None when it does not."""
    if event.organisation_id is not None:
        # A share's own event: for the organisation the share is (or was) with, about that case alone.
        if event.organisation_id != organisation_id:
            return None
        return {"case_shared": True, "list_seen": False}
    if event.entry is not None:
        # An entry's event (flagged, escalated, answered) is about a list: only for those who may read it.
        if event.entry.handover_list_id not in seen:
            return None
        return {"case_shared": event.case_id in shared, "list_seen": True}
    return {"case_shared": True, "list_seen": False} if event.case_id in shared else None


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
                    told = _told(event, organisation.pk, shared, seen) if endpoint.wants(event.event) else None
                    if told is not None:
                        deliveries.append(WebhookDelivery(endpoint=endpoint, outbox_event=event,
                                                          payload=payload_for(event, **told)))
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


def sign(secrets: str | list[str], timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, one v1 per secret (two during a rotation):
    the time is signed so that a receiver can refuse a replay (docs/webhooks.md)."""
    signed = f"{timestamp}.".encode() + body
    digests = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
               for secret in ([secrets] if isinstance(secrets, str) else secrets)]
    return ",".join([f"t={timestamp}", *(f"v1={digest}" for digest in digests)])


def _claim(delivery_id: int) -> tuple[WebhookDelivery, datetime.datetime] | str:
    """Take a pending delivery for one attempt, in a short transaction of its own; "skipped" when it
    is not pending or another worker holds it. The claim outlasts the call and then runs out, so a
    worker killed mid-call holds it back only until then. A delivery whose endpoint was deleted or
    deactivated since it was queued is not attempted: it ends here, "not_sent", with the reason."""
    with transaction.atomic(durable=True):
        now = timezone.now()
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("endpoint").filter(pk=delivery_id, state=WebhookDelivery.State.PENDING)
                    .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).first())
        if delivery is None:
            return "skipped"
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            reason = (gettext("the endpoint was deleted") if endpoint.deleted_at is not None
                      else gettext("the endpoint was deactivated"))
            delivery.state, delivery.last_error, delivery.claimed_until = (
                WebhookDelivery.State.FAILED, f"not sent: {reason}", None)
            delivery.save(update_fields=["state", "last_error", "claimed_until", "updated_at"])
            log.info("webhook delivery %s not sent: %s", delivery_id, reason)
            return "not_sent"
        until = now + datetime.timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 60)
        delivery.claimed_until = until
        delivery.save(update_fields=["claimed_until", "updated_at"])
    return delivery, until


def attempt_delivery(delivery_id: int) -> str:
    """One attempt to deliver; returns "delivered", "retry", "failed", "not_sent" (its endpoint was
    deleted or deactivated since: no attempt made) or "skipped" (not pending, or another worker has
    it). Must run outside any transaction: the receiver is called with none open (the durable blocks
    below refuse to nest)."""
    claimed = _claim(delivery_id)
    if isinstance(claimed, str):
        return claimed
    delivery, until = claimed
    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    now = timezone.now()
    status_code, error = None, ""
    target = resolve_target(endpoint.url)
    refused = target.refused
    if target.address is None:
        error = f"not sent: {target.refused or target.unresolved}"
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "case-tracker-webhooks/1",
            "X-Tracker-Event": str(delivery.payload.get("event", "")),
            "X-Tracker-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: sign(endpoint.signing_secrets(now), int(now.timestamp()), body),
        }
        try:
            status_code = _post(endpoint.url, target.address, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    with transaction.atomic(durable=True):
        current = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if current.state != WebhookDelivery.State.PENDING or current.claimed_until != until:
            # Our claim ran out and another worker took the delivery over: its result stands.
            return "skipped"
        current.attempts += 1
        current.last_attempt_at, current.last_status_code, current.last_error = now, status_code, error
        current.claimed_until = None
        if status_code is not None and 200 <= status_code < 300:
            current.state, current.delivered_at, outcome = WebhookDelivery.State.DELIVERED, now, "delivered"
        elif refused or current.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            # Refused by policy, not by chance: not tried again.
            current.state, outcome = WebhookDelivery.State.FAILED, "failed"
        else:
            outcome = "retry"
        current.save(update_fields=["attempts", "last_attempt_at", "last_status_code", "last_error", "state",
                                    "delivered_at", "claimed_until", "updated_at"])
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


# --- Endpoints: registered, deleted, their secrets rotated, their deliveries sent again ----------


class EndpointRefused(Exception):
    """A change to a partner's endpoints that is not allowed; the message is safe to show."""


def _ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A webhook.ping for this endpoint alone, so that a partner sees at once that deliveries reach
    it and that it verifies their signature."""
    event = OutboxEvent.objects.create(event=Event.PING, organisation_id=endpoint.organisation_id,
                                       data={"endpoint": endpoint.pk}, fanned_out_at=timezone.now())
    payload = payload_for(event, case_shared=False, list_seen=False)
    return WebhookDelivery.objects.create(endpoint=endpoint, outbox_event=event, payload=payload)


def webhook_endpoint_register(
    *, organisation: Organisation, url: str, secret: str, events: list[str], actor: User | None,
) -> tuple[WebhookEndpoint, WebhookDelivery]:
    """Register an endpoint for an organisation, within its limit
    (WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION), with the ping delivery it is to be sent."""
    problem = url_problem(url)
    if problem:
        raise EndpointRefused(problem)
    with transaction.atomic():
        # The organisation's row is the lock: two registrations at once cannot both pass the count.
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        limit = settings.WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION
        if WebhookEndpoint.objects.filter(organisation=organisation, deleted_at__isnull=True).count() >= limit:
            raise EndpointRefused(gettext(
                "an organisation may have at most %(limit)d webhook endpoints; delete one before adding another"
            ) % {"limit": limit})
        endpoint = WebhookEndpoint(organisation=organisation, url=url, secret=secret, events=events)
        endpoint._history_user = actor  # type: ignore[attr-defined]
        endpoint.save()
        ping = _ping(endpoint)
    return endpoint, ping


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: User | None) -> None:
    """Delete an endpoint the only way anything is deleted here: it sends nothing more and stays,
    with its deliveries and its history."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.deleted_at is not None:
            return
        locked.is_active, locked.deleted_at = False, timezone.now()
        locked._history_user = actor  # type: ignore[attr-defined]
        locked._change_reason = "Deleted"  # type: ignore[attr-defined]
        locked.save(update_fields=["is_active", "deleted_at", "updated_at"])


def webhook_secret_rotate(*, endpoint: WebhookEndpoint, secret: str, actor: User | None) -> WebhookEndpoint:
    """A new signing secret. The one it replaces keeps signing beside it for
    WEBHOOK_SECRET_OVERLAP_HOURS: each delivery carries both signatures until then."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if secret == locked.secret:
            raise EndpointRefused(gettext("the new secret must differ from the current one"))
        locked.previous_secret, locked.secret = locked.secret, secret
        locked.previous_secret_until = timezone.now() + datetime.timedelta(
            hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
        locked._history_user = actor  # type: ignore[attr-defined]
        locked._change_reason = "Secret rotated"  # type: ignore[attr-defined]
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"])
    return locked


def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, as it was first signed up for, with its attempts counted afresh; the
    caller queues it. Its endpoint must still be active."""
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if not locked.endpoint.is_active:
            raise EndpointRefused(gettext("the endpoint is not active"))
        if locked.claimed_until is not None and locked.claimed_until > timezone.now():
            raise EndpointRefused(gettext("the delivery is being sent now"))
        locked.state, locked.attempts, locked.delivered_at, locked.claimed_until = (
            WebhookDelivery.State.PENDING, 0, None, None)
        locked.save(update_fields=["state", "attempts", "delivered_at", "claimed_until", "updated_at"])
    return locked
