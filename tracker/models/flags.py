"""What needs attention: flags raised by the deadline sweep or by hand."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases.models import Case
from core.models import UndeletableQuerySet
from tracker.models.exchange import ListEntry


class FlagKind(models.TextChoices):
    OVERDUE = "overdue", _("Overdue, no reply")
    DUE_SOON = "due_soon", _("Reply due soon")
    MANUAL = "manual", _("Raised by a case worker")
    # A claim the case worker disputed: the entry awaits a further reply by the flag's date.
    DISPUTED = "disputed", _("Claim disputed")



class FlagResolution(models.TextChoices):
    ANSWERED = "answered", _("Reply recorded")
    SUPERSEDED = "superseded", _("Superseded (now overdue)")
    DEADLINE_CHANGED = "deadline_changed", _("Deadline changed")
    WITHDRAWN = "withdrawn", _("Entry withdrawn")
    DISMISSED = "dismissed", _("Dismissed by a case worker")
    # The dispute was taken back: the claim was marked verified or unverified again.
    UNDISPUTED = "undisputed", _("Claim no longer disputed")


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
            # The open flags by kind and level (the start page's counts), the overdue ones longest
            # waiting first (its list): one partial index serves both.
            models.Index(fields=["kind", "-level", "due_on", "id"], name="flag_open_idx",
                         condition=Q(resolved_at__isnull=True)),
            # The flags page's own order (the model's, then the admin's tie-break on id), open ones.
            models.Index(fields=["-level", "raised_at", "-id"], name="flag_open_page_idx",
                         condition=Q(resolved_at__isnull=True)),
            models.Index(fields=["case"], name="flag_case_idx", condition=Q(resolved_at__isnull=True)),
            # The sweep's outbox rows: the flags this run raised or escalated.
            models.Index(fields=["raised_at"], name="flag_raised_idx"),
            models.Index(fields=["escalated_at"], name="flag_escalated_idx", condition=Q(escalated_at__isnull=False)),
            # Partners' incremental sync: the flags resolved since a time.
            models.Index(fields=["resolved_at"], name="flag_resolved_idx", condition=Q(resolved_at__isnull=False)),
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
        return gettext("%(kind)s (level %(level)s) · %(subject)s") % {
            "kind": self.get_kind_display(), "level": self.level, "subject": subject}

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


# --- Partner organisations: what is shared with them, their keys, their webhooks ---------------
