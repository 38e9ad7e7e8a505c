"""The case workers' pages for lists, replies and flags, and the tracker's additions to the case page."""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from cases.admin import CaseAdmin, NameSearchMixin, NoDeleteMixin, ReadOnlyInline
from cases.models import Case
from cases.pagination import EstimatedCountPaginator
from tracker.admin_exports import CaseExportActionsMixin, HandoverListExportMixin
from tracker.models import CaseShare, Flag, HandoverList, ListEntry, Organisation, Outcome, Reply, ReplyOutcome, Round
from tracker.selectors import handover_lists_with_counts, open_flag, open_flag_level
from tracker.services import (
    ExchangeError,
    OutcomeInput,
    flag_dismiss,
    flag_raise,
    list_add_cases,
    list_hand_over,
    outcome_verify,
    reply_record,
)


def outcome_label(entry: ListEntry) -> str:
    """The outcome last claimed for an entry in words: the column stores only its code."""
    return Outcome(entry.last_outcome).label if entry.last_outcome else "—"


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, exc: ExchangeError) -> None:
    for where, why in exc.problems:
        modeladmin.message_user(request, f"{where}: {why}", messages.ERROR)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "short_name", "kind", "country", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "short_name")


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "place", "held_on", "mediator")
    list_filter = ("kind",)
    list_select_related = ("mediator",)
    search_fields = ("name", "place")


class HandOverActionForm(ActionForm):
    on_date = forms.DateField(required=False, label="handed over on", widget=forms.DateInput(attrs={"type": "date"}))
    due_date = forms.DateField(required=False, label="reply due", widget=forms.DateInput(attrs={"type": "date"}))


ENTRY_TABLE_ROWS = 500


@admin.register(HandoverList)
class HandoverListAdmin(HandoverListExportMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ("reference", "sender", "recipient", "round", "status", "handed_over_on", "response_due_on",
                    "entry_count", "answered_count", "awaiting_count", "overdue_count")
    list_filter = ("status", "sender", "recipient", "round")
    list_select_related = ("sender", "recipient", "round")
    search_fields = ("reference", "title")
    date_hierarchy = "handed_over_on"
    readonly_fields = ("status", "handed_over_on", "response_due_on", "entries_overview", "created_by",
                       "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("reference", "title", ("sender", "recipient"), "round", "document", "notes")}),
        ("Hand-over", {"fields": (("status", "handed_over_on", "response_due_on"),)}),
        ("Entries", {"fields": ("entries_overview",)}),
        ("Record", {"fields": (("created_by", "created_at", "updated_at"),)}),
    )
    action_form = HandOverActionForm
    actions = ["hand_over"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[HandoverList]:
        return handover_lists_with_counts(super().get_queryset(request), today=timezone.localdate())

    @admin.display(description="children", ordering="n_entries")
    def entry_count(self, obj: HandoverList) -> int:
        return obj.n_entries  # type: ignore[attr-defined]

    @admin.display(description="replied", ordering="n_answered")
    def answered_count(self, obj: HandoverList) -> int:
        return obj.n_answered  # type: ignore[attr-defined]

    @admin.display(description="awaiting", ordering="n_awaiting")
    def awaiting_count(self, obj: HandoverList) -> int:
        return obj.n_awaiting  # type: ignore[attr-defined]

    @admin.display(description="overdue", ordering="n_overdue")
    def overdue_count(self, obj: HandoverList) -> int:
        return obj.n_overdue  # type: ignore[attr-defined]

    @admin.display(description="Entries")
    def entries_overview(self, obj: HandoverList) -> SafeString | str:
        if obj.pk is None:
            return "Save the list, then add cases to it from the cases page."
        entries = (
            obj.entries.select_related("child", "case")
            .annotate(open_flag_level=open_flag_level())
            .order_by("position")[:ENTRY_TABLE_ROWS]
        )
        link = reverse("admin:tracker_listentry_changelist") + f"?handover_list__id__exact={obj.pk}"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e.position,
                    reverse("admin:cases_case_change", args=[e.case_id]),
                    e.child,
                    e.child.birth_date_display,
                    e.get_reply_state_display(),
                    e.due_on or "—",
                    outcome_label(e),
                    f"level {e.open_flag_level}" if e.open_flag_level else "",
                )
                for e in entries
            ),
        )
        return format_html(
            "<p>{} children: {} replied, {} awaiting, {} overdue. <a href='{}'>Filter and act on the entries</a>"
            " (showing the first {}).</p><table><thead><tr><th>#</th><th>Child</th><th>Born</th><th>Reply</th>"
            "<th>Due</th><th>Outcome claimed</th><th>Flag</th></tr></thead><tbody>{}</tbody></table>",
            obj.n_entries, obj.n_answered, obj.n_awaiting, obj.n_overdue,  # type: ignore[attr-defined]
            link, ENTRY_TABLE_ROWS, rows,
        )

    def save_model(self, request: HttpRequest, obj: HandoverList, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.action(description="Hand over the selected draft lists (dates next to the action)")
    def hand_over(self, request: HttpRequest, queryset: QuerySet[HandoverList]) -> None:
        form = HandOverActionForm(request.POST)
        form.is_valid()
        on_date: datetime.date | None = form.cleaned_data.get("on_date")
        due: datetime.date | None = form.cleaned_data.get("due_date")
        if on_date is None:
            self.message_user(request, "Give the hand-over date next to the action.", messages.ERROR)
            return
        for handover_list in queryset:
            try:
                list_hand_over(handover_list=handover_list, handed_over_on=on_date, response_due_on=due,
                               actor=request.user)
                self.message_user(request, f"{handover_list.reference} handed over.", messages.SUCCESS)
            except ExchangeError as exc:
                _report(self, request, exc)


class FlaggedFilter(admin.SimpleListFilter):
    """Cases or entries with an open flag, and of which kind."""

    title = "flag"
    parameter_name = "flag"
    subject = "case"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("any", "Flagged"), ("overdue", "Overdue"), ("escalated", "Overdue, escalated"),
                ("due_soon", "Due soon"), ("none", "Not flagged")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return None
        conditions = {"overdue": {"kind": Flag.Kind.OVERDUE},
                      "escalated": {"kind": Flag.Kind.OVERDUE, "level__gt": 1},
                      "due_soon": {"kind": Flag.Kind.DUE_SOON}}.get(value, {})
        flagged = open_flag(self.subject, **conditions)
        return queryset.filter(~flagged if value == "none" else flagged)


class EntryFlaggedFilter(FlaggedFilter):
    subject = "entry"


class LastOutcomeFilter(admin.SimpleListFilter):
    """The outcome last claimed, by its label: the column itself stores only the code."""

    title = "last outcome claimed"
    parameter_name = "last_outcome"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("none", "None yet"), *Outcome.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ListEntry]) -> QuerySet[ListEntry] | None:
        if self.value() == "none":
            return queryset.filter(last_outcome="")
        if self.value() in Outcome.values:
            return queryset.filter(last_outcome=self.value())
        return None


