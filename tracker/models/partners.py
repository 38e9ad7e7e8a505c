"""Partner organisations' access: shares of cases and lists, API keys, webhooks and their outbox."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from cases.models import Case
from core.append_only import AppendOnlyHistory
from core.models import TimeStampedModel
from tracker.models.exchange import HandoverList, ListEntry, Organisation, Reply


class CaseShare(TimeStampedModel):
    """A case shared with a partner organisation, and how much of it the partner may see and do."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="shares")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="case_shares")
    include_restricted = models.BooleanField(
        default=False, help_text="Also show the guardian, relatives, contacts and notes."
    )
    can_contribute = models.BooleanField(default=False, help_text="May update what is known of the child.")
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = AppendOnlyHistory()

    class Meta:
        constraints = [
            # One live share per case and organisation; a revoked one stays as a record.
            models.UniqueConstraint(fields=["case", "organisation"], condition=Q(revoked_at__isnull=True),
                                    name="case_share_once_per_organisation"),
        ]
        indexes = [
            # Every partner query starts from "the cases shared with this organisation".
            models.Index(fields=["organisation", "case"], name="case_share_org_idx",
                         condition=Q(revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.case} → {self.organisation}"


class ListShare(TimeStampedModel):
    """A handover list shown to an organisation it was not addressed to (a mediator, say)."""

    handover_list = models.ForeignKey(HandoverList, on_delete=models.PROTECT, related_name="shares")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="list_shares")
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["handover_list", "organisation"], name="list_share_once_per_organisation"),
        ]

    def __str__(self) -> str:
        return f"{self.handover_list} → {self.organisation}"


class ApiScope(models.TextChoices):
    READ = "read", "Read what is shared"
    CONTRIBUTE = "contribute", "Contribute replies and updates"


class ApiKey(TimeStampedModel):
    """A partner organisation's key to the API. Only a hash of the secret is kept."""

    Scope = ApiScope

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=120, help_text="What the key is for, e.g. “tracing team sync”.")
    # The public part of the key, used to find it; the secret part is only ever stored hashed.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="“read”, and “contribute” to post replies and updates.")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.organisation}: {self.name} ({self.prefix}…)"

    def is_usable(self, now: datetime.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class WebhookEndpoint(TimeStampedModel):
    """Where a partner wants to be told of changes, and the secret the deliveries are signed with."""

    class Event(models.TextChoices):
        CASE_STATUS_CHANGED = "case.status_changed", "case.status_changed"
        ENTRY_FLAGGED = "entry.flagged", "entry.flagged"
        ENTRY_ESCALATED = "entry.escalated", "entry.escalated"
        REPLY_RECORDED = "reply.recorded", "reply.recorded"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="webhooks")
    url = models.URLField(max_length=500)
    # Kept as given: signing needs the secret itself, not a hash of it.
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list, help_text="Event names; empty means every event.")
    is_active = models.BooleanField(default=True)
    # Set when the partner deletes the endpoint: it stops receiving and leaves the API's lists, while
    # the row and its history stay.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Who pointed deliveries where, and when; the secret itself is never copied into the history.
    history = AppendOnlyHistory(excluded_fields=["secret"])

    class Meta:
        indexes = [models.Index(fields=["organisation"], name="webhook_org_idx", condition=Q(is_active=True))]

    def __str__(self) -> str:
        return f"{self.organisation} → {self.url}"

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class OutboxEvent(models.Model):
    """A change partners may need to hear of, written in the same transaction as the change itself."""

    event = models.CharField(max_length=32, choices=WebhookEndpoint.Event.choices)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey(ListEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reply = models.ForeignKey(Reply, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    # Set once deliveries for every subscribed endpoint have been made.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The dispatcher's queue: what has not been fanned out yet, oldest first.
            models.Index(fields=["id"], name="outbox_pending_idx", condition=Q(fanned_out_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"


class WebhookDelivery(TimeStampedModel):
    """One event sent to one endpoint: its signed body, every attempt, and how it ended."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    outbox_event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="deliveries")
    # Built for this endpoint's organisation: only what it may see.
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        constraints = [
            # Fanning out twice (a retried dispatcher) must not send an event twice.
            models.UniqueConstraint(fields=["endpoint", "outbox_event"], name="delivery_once_per_endpoint"),
            models.CheckConstraint(condition=Q(state__in=["pending", "delivered", "failed"]),
                                   name="delivery_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.outbox_event} → {self.endpoint}"


class IdempotencyRecord(models.Model):
    """The answer given to a POST with an Idempotency-Key, replayed when the same key comes again."""

    # Whose key space: "org:<id>" for a partner's keys, "user:<id>" for a case worker's session.
    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=200)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_once_per_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


# --- Imports of lists and replies from spreadsheets ------------------------------------------
