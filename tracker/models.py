"""The exchange with other parties: who handed which list to whom, what came back, what is overdue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from cases.models import Case, Child, TimeStampedModel, UndeletableQuerySet


class OrganisationKind(models.TextChoices):
    PARTY = "party", "Party"
    MEDIATOR = "mediator", "Mediator"
    PARTNER = "partner", "Partner organisation"


class Organisation(TimeStampedModel):
    """A party to the exchange, a mediator, or a partner organisation working with the tracker."""

    Kind = OrganisationKind

    name = models.CharField(max_length=200, unique=True)
    short_name = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    country = models.CharField(max_length=80, blank=True)
    contact_email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    # The account a partner's API keys act as, so that the timeline and history name who did what.
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, editable=False, on_delete=models.PROTECT,
        related_name="partner_organisation",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=OrganisationKind.values), name="organisation_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.short_name or self.name



class RoundKind(models.TextChoices):
    NEGOTIATION = "negotiation", "Negotiation round"
    MEDIATOR_CHANNEL = "mediator_channel", "Mediator channel"
    HUMANITARIAN_CHANNEL = "humanitarian_channel", "Humanitarian channel"


class Round(TimeStampedModel):
    """A negotiation round or a standing channel through which lists are handed over."""

    Kind = RoundKind

    name = models.CharField(max_length=200, unique=True, help_text="For example “Istanbul, 2 June 2025”.")
    kind = models.CharField(max_length=24, choices=Kind.choices, default=Kind.NEGOTIATION)
    place = models.CharField(max_length=120, blank=True)
    held_on = models.DateField(null=True, blank=True)
    mediator = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="mediated_rounds"
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-held_on", "name"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=RoundKind.values), name="round_kind_valid")]

    def __str__(self) -> str:
        return self.name



class ListStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    HANDED_OVER = "handed_over", "Handed over, awaiting reply"
    PARTIALLY_ANSWERED = "partially_answered", "Partially answered"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"


class HandoverList(TimeStampedModel):
    """A numbered list of children handed by one party to another on a date, awaiting an answer."""

    Status = ListStatus

    reference = models.CharField(max_length=80, unique=True)
    title = models.CharField(max_length=200, blank=True)
    sender = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="lists_sent")
    recipient = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="lists_received")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.PROTECT, related_name="lists")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    handed_over_on = models.DateField(null=True, blank=True)
    response_due_on = models.DateField(null=True, blank=True)
    document = models.FileField(upload_to="handover-lists/%Y/", blank=True,
                                help_text="The scanned list as handed over.")
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = HistoricalRecords()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["-handed_over_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ListStatus.values), name="list_status_valid"),
            # A response cannot be due before the list was handed over.
            models.CheckConstraint(
                condition=Q(response_due_on__isnull=True)
                | Q(handed_over_on__isnull=True)
                | Q(response_due_on__gte=F("handed_over_on")),
                name="list_due_not_before_handover",
            ),
            # Only a draft may lack its hand-over date.
            models.CheckConstraint(
                condition=Q(status="draft") | Q(handed_over_on__isnull=False), name="list_handed_over_has_date"
            ),
            models.CheckConstraint(condition=~Q(sender=F("recipient")), name="list_sender_not_recipient"),
        ]
        indexes = [
            # The start page's "lists awaiting replies".
            models.Index(fields=["status", "response_due_on"], name="list_status_due_idx"),
        ]

    def __str__(self) -> str:
        return self.reference



class ReplyState(models.TextChoices):
    NOT_SENT = "not_sent", "Not yet handed over"
    AWAITING = "awaiting", "Awaiting reply"
    ANSWERED = "answered", "Answered"
    WITHDRAWN = "withdrawn", "Withdrawn from the list"


class ListEntry(TimeStampedModel):
    """A child on a handover list: its place on the list, its own deadline and the reply it got."""

    ReplyState = ReplyState

    handover_list = models.ForeignKey(HandoverList, on_delete=models.PROTECT, related_name="entries")
    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="list_entries")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="list_entries")
    position = models.PositiveIntegerField()
    due_on = models.DateField(null=True, blank=True, help_text="Defaults to the list's response date.")
    reply_state = models.CharField(max_length=10, choices=ReplyState.choices, default=ReplyState.NOT_SENT)
    age_at_listing = models.PositiveSmallIntegerField(null=True, blank=True)
    # The latest outcome claimed for this entry, kept here so lists and filters need no join.
    last_outcome = models.CharField(max_length=24, blank=True)
    answered_on = models.DateField(null=True, blank=True)

    history = HistoricalRecords()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "list entries"
        ordering = ["handover_list", "position"]
        constraints = [
            # A child appears once per list, and each number on a list is used once.
            models.UniqueConstraint(fields=["handover_list", "child"], name="entry_child_once_per_list"),
            models.UniqueConstraint(fields=["handover_list", "position"], name="entry_position_once_per_list"),
            models.CheckConstraint(condition=Q(reply_state__in=ReplyState.values), name="entry_reply_state_valid"),
            models.CheckConstraint(condition=Q(position__gte=1), name="entry_position_positive"),
            models.CheckConstraint(
                condition=Q(reply_state="answered", answered_on__isnull=False)
                | (~Q(reply_state="answered") & Q(answered_on__isnull=True)),
                name="entry_answered_has_date",
            ),
        ]
        indexes = [
            # The deadline sweep: unanswered entries by due date, and nothing else.
            models.Index(fields=["due_on"], name="entry_awaiting_due_idx", condition=Q(reply_state="awaiting")),
            models.Index(fields=["child"], name="entry_child_idx"),
            models.Index(fields=["case"], name="entry_case_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.handover_list.reference} #{self.position}"


class Outcome(models.TextChoices):
    """What the answering party claims about a child. A claim, not a fact: see Verification."""

    LOCATED = "located", "Located"
    NOT_FOUND = "not_found", "Not found"
    NEVER_ON_TERRITORY = "never_on_territory", "Never on our territory"
    NOW_ADULT = "now_adult", "Now an adult"
    LEFT_COUNTRY = "left_country", "Left the country (destination unknown)"
    RETURNED = "returned", "Returned"
    DECEASED = "deceased", "Deceased"
    REFUSED = "refused", "Refused"
    MORE_INFORMATION_REQUESTED = "more_information_requested", "More information requested"
    NO_INFORMATION = "no_information", "No information"


class Verification(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    VERIFIED = "verified", "Verified"
    DISPUTED = "disputed", "Disputed"


class Reply(TimeStampedModel):
    """A reply received for a handover list, often partial and late."""

    handover_list = models.ForeignKey(HandoverList, on_delete=models.PROTECT, related_name="replies")
    received_from = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="replies_sent")
    received_on = models.DateField()
    reference = models.CharField(max_length=80, blank=True, help_text="The reply's own number, if it has one.")
    document = models.FileField(upload_to="replies/%Y/", blank=True)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = HistoricalRecords()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "replies"
        ordering = ["-received_on", "-id"]
        indexes = [models.Index(fields=["-received_on"], name="reply_recent_idx")]

    def __str__(self) -> str:
        return f"Reply to {self.handover_list.reference} of {self.received_on}"


class ReplyOutcome(TimeStampedModel):
    """One child's answer in a reply: the claim, and the case worker's verification of it."""

    reply = models.ForeignKey(Reply, on_delete=models.PROTECT, related_name="outcomes")
    entry = models.ForeignKey(ListEntry, on_delete=models.PROTECT, related_name="outcomes")
    outcome = models.CharField(max_length=28, choices=Outcome.choices)
    details = models.TextField(blank=True, help_text="What the reply says, as written.")
    reported_location = models.CharField(max_length=255, blank=True)
    verification = models.CharField(max_length=10, choices=Verification.choices, default=Verification.UNVERIFIED)
    verification_note = models.TextField(blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["entry__position"]
        constraints = [
            models.UniqueConstraint(fields=["reply", "entry"], name="outcome_entry_once_per_reply"),
            models.CheckConstraint(condition=Q(outcome__in=Outcome.values), name="outcome_valid"),
            models.CheckConstraint(condition=Q(verification__in=Verification.values), name="verification_valid"),
        ]
        indexes = [models.Index(fields=["entry"], name="outcome_entry_idx")]

    def __str__(self) -> str:
        return f"{self.entry}: {self.get_outcome_display()}"



class FlagKind(models.TextChoices):
    OVERDUE = "overdue", "Overdue, no reply"
    DUE_SOON = "due_soon", "Reply due soon"
    MANUAL = "manual", "Raised by a case worker"



class FlagResolution(models.TextChoices):
    ANSWERED = "answered", "Reply recorded"
    SUPERSEDED = "superseded", "Superseded (now overdue)"
    DEADLINE_CHANGED = "deadline_changed", "Deadline changed"
    WITHDRAWN = "withdrawn", "Entry withdrawn"
    DISMISSED = "dismissed", "Dismissed by a case worker"


class Flag(models.Model):
    """Something that needs a case worker's attention, raised by the sweep or by hand."""

    Kind = FlagKind
    Resolution = FlagResolution

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The sweep's flags are on an entry; a flag raised by hand may be on the case alone.
    entry = models.ForeignKey(ListEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="flags")
    # Always set, also for an entry's flag, so that "is this case flagged" needs no join.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="flags")
    # 1 when raised; each escalation threshold passed adds one.
    level = models.PositiveSmallIntegerField(default=1)
    # The deadline the flag was raised against: a changed deadline may be flagged again.
    due_on = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)
    raised_at = models.DateTimeField(default=timezone.now)
    escalated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The level the assignee was last told of; the digest sends what is above it.
    notified_level = models.PositiveSmallIntegerField(default=0)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["-level", "raised_at"]
        constraints = [
            # At most one open flag of a kind per entry: what makes concurrent sweeps safe.
            models.UniqueConstraint(
                fields=["entry", "kind"], condition=Q(resolved_at__isnull=True, entry__isnull=False),
                name="flag_one_open_per_entry_kind",
            ),
            models.CheckConstraint(condition=Q(kind__in=FlagKind.values), name="flag_kind_valid"),
            models.CheckConstraint(
                condition=Q(resolution__in=["", *FlagResolution.values]), name="flag_resolution_valid"
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True, resolution="") | Q(resolved_at__isnull=False) & ~Q(resolution=""),
                name="flag_resolved_has_resolution",
            ),
            models.CheckConstraint(condition=Q(level__gte=1), name="flag_level_positive"),
        ]
        indexes = [
            # The start page and the digest: open flags, highest level first.
            models.Index(fields=["kind", "-level"], name="flag_open_idx", condition=Q(resolved_at__isnull=True)),
            models.Index(fields=["case"], name="flag_case_idx", condition=Q(resolved_at__isnull=True)),
            # The sweep's outbox rows: the flags this run raised or escalated.
            models.Index(fields=["raised_at"], name="flag_raised_idx"),
            models.Index(fields=["escalated_at"], name="flag_escalated_idx", condition=Q(escalated_at__isnull=False)),
            # The sweep's "was this entry already flagged for this deadline" probe.
            models.Index(fields=["entry", "kind", "due_on"], name="flag_entry_kind_due_idx"),
            # The digest's "not yet told" scan.
            models.Index(
                fields=["id"], name="flag_unnotified_idx",
                condition=Q(resolved_at__isnull=True) & Q(notified_level__lt=F("level")),
            ),
        ]

    def __str__(self) -> str:
        subject = self.entry if self.entry_id else self.case
        return f"{self.get_kind_display()} (level {self.level}) · {subject}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