class OnListFilter(admin.SimpleListFilter):
    title = "list"
    parameter_name = "on_list"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), ref) for pk, ref in HandoverList.objects.order_by("-id").values_list("pk", "reference")[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case] | None:
        if not (self.value() or "").isdigit():
            return None
        return queryset.filter(Exists(ListEntry.objects.filter(case=OuterRef("pk"), handover_list_id=self.value())))


class OrganisationFilter(admin.SimpleListFilter):
    """Cases on a list that an organisation sent or received."""

    title = "organisation"
    parameter_name = "organisation"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Organisation.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case] | None:
        if not (self.value() or "").isdigit():
            return None
        org = int(self.value())  # type: ignore[arg-type]
        on_their_list = ListEntry.objects.filter(case=OuterRef("pk")).filter(
            Q(handover_list__sender_id=org) | Q(handover_list__recipient_id=org)
        )
        return queryset.filter(Exists(on_their_list))


class ListEntryOfCaseInline(ReadOnlyInline):
    model = ListEntry
    verbose_name_plural = "lists this child is on"
    fields = ("handover_list", "position", "reply_state", "due_on", "last_outcome_label", "answered_on")
    show_change_link = True

    @admin.display(description="last outcome")
    def last_outcome_label(self, entry: ListEntry) -> str:
        return outcome_label(entry)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ListEntry]:
        return super().get_queryset(request).select_related("handover_list")


class FlagOfCaseInline(ReadOnlyInline):
    model = Flag
    fk_name = "case"
    fields = ("kind", "level", "entry", "due_on", "raised_at", "escalated_at", "resolved_at", "resolution", "note")
    ordering = ("resolved_at", "-level", "-raised_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return super().get_queryset(request).select_related("entry__handover_list")


class CaseShareOfCaseInline(admin.TabularInline):
    """Which partner organisations see this case, and how much of it."""

    model = CaseShare
    verbose_name_plural = "shared with partner organisations"
    extra = 0
    fields = ("organisation", "include_restricted", "can_contribute", "created_at", "revoked_at")
    readonly_fields = ("created_at",)
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseShare]:
        return super().get_queryset(request).select_related("organisation")


class CaseTrackerActionForm(ActionForm):
    closing_reason = forms.ChoiceField(required=False, choices=[("", "— reason —"), *Case.ClosingReason.choices])
    handover_list = forms.ModelChoiceField(
        required=False, empty_label="— draft list —",
        queryset=HandoverList.objects.filter(status=HandoverList.Status.DRAFT),
    )


