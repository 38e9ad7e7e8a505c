"""The admin's pages for importing a list or a reply: upload, preview with the matches, confirm."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases.admin import NoDeleteMixin
from core.tasks import enqueue
from core.users import signed_in_user
from tracker import spreadsheets, tasks
from tracker.models import HandoverList, ImportBatch, ImportMapping, ImportRow, Organisation, Outcome
from tracker.services.exchange import ExchangeError
from tracker.services.imports import (
    file_too_large,
    import_batch_create,
    import_batch_decide,
    import_batch_remap,
    import_batch_repeats,
    import_batch_run,
    import_batch_start,
    import_progress,
)

PREVIEW_ROWS = 1000


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportBatch.Kind.choices, widget=forms.RadioSelect,
                             initial=ImportBatch.Kind.LIST)
    file = forms.FileField(help_text=_("CSV (UTF-8, UTF-16 or Windows-1251; comma, semicolon or tab) or XLSX; a title "
                                       "line above the header is fine. Column names: see the table below."))
    sender = forms.ModelChoiceField(Organisation.objects.all(), required=False, label=_("Handed over by"))
    recipient = forms.ModelChoiceField(Organisation.objects.all(), required=False, label=_("Handed over to"))
    reference = forms.CharField(
        required=False, max_length=80,
        help_text=_("The list's reference (else the file's “list” column), or the reply's own."))
    handed_over_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                     help_text=_("Leave empty to keep the list as a draft."))
    response_due_on = forms.DateField(required=False, label=_("Reply due"),
                                      widget=forms.DateInput(attrs={"type": "date"}))
    handover_list = forms.ModelChoiceField(
        HandoverList.objects.exclude(status=HandoverList.Status.DRAFT), required=False,
        label=_("List replied to"), help_text=_("For a reply."),
    )
    received_on = forms.DateField(required=False, label=_("Reply received on"),
                                  widget=forms.DateInput(attrs={"type": "date"}))


@admin.register(ImportBatch)
class ImportBatchAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "file_name", "status", "row_count", "handover_list", "created_by", "created_at")
    list_filter = ("kind", "status")
    list_select_related = ("handover_list", "created_by")
    search_fields = ("file_name", "reference")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            upload = data["file"]
            if upload.size > settings.TRACKER_IMPORT_MAX_BYTES:
                # Refused before it is read into memory: Django has spooled it to a temporary file.
                form.add_error("file", file_too_large(upload.size))
                return self._upload_page(request, form, extra_context)
            content = upload.read()
            try:
                batch = import_batch_create(
                    kind=data["kind"], content=content, file_name=upload.name, actor=signed_in_user(request),
                    sender=data["sender"], recipient=data["recipient"], reference=data["reference"],
                    handed_over_on=data["handed_over_on"], response_due_on=data["response_due_on"],
                    handover_list=data["handover_list"], received_on=data["received_on"],
                )
            except ExchangeError as error:
                for where, why in error.problems:
                    form.add_error(where if where in form.fields else None, why)
            else:
                # The file is read and checked by a worker, never in this request: a large one would
                # hold the web process for seconds and hundreds of megabytes. The page shows the progress.
                if not enqueue(tasks.validate_import, batch.pk):
                    self.message_user(request, gettext(
                        "The job queue cannot be reached just now. The file is kept and is "
                        "checked by itself within minutes of the queue's return."), messages.WARNING)
                return HttpResponseRedirect(reverse("admin:tracker_importbatch_change", args=[batch.pk]))
        return self._upload_page(request, form, extra_context)

    def _upload_page(self, request: HttpRequest, form: ImportUploadForm,
                     extra_context: dict[str, Any] | None) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": gettext("Import a list or a reply"), "columns": spreadsheets.LIST_COLUMNS,
                   "reply_columns": spreadsheets.REPLY_COLUMNS, **(extra_context or {})}
        return TemplateResponse(request, "admin/tracker/importbatch/upload.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        batch = get_object_or_404(ImportBatch.objects.select_related("handover_list", "sender", "recipient"),
                                  pk=object_id)
        # This page replaces the admin's own, which checked the permission: the preview names
        # every child of the file.
        if not self.has_view_or_change_permission(request, batch):
            raise PermissionDenied
        if request.method == "POST":
            if "_remap" in request.POST:
                return self._remap(request, batch)
            return self._confirm(request, batch)
        rows = batch.rows.select_related("child").order_by("line_number")
        proposed = list(rows.filter(verdict=ImportRow.Verdict.PROPOSED))
        can_change = self.has_change_permission(request, batch)
        summary = batch.summary or {}
        # The mapping step: every header the reader did not recognise (or, with no header found, the
        # cells of the line most like one), each to a field or left out; every reply phrase not known.
        mappable = summary.get("headers_found") or summary.get("unread_headers") or []
        can_map = can_change and bool(batch.file) and batch.status in (
            ImportBatch.Status.FAILED, ImportBatch.Status.VALIDATED) and bool(
            mappable or summary.get("unknown_phrases"))
        fields = spreadsheets.LIST_COLUMNS if batch.kind == ImportBatch.Kind.LIST else spreadsheets.REPLY_COLUMNS
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "batch": batch,
            "title": str(batch), "progress": import_progress(batch), "proposed": proposed,
            "rows": rows[:PREVIEW_ROWS], "shown": PREVIEW_ROWS, "decisions": ImportRow.Decision.choices[1:],
            "can_confirm": batch.status == ImportBatch.Status.VALIDATED and can_change,
            "repeats": import_batch_repeats(batch) if batch.status == ImportBatch.Status.VALIDATED else [],
            "can_map": can_map, "mappable": mappable, "unknown_phrases": summary.get("unknown_phrases", []),
            "field_choices": [(name, spreadsheets.FIELD_LABELS.get(name, name)) for name in fields],
            "ignore": spreadsheets.IGNORE, "outcomes": Outcome.choices,
            "sender": batch.sender if batch.kind == ImportBatch.Kind.LIST else (
                batch.handover_list.recipient if batch.handover_list else None),
        }
        return TemplateResponse(request, "admin/tracker/importbatch/preview.html", context)

    def _remap(self, request: HttpRequest, batch: ImportBatch) -> HttpResponse:
        """The case worker's mapping of headers and phrases: kept (for the sender too), and the file
        checked again with it."""
        here = HttpResponseRedirect(reverse("admin:tracker_importbatch_change", args=[batch.pk]))
        if not self.has_change_permission(request, batch):
            raise PermissionDenied
        columns: dict[str, str] = {}
        outcomes: dict[str, str] = {}
        for name in request.POST:
            text, index = str(request.POST.get(name, "")), name.partition("-")[2]
            if name.startswith("header-") and request.POST.get(f"field-{index}"):
                columns[text] = str(request.POST[f"field-{index}"])
            if name.startswith("phrase-") and request.POST.get(f"outcome-{index}"):
                outcomes[text] = str(request.POST[f"outcome-{index}"])
        try:
            import_batch_remap(batch=batch, columns=columns, outcomes=outcomes, actor=signed_in_user(request),
                               remember=bool(request.POST.get("remember")))
        except ExchangeError as error:
            for where, why in error.problems:
                self.message_user(request, f"{where}: {why}", messages.ERROR)
            return here
        if not enqueue(tasks.validate_import, batch.pk):
            self.message_user(request, gettext("The job queue cannot be reached just now. The file is checked again by "
                                         "itself within minutes of the queue's return."), messages.WARNING)
        else:
            self.message_user(request, gettext("Mapping saved: the file is being checked again."), messages.SUCCESS)
        return here

    def _confirm(self, request: HttpRequest, batch: ImportBatch) -> HttpResponse:
        here = HttpResponseRedirect(reverse("admin:tracker_importbatch_change", args=[batch.pk]))
        if not self.has_change_permission(request, batch):
            raise PermissionDenied
        decisions = {int(name.removeprefix("decision-")): value for name, value in request.POST.items()
                     if name.startswith("decision-") and name.removeprefix("decision-").isdigit()
                     and isinstance(value, str) and value}
        try:
            import_batch_decide(batch=batch, decisions=decisions, actor=signed_in_user(request))
            if "_confirm" not in request.POST:
                self.message_user(request, gettext("Decisions saved."), messages.SUCCESS)
                return here
            started = import_batch_start(batch=batch, actor=signed_in_user(request),
                                         repeats_confirmed=bool(request.POST.get("confirm_repeats")))
        except ExchangeError as error:
            for where, why in error.problems:
                self.message_user(request, f"{where}: {why}", messages.ERROR)
            return here
        if started.row_count > settings.TRACKER_IMPORT_INLINE_ROWS:
            if enqueue(tasks.run_import, started.pk, signed_in_user(request).pk):
                self.message_user(request, gettext("Importing in the background: this page shows its progress."),
                                  messages.INFO)
            else:
                self.message_user(request, gettext("The job queue cannot be reached just now. The import is saved as "
                                  "confirmed and starts by itself within minutes of the queue's return."),
                                  messages.WARNING)
        else:
            done = import_batch_run(batch_id=started.pk, actor=signed_in_user(request))
            level = messages.SUCCESS if done.status == ImportBatch.Status.DONE else messages.ERROR
            self.message_user(request, f"{done}: {done.get_status_display().lower()}.", level)
        return here


@admin.register(ImportMapping)
class ImportMappingAdmin(NoDeleteMixin, admin.ModelAdmin):
    """How each party's files are read: the headers and reply phrases mapped on the preview."""

    list_display = ("organisation", "kind", "updated_by", "updated_at")
    list_filter = ("kind",)
    list_select_related = ("organisation", "updated_by")
    readonly_fields = ("updated_by", "updated_at")
    fields = ("organisation", "kind", "columns", "outcomes", "updated_by", "updated_at")