# --- Partner organisations: what is shared with them, their keys, their webhooks ---------------


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

    history = HistoricalRecords()

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

    def is_usable(self, now: object = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)  # type: ignore[operator]


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


class ImportKind(models.TextChoices):
    LIST = "list", "Handover list"
    REPLY = "reply", "Reply to a list"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    VALIDATING = "validating", "Checking and matching"
    VALIDATED = "validated", "Ready to confirm"
    FAILED = "failed", "Refused"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Imported"


class ImportBatch(TimeStampedModel):
    """One spreadsheet uploaded to become a handover list or a reply, from upload to confirmation.

    Nothing of the file reaches the lists until it is confirmed, and then all of it does in one
    transaction; a file with any bad row keeps only this record and its report of every bad row.
    """

    Kind = ImportKind
    Status = ImportStatus

    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    file = models.FileField(upload_to="imports/%Y/")
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, editable=False)
    # What the file is imported into: "list" for a new list, "reply:<list id>" for a reply. With
    # the file's hash it says "this file was already imported here" (see the constraint).
    target = models.CharField(max_length=40, editable=False)
    # A list import: who handed it to whom, when, and its reference (else the file's own column).
    sender = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recipient = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=80, blank=True)
    handed_over_on = models.DateField(null=True, blank=True)
    response_due_on = models.DateField(null=True, blank=True)
    # The list made by a list import, or the list a reply answers.
    handover_list = models.ForeignKey(HandoverList, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="imports")
    received_on = models.DateField(null=True, blank=True)
    reply = models.ForeignKey(Reply, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    row_count = models.PositiveIntegerField(default=0)
    # Rows checked (while validating) or written (while importing): what the progress bar shows.
    progress = models.PositiveIntegerField(default=0)
    # Every bad row: {"line": 7, "column": "Дата народження", "reason": "..."}; a file-level problem has no line.
    errors = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "import batches"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ImportKind.values), name="import_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="import_status_valid"),
            # The same file imported twice into the same place creates nothing the second time.
            models.UniqueConstraint(fields=["file_sha256", "target"], condition=Q(status="done"),
                                    name="import_file_once_per_target"),
            models.CheckConstraint(
                condition=Q(response_due_on__isnull=True) | Q(handed_over_on__isnull=True)
                | Q(response_due_on__gte=F("handed_over_on")),
                name="import_due_not_before_handover",
            ),
        ]
        indexes = [
            # "Was this file already imported here?" at upload.
            models.Index(fields=["file_sha256", "target"], name="import_file_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.pk}: {self.file_name}"

    @property
    def is_running(self) -> bool:
        return self.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING)

    @property
    def result_summary(self) -> str:
        """What the import wrote, in words, for its page: "rows: 6; same child as a stored one: 3; …"."""
        return "; ".join(f"{label}: {self.summary[key]}" for key, label in IMPORT_RESULT_LABELS.items()
                         if key in self.summary)


# The counts an import writes into its summary, as its page names them (the summary also keeps
# the columns it read and the preview's counts, which the page shows elsewhere).
IMPORT_RESULT_LABELS = {
    "rows": "rows", "matched": "same child as a stored one", "accepted": "proposed matches accepted",
    "new": "new children", "spellings_added": "new spellings kept", "answered": "children answered",
    "flags_resolved": "flags cleared", "cases_moved": "cases moved on",
}


class RowVerdict(models.TextChoices):
    MATCHED = "matched", "Same child as a stored one"
    PROPOSED = "proposed", "Possibly a stored child: review"
    NEW = "new", "New child"
    ENTRY = "entry", "Entry on the list"


class RowDecision(models.TextChoices):
    UNDECIDED = "", "Not decided"
    ACCEPT = "accept", "Same child: use the stored one"
    REJECT = "reject", "Another child: add a new one"


class ImportRow(models.Model):
    """One valid row of an import, as it will be saved, and the child the engine matched it to."""

    Verdict = RowVerdict
    Decision = RowDecision

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="rows")
    line_number = models.PositiveIntegerField()
    position = models.PositiveIntegerField(null=True, blank=True)
    # The row's values as they will be saved (names, birth date and its precision, sex, ...).
    data = models.JSONField(default=dict)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    child = models.ForeignKey(Child, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField(null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True, default="")

    class Meta:
        ordering = ["batch", "line_number"]
        constraints = [
            # Also the index of the preview, which pages through a batch's rows by line.
            models.UniqueConstraint(fields=["batch", "line_number"], name="import_row_line_once"),
            models.CheckConstraint(condition=Q(verdict__in=RowVerdict.values), name="import_row_verdict_valid"),
            models.CheckConstraint(condition=Q(decision__in=RowDecision.values), name="import_row_decision_valid"),
            # Only a proposed match is decided by a case worker, and a match names its child.
            models.CheckConstraint(condition=Q(decision="") | Q(verdict="proposed"),
                                   name="import_row_decision_on_proposed"),
            models.CheckConstraint(condition=Q(verdict="new") | Q(child__isnull=False),
                                   name="import_row_match_has_child"),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id} line {self.line_number}"
