"""Partner organisations' access: shares of cases and lists, API keys, webhooks and their outbox."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.models import Case
from core.append_only import AppendOnlyHistory, append_only_triggers
from core.models import TimeStampedModel
from tracker.models.exchange import HandoverList, ListEntry, Organisation, Reply


class CaseShare(TimeStampedModel):
    """A case shared with a partner organisation, and how much of it the partner may see and do."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="shares")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="case_shares")
    include_restricted = models.BooleanField(
        default=False, help_text=_("Also show the guardian, relatives, contacts and notes.")
    )
    can_contribute = models.BooleanField(default=False, help_text=_("May update what is known of the child."))
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


class ShareEvent(models.Model):
    """A case's share with an organisation began, changed or ended, written with the change
    (`tracker.services.partners`). Incremental sync reads it to tell a partner what it gained (a new
    or widened share) and what it lost (a revoked one), which the case's own times do not show."""

    class Kind(models.TextChoices):
        SHARED = "shared", _("Shared")
        CHANGED = "changed", _("Access changed")
        REVOKED = "revoked", _("Revoked")

    share = models.ForeignKey(CaseShare, on_delete=models.PROTECT, related_name="events")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The access the share gives from this moment on (nothing, once revoked).
    include_restricted = models.BooleanField(default=False)
    can_contribute = models.BooleanField(default=False)
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")

    class Meta:
        indexes = [
            # Sync: "what changed in this organisation's shares since", and per case within it.
            models.Index(fields=["organisation", "occurred_at"], name="share_event_org_time_idx"),
            models.Index(fields=["organisation", "case", "occurred_at"], name="share_event_org_case_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["shared", "changed", "revoked"]),
                                   name="share_event_kind_valid"),
        ]
        # A record of what was shared when: never changed or removed.
        triggers = append_only_triggers()

    def __str__(self) -> str:
        return f"{self.case} → {self.organisation}: {self.kind}"


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
    READ = "read", _("Read what is shared")
    CONTRIBUTE = "contribute", _("Contribute replies and updates")


class ApiKey(TimeStampedModel):
    """A partner organisation's key to the API. Only a hash of the secret is kept."""

    Scope = ApiScope

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=120, help_text=_("What the key is for, e.g. “tracing team sync”."))
    # The public part of the key, used to find it; the secret part is only ever stored hashed.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text=_("“read”, and “contribute” to post replies and updates."))
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        verbose_name = _("API key")

    def __str__(self) -> str:
        return f"{self.organisation}: {self.name} ({self.prefix}…)"

    def is_usable(self, now: datetime.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class WebhookEndpoint(TimeStampedModel):
    """Where a partner wants to be told of changes, and the secret the deliveries are signed with."""

    class Event(models.TextChoices):
        CASE_STATUS_CHANGED = "case.status_changed", _("case.status_changed")
        ENTRY_FLAGGED = "entry.flagged", _("entry.flagged")
        ENTRY_ESCALATED = "entry.escalated", _("entry.escalated")
        REPLY_RECORDED = "reply.recorded", _("reply.recorded")
        CASE_SHARED = "case.shared", _("case.shared")
        CASE_UNSHARED = "case.unshared", _("case.unshared")
        # Sent to an endpoint alone when it is registered, whatever events it chose.
        PING = "webhook.ping", _("webhook.ping")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="webhooks")
    url = models.URLField(max_length=500)
    # Kept as given: signing needs the secret itself, not a hash of it.
    secret = models.CharField(max_length=200)
    # During a rotation the old secret signs too, until `previous_secret_until`.
    previous_secret = models.CharField(max_length=200, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(default=list, help_text=_("Event names; empty means every event."))
    is_active = models.BooleanField(default=True)
    # Set when the partner deletes the endpoint: it stops receiving and leaves the API's lists, while
    # the row and its history stay.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Who pointed deliveries where, and when; the secrets themselves are never copied into the history.
    history = AppendOnlyHistory(excluded_fields=["secret", "previous_secret"])

    class Meta:
        indexes = [models.Index(fields=["organisation"], name="webhook_org_idx", condition=Q(is_active=True))]
        constraints = [
            models.CheckConstraint(condition=Q(deleted_at__isnull=True) | Q(is_active=False),
                                   name="webhook_deleted_is_inactive"),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} → {self.url}"

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events

    def signing_secrets(self, now: datetime.datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the one it replaced while
        the rotation's overlap lasts, so that a receiver may switch at its own pace."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            secrets.append(self.previous_secret)
        return secrets


class OutboxEvent(models.Model):
    """A change partners may need to hear of, written in the same transaction as the change itself."""

    event = models.CharField(max_length=32, choices=WebhookEndpoint.Event.choices)
    # None for an event about no case (a ping).
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # An event for one organisation only (a share of its own began or ended); None: whoever may see it.
    organisation = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
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
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

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
    # Set while one worker is sending it; past this time a worker that died is presumed gone.
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = _("webhook deliveries")
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