class TrackedCaseAdmin(CaseExportActionsMixin, CaseAdmin):
    """The case page with its lists and flags, which only the tracker knows about."""

    inlines = [*CaseAdmin.inlines, ListEntryOfCaseInline, FlagOfCaseInline, CaseShareOfCaseInline]
    # The flag next to the status, where it is seen without scrolling the table sideways.
    list_display = ("id", "child", "status", "open_flag", "priority", "assignee", "opened_on", "updated_at")
    list_filter = (FlaggedFilter, OnListFilter, OrganisationFilter, *CaseAdmin.list_filter)
    action_form = CaseTrackerActionForm
    actions = [*CaseAdmin.actions, "add_to_list", "export_cases_csv", "export_cases_xlsx"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        top_level = (
            Flag.objects.filter(case=OuterRef("pk"), resolved_at__isnull=True).order_by("-level").values("level")
        )
        # 0, not NULL, when no flag is open: PostgreSQL sorts NULL first in descending order, which
        # would put every unflagged case above the flagged ones when sorting by the flag column.
        return super().get_queryset(request).annotate(
            open_flag_level=Coalesce(Subquery(top_level[:1], output_field=IntegerField()), 0)
        )

    @admin.display(description="flag", ordering="open_flag_level")
    def open_flag(self, case: Case) -> str:
        level = getattr(case, "open_flag_level", None)
        return f"level {level}" if level else ""

    @admin.action(description="Add selected cases to the chosen draft list")
    def add_to_list(self, request: HttpRequest, queryset: QuerySet[Case]) -> None:
        form = CaseTrackerActionForm(request.POST)
        form.is_valid()
        handover_list = form.cleaned_data.get("handover_list")
        if handover_list is None:
            self.message_user(request, "Choose a draft list next to the action.", messages.ERROR)
            return
        try:
            added = list_add_cases(handover_list=handover_list, cases=queryset, actor=request.user)
        except ExchangeError as exc:
            _report(self, request, exc)
            return
        skipped = queryset.count() - added
        self.message_user(
            request, f"Added {added} case(s) to {handover_list.reference}"
            + (f"; {skipped} already on it." if skipped else "."), messages.SUCCESS,
        )


admin.site.unregister(Case)
admin.site.register(Case, TrackedCaseAdmin)


class RecordOutcomeForm(ActionForm):
    outcome = forms.ChoiceField(required=False, choices=[("", "— outcome claimed —"), *Outcome.choices])
    received_on = forms.DateField(required=False, label="reply of",
                                  widget=forms.DateInput(attrs={"type": "date"}))


@admin.register(ListEntry)
class ListEntryAdmin(NameSearchMixin, NoDeleteMixin, admin.ModelAdmin):
    search_names_path = "child__search_names"
    list_display = ("handover_list", "position", "child", "case_status", "reply_state", "due_on",
                    "last_outcome_label", "answered_on", "open_flag")
    list_display_links = ("position", "child")
    list_filter = (EntryFlaggedFilter, "reply_state", LastOutcomeFilter, "handover_list__status",
                   "handover_list__recipient", "handover_list")
    list_select_related = ("handover_list", "child", "case")
    search_fields = ("child__search_names",)
    search_help_text = "Any spelling of the child's name, Cyrillic or Latin."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    fields = ("handover_list", "position", "child", "case", "reply_state", "due_on", "age_at_listing",
              "last_outcome_label", "answered_on")
    readonly_fields = ("handover_list", "position", "child", "case", "reply_state", "age_at_listing",
                       "last_outcome_label", "answered_on")
    action_form = RecordOutcomeForm
    actions = ["record_outcome"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Entries are made by putting cases on a list, from the cases page or an import.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ListEntry]:
        return super().get_queryset(request).annotate(open_flag_level=open_flag_level())

    @admin.display(description="case", ordering="case__status")
    def case_status(self, entry: ListEntry) -> str:
        return entry.case.get_status_display()

    @admin.display(description="last outcome", ordering="last_outcome")
    def last_outcome_label(self, entry: ListEntry) -> str:
        return outcome_label(entry)

    @admin.display(description="flag", ordering="open_flag_level")
    def open_flag(self, entry: ListEntry) -> str:
        level = getattr(entry, "open_flag_level", None)
        return f"level {level}" if level else ""

    @admin.action(description="Record the chosen outcome as a reply for the selected entries")
    def record_outcome(self, request: HttpRequest, queryset: QuerySet[ListEntry]) -> None:
        form = RecordOutcomeForm(request.POST)
        form.is_valid()
        outcome = form.cleaned_data.get("outcome")
        received_on = form.cleaned_data.get("received_on") or timezone.localdate()
        if not outcome:
            self.message_user(request, "Choose the outcome next to the action.", messages.ERROR)
            return
        by_list: dict[int, list[ListEntry]] = defaultdict(list)
        for entry in queryset.select_related("handover_list"):
            by_list[entry.handover_list_id].append(entry)
        for entries in by_list.values():
            handover_list = entries[0].handover_list
            try:
                result = reply_record(
                    handover_list=handover_list, received_on=received_on, actor=request.user,
                    outcomes=[OutcomeInput(entry_id=e.pk, outcome=outcome) for e in entries],
                )
            except ExchangeError as exc:
                _report(self, request, exc)
                continue
            self.message_user(
                request, f"{handover_list.reference}: reply recorded for {len(entries)} entr(y/ies); "
                f"{result.flags_resolved} flag(s) cleared.", messages.SUCCESS,
            )


class ReplyOutcomeInline(admin.TabularInline):
    model = ReplyOutcome
    extra = 0
    fields = ("entry", "outcome", "details", "reported_location", "verification", "verification_note",
              "verified_by", "verified_at")
    readonly_fields = ("entry", "outcome", "details", "reported_location", "verified_by", "verified_at")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReplyOutcome]:
        return super().get_queryset(request).select_related("entry__child", "entry__handover_list", "verified_by")


