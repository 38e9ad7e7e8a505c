"""Spreadsheets uploaded as lists or replies, and their rows as they will be saved."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases.models import Child
from core.models import TimeStampedModel
from tracker.models.exchange import HandoverList, Organisation, Reply


class ImportKind(models.TextChoices):
    LIST = "list", _("Handover list")
    REPLY = "reply", _("Reply to a list")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    VALIDATING = "validating", _("Checking and matching")
    VALIDATED = "validated", _("Ready to confirm")
    FAILED = "failed", _("Refused")
    IMPORTING = "importing", _("Importing")
    DONE = "done", _("Imported")


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
    # Who confirmed the import: the writes are theirs, also when a job resumes it after a fault.
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    # The case worker's reading of this file: a header (folded, see `tracker.spreadsheets.fold`) → the
    # field it gives, or "ignore"; a reply's phrase (`phrase_key`) → the outcome it states. Saved for
    # the sender too (`ImportMapping`), so that their next file is read the same way.
    column_mapping = models.JSONField(default=dict, blank=True)
    outcome_mapping = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = _("import batches")
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
        return gettext("%(kind)s import %(id)s: %(file)s") % {"kind": self.get_kind_display(), "id": self.pk,
                                                             "file": self.file_name}

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
    MATCHED = "matched", _("Same child as a stored one")
    PROPOSED = "proposed", _("Possibly a stored child: review")
    NEW = "new", _("New child")
    ENTRY = "entry", _("Entry on the list")


class RowDecision(models.TextChoices):
    UNDECIDED = "", _("Not decided")
    ACCEPT = "accept", _("Same child: use the stored one")
    REJECT = "reject", _("Another child: add a new one")


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
        return gettext("%(batch)s line %(line)s") % {"batch": self.batch_id, "line": self.line_number}


class ImportMapping(TimeStampedModel):
    """How one party's files are read: the headers and reply phrases a case worker mapped once,
    applied to every later file of that party and kind (the batch's own mapping comes first)."""

    Kind = ImportKind

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="import_mappings")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    columns = models.JSONField(default=dict, blank=True, help_text=_("Header (folded) → field, or “ignore”."))
    outcomes = models.JSONField(default=dict, blank=True, help_text=_("Reply phrase (folded) → outcome."))
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        verbose_name = _("import mapping")
        constraints = [
            # One mapping per party and kind of file: the one the next import reads.
            models.UniqueConstraint(fields=["organisation", "kind"], name="import_mapping_once_per_sender"),
            models.CheckConstraint(condition=Q(kind__in=ImportKind.values), name="import_mapping_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} ({self.get_kind_display()})"
