"""The exchange with other parties: organisations, rounds, handover lists, their entries, replies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases.models import Case, Child
from core.append_only import AppendOnlyHistory
from core.models import TimeStampedModel, UndeletableQuerySet


class OrganisationKind(models.TextChoices):
    PARTY = "party", _("Party")
    MEDIATOR = "mediator", _("Mediator")
    PARTNER = "partner", _("Partner organisation")


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

    history = AppendOnlyHistory()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=OrganisationKind.values), name="organisation_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.short_name or self.name



class RoundKind(models.TextChoices):
    NEGOTIATION = "negotiation", _("Negotiation round")
    MEDIATOR_CHANNEL = "mediator_channel", _("Mediator channel")
    HUMANITARIAN_CHANNEL = "humanitarian_channel", _("Humanitarian channel")


class Round(TimeStampedModel):
    """A negotiation round or a standing channel through which lists are handed over."""

    Kind = RoundKind

    name = models.CharField(max_length=200, unique=True, help_text=_("For example “Istanbul, 2 June 2025”."))
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
    DRAFT = "draft", _("Draft")
    HANDED_OVER = "handed_over", _("Handed over, awaiting reply")
    PARTIALLY_ANSWERED = "partially_answered", _("Partially answered")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


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
                                help_text=_("The scanned list as handed over."))
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = AppendOnlyHistory()
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



class Verification(models.TextChoices):
    UNVERIFIED = "unverified", _("Unverified")
    VERIFIED = "verified", _("Verified")
    DISPUTED = "disputed", _("Disputed")


class ReplyState(models.TextChoices):
    NOT_SENT = "not_sent", _("Not yet handed over")
    AWAITING = "awaiting", _("Awaiting reply")
    ANSWERED = "answered", _("Answered")
    WITHDRAWN = "withdrawn", _("Withdrawn from the list")


class ListEntry(TimeStampedModel):
    """A child on a handover list: its place on the list, its own deadline and the reply it got."""

    ReplyState = ReplyState

    handover_list = models.ForeignKey(HandoverList, on_delete=models.PROTECT, related_name="entries")
    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="list_entries")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="list_entries")
    position = models.PositiveIntegerField()
    due_on = models.DateField(null=True, blank=True, help_text=_("Defaults to the list's response date."))
    reply_state = models.CharField(max_length=10, choices=ReplyState.choices, default=ReplyState.NOT_SENT)
    age_at_listing = models.PositiveSmallIntegerField(null=True, blank=True)
    # The latest outcome claimed for this entry, kept here so lists and filters need no join.
    # As long as the reply's own outcome column: "more_information_requested" is 26 characters.
    last_outcome = models.CharField(max_length=28, blank=True)
    answered_on = models.DateField(null=True, blank=True)
    # How many claims replies have made for this entry, and the case worker's verdict on the latest:
    # the list's "claimed / verified / disputed" counts and the entry's page read these, with no join.
    claim_count = models.PositiveSmallIntegerField(_("claims"), default=0)
    claim_verification = models.CharField(_("latest claim"), max_length=10, blank=True,
                                          choices=[("", _("No claim yet")), *Verification.choices])
    # The child as the list handed over described them (an imported row's names, birth date, place...),
    # which the handover document prints; empty for an entry added by hand, printed from the child.
    as_handed_over = models.JSONField(default=dict, blank=True)

    # History rows are read by entry (`id`); the copies of the entry's other indexes only slowed every
    # import's writes.
    history = AppendOnlyHistory(no_db_index=["handover_list", "child", "case", "updated_at"])
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        verbose_name_plural = _("list entries")
        ordering = ["handover_list", "position"]
        constraints = [
            # A child appears once per list, and each number on a list is used once.
            models.UniqueConstraint(fields=["handover_list", "child"], name="entry_child_once_per_list"),
            models.UniqueConstraint(fields=["handover_list", "position"], name="entry_position_once_per_list"),
            models.CheckConstraint(condition=Q(reply_state__in=ReplyState.values), name="entry_reply_state_valid"),
            models.CheckConstraint(condition=Q(claim_verification__in=["", *Verification.values]),
                                   name="entry_claim_verification_valid"),
            # The verdict is on a claim: none before the first.
            models.CheckConstraint(condition=Q(claim_count__gt=0) | Q(claim_verification=""),
                                   name="entry_claim_verification_has_claim"),
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
        ]

    def __str__(self) -> str:
        return gettext("%(list)s #%(position)s") % {"list": self.handover_list.reference, "position": self.position}


class Outcome(models.TextChoices):
    """What the answering party claims about a child. A claim, not a fact: see Verification."""

    LOCATED = "located", _("Located")
    NOT_FOUND = "not_found", _("Not found")
    NEVER_ON_TERRITORY = "never_on_territory", _("Never on our territory")
    NOW_ADULT = "now_adult", _("Now an adult")
    LEFT_COUNTRY = "left_country", _("Left the country (destination unknown)")
    RETURNED = "returned", _("Returned")
    DECEASED = "deceased", _("Deceased")
    REFUSED = "refused", _("Refused")
    MORE_INFORMATION_REQUESTED = "more_information_requested", _("More information requested")
    NO_INFORMATION = "no_information", _("No information")


class Reply(TimeStampedModel):
    """A reply received for a handover list, often partial and late."""

    handover_list = models.ForeignKey(HandoverList, on_delete=models.PROTECT, related_name="replies")
    received_from = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="replies_sent")
    received_on = models.DateField()
    reference = models.CharField(max_length=80, blank=True, help_text=_("The reply's own number, if it has one."))
    document = models.FileField(upload_to="replies/%Y/", blank=True)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = AppendOnlyHistory()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        verbose_name_plural = _("replies")
        ordering = ["-received_on", "-id"]
        indexes = [models.Index(fields=["-received_on"], name="reply_recent_idx")]

    def __str__(self) -> str:
        return gettext("Reply to %(list)s of %(date)s") % {"list": self.handover_list.reference,
                                                           "date": f"{self.received_on:%d.%m.%Y}"}


class ReplyOutcome(TimeStampedModel):
    """One child's answer in a reply: the claim, and the case worker's verification of it."""

    reply = models.ForeignKey(Reply, on_delete=models.PROTECT, related_name="outcomes")
    entry = models.ForeignKey(ListEntry, on_delete=models.PROTECT, related_name="outcomes")
    outcome = models.CharField(max_length=28, choices=Outcome.choices)
    details = models.TextField(blank=True, help_text=_("What the reply says, as written."))
    reported_location = models.CharField(max_length=255, blank=True)
    verification = models.CharField(max_length=10, choices=Verification.choices, default=Verification.UNVERIFIED)
    verification_note = models.TextField(blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_evidence = models.FileField(
        _("evidence"), upload_to="verification/%Y/", blank=True,
        help_text=_("What the verification rests on: a photo, a letter, a call's notes."))
    # 1 for the entry's first claim; a further claim for an entry already answered counts on.
    claim_number = models.PositiveSmallIntegerField(_("claim"), default=1)
    # Why the claim looked doubtful when it was recorded (an adult who is not yet 18, a return the
    # case does not show); empty when nothing did.
    doubt = models.TextField(_("doubtful because"), blank=True)

    history = AppendOnlyHistory()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["entry__position"]
        constraints = [
            models.UniqueConstraint(fields=["reply", "entry"], name="outcome_entry_once_per_reply"),
            models.CheckConstraint(condition=Q(outcome__in=Outcome.values), name="outcome_valid"),
            models.CheckConstraint(condition=Q(verification__in=Verification.values), name="verification_valid"),
            models.CheckConstraint(condition=Q(claim_number__gte=1), name="outcome_claim_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.entry}: {self.get_outcome_display()}"