@admin.register(Reply)
class ReplyAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("handover_list", "received_from", "received_on", "reference", "outcome_count", "recorded_by")
    list_filter = ("received_from", "handover_list")
    list_select_related = ("handover_list", "received_from", "recorded_by")
    date_hierarchy = "received_on"
    search_fields = ("reference", "handover_list__reference")
    fields = ("handover_list", "received_from", "received_on", "reference", "document", "notes", "recorded_by")
    readonly_fields = ("handover_list", "received_from", "received_on", "recorded_by")
    inlines = [ReplyOutcomeInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A reply is recorded against entries, so that cases and flags move with it.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Reply]:
        return super().get_queryset(request).annotate(n_outcomes=Count("outcomes"))

    @admin.display(description="children answered", ordering="n_outcomes")
    def outcome_count(self, reply: Reply) -> int:
        return reply.n_outcomes  # type: ignore[attr-defined]

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is not ReplyOutcome:
            super().save_formset(request, form, formset, change)
            return
        # Nothing is written here (the service writes); this only records what changed, which the
        # admin's change message and history read afterwards.
        formset.save(commit=False)
        for outcome_form in formset.forms:
            if outcome_form.has_changed() and outcome_form.instance.pk:
                outcome = ReplyOutcome.objects.select_related("entry__case").get(pk=outcome_form.instance.pk)
                outcome_verify(outcome=outcome, verification=outcome_form.cleaned_data["verification"],
                               note=outcome_form.cleaned_data.get("verification_note", ""), actor=request.user)


class FlagForm(forms.ModelForm):
    class Meta:
        model = Flag
        fields = ("case", "note")

    def clean_note(self) -> str:
        # A flag raised by hand must say why (the service refuses it otherwise); the model allows a
        # blank note only for the sweep's flags.
        note: str = self.cleaned_data.get("note", "")
        if not note.strip():
            raise forms.ValidationError("Say what needs attention.")
        return note


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag] | None:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return None


@admin.register(Flag)
class FlagAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = FlagForm
    list_display = ("kind", "level", "case", "entry", "due_on", "raised_at", "escalated_at", "resolved_at",
                    "resolution")
    list_filter = (OpenFilter, "kind", "level", "resolution")
    list_select_related = ("case__child", "entry__handover_list")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    autocomplete_fields = ("case",)
    actions = ["dismiss"]

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("kind", "level", "case", "entry", "due_on", "note", "raised_at", "raised_by", "escalated_at",
                "resolved_at", "resolution", "resolved_by", "notified_level")

    def get_fields(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        if obj is None:
            return ("case", "note")
        return self.get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Flag, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        created = flag_raise(case=obj.case, note=obj.note, actor=request.user)
        obj.pk = created.pk
        # The page's "added" message and log entry name the flag as raised, kind and all.
        obj.refresh_from_db()

    @admin.action(description="Dismiss the selected open flags")
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        count = 0
        for flag in queryset.filter(resolved_at__isnull=True):
            flag_dismiss(flag=flag, actor=request.user)
            count += 1
        self.message_user(request, f"Dismissed {count} flag(s).", messages.SUCCESS)

# Partner access (keys, shares, webhooks) and imports of spreadsheets have their own modules;
# importing them registers their pages.
from tracker import admin_imports, admin_partners  # noqa: E402, F401
