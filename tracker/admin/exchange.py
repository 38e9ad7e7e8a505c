"""The case workers' pages for the exchange: organisations, rounds, handover lists, entries, replies."""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cases.admin import NameSearchMixin, NoDeleteMixin
from core.pagination import EstimatedCountPaginator
from core.users import signed_in_user
from tracker.admin.common import outcome_label, report_refusal
from tracker.admin.exports import HandoverListExportMixin
from tracker.admin.filters import ClaimVerificationFilter, EntryFlaggedFilter, LastOutcomeFilter, OneListFilter
from tracker.models import (
    HandoverList,
    ListEntry,
    Organisation,
    Outcome,
    Reply,
    ReplyOutcome,
    Round,
    Verification,
)
from tracker.pasted import parse_pasted_reply
from tracker.selectors import ListCounts, handover_lists_with_counts, open_flag_level
from tracker.services.exchange import (
    ExchangeError,
    OutcomeInput,
    RecordedReply,
    list_hand_over,
    outcome_verify,
    reply_record,
)
from tracker.spreadsheets import parse_outcome

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    class OutcomeCount(TypedDict):
        n_outcomes: int

    # Lists and replies as these pages fetch them: with the counts their get_queryset adds.
    CountedList = WithAnnotations[HandoverList, ListCounts]
    CountedReply = WithAnnotations[Reply, OutcomeCount]


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
    on_date = forms.DateField(required=False, label=_("handed over on"), widget=forms.DateInput(attrs={"type": "date"}))
    due_date = forms.DateField(required=False, label=_("reply due"), widget=forms.DateInput(attrs={"type": "date"}))


ENTRY_TABLE_ROWS = 500


@admin.register(HandoverList)
class HandoverListAdmin(HandoverListExportMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ("reference", "sender", "recipient", "round", "status", "handed_over_on", "response_due_on",
                    "entry_count", "answered_count", "awaiting_count", "overdue_count", "claim_counts")
    list_filter = ("status", "sender", "recipient", "round")
    list_select_related = ("sender", "recipient", "round")
    search_fields = ("reference", "title")
    date_hierarchy = "handed_over_on"
    readonly_fields = ("status", "handed_over_on", "response_due_on", "entries_overview", "created_by",
                       "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("reference", "title", ("sender", "recipient"), "round", "document", "notes")}),
        (_("Hand-over"), {"fields": (("status", "handed_over_on", "response_due_on"),)}),
        (_("Entries"), {"fields": ("entries_overview",)}),
        (_("Record"), {"fields": (("created_by", "created_at", "updated_at"),)}),
    )
    action_form = HandOverActionForm
    actions = ["hand_over"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[HandoverList]:
        return handover_lists_with_counts(super().get_queryset(request), today=timezone.localdate())

    @admin.display(description=_("children"), ordering="n_entries")
    def entry_count(self, obj: CountedList) -> int:
        return obj.n_entries

    @admin.display(description=_("replied"), ordering="n_answered")
    def answered_count(self, obj: CountedList) -> int:
        return obj.n_answered

    @admin.display(description=_("awaiting"), ordering="n_awaiting")
    def awaiting_count(self, obj: CountedList) -> int:
        return obj.n_awaiting

    @admin.display(description=_("overdue"), ordering="n_overdue")
    def overdue_count(self, obj: CountedList) -> int:
        return obj.n_overdue

    @admin.display(description=_("claimed / verified / disputed"), ordering="n_disputed")
    def claim_counts(self, obj: CountedList) -> str:
        # The entries claimed for, and the verdicts on their latest claims: one column, read together.
        return f"{obj.n_claimed} / {obj.n_verified} / {obj.n_disputed}"

    @admin.display(description=_("Entries"))
    def entries_overview(self, obj: CountedList) -> SafeString | str:
        if obj.pk is None:
            return gettext("Save the list, then add cases to it from the cases page.")
        entries = (
            obj.entries.select_related("child", "case")
            .annotate(open_flag_level=open_flag_level())
            .order_by("position")[:ENTRY_TABLE_ROWS]
        )
        link = reverse("admin:tracker_listentry_changelist") + f"?handover_list__id__exact={obj.pk}"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    e.position,
                    reverse("admin:cases_case_change", args=[e.case_id]),
                    e.child,
                    e.child.birth_date_display,
                    e.get_reply_state_display(),
                    date_format(e.due_on, "SHORT_DATE_FORMAT") if e.due_on else "—",
                    outcome_label(e),
                    claims_label(e),
                    gettext("level %(level)d") % {"level": e.open_flag_level} if e.open_flag_level else "",
                )
                for e in entries
            ),
        )
        return format_html(
            gettext("<p>{} children: {} replied, {} awaiting, {} overdue; {} <a href='{}'>Filter and act on the "
                    "entries</a> (showing the first {}).</p><table><thead><tr><th>#</th><th>Child</th><th>Born</th>"
                    "<th>Reply</th><th>Due</th><th>Outcome claimed</th><th>{}</th><th>Flag</th></tr></thead>"
                    "<tbody>{}</tbody></table>"),
            obj.n_entries, obj.n_answered, obj.n_awaiting, obj.n_overdue,
            gettext("claimed %(claimed)s, verified %(verified)s, disputed %(disputed)s.") % {
                "claimed": obj.n_claimed, "verified": obj.n_verified, "disputed": obj.n_disputed},
            link, ENTRY_TABLE_ROWS, gettext("Claims"), rows,
        )

    def save_model(self, request: HttpRequest, obj: HandoverList, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = signed_in_user(request)
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        # Before the admin's own "<id>/" pattern, which would otherwise take "<id>/reply/" as a bad id.
        return [
            path("<path:object_id>/reply/", self.admin_site.admin_view(self.reply_letter_view),
                 name="tracker_handoverlist_reply"),
            *super().get_urls(),
        ]

    def reply_letter_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One reply letter, recorded as one reply: its particulars, and a row per child answered,
        chosen on the list's table or pasted from a spreadsheet. All of it, or nothing."""
        handover_list = self.get_object(request, unquote(object_id))
        if handover_list is None:
            raise Http404(gettext("No such list."))
        if not (self.has_view_permission(request, handover_list) and request.user.has_perm("tracker.add_reply")):
            raise PermissionDenied
        entries = list(handover_list.entries.select_related("child").order_by("position")[:REPLY_LETTER_ROWS + 1])
        shown, more = entries[:REPLY_LETTER_ROWS], len(entries) > REPLY_LETTER_ROWS
        problems: list[tuple[str, str]] = []
        if request.method == "POST":
            form = ReplyLetterForm(request.POST, request.FILES, handover_list=handover_list)
            in_place, problems = letter_rows(shown, request.POST)
            pasted = parse_pasted_reply(request.POST.get("pasted", ""))
            problems += pasted.problems
            if form.is_valid() and not problems:
                try:
                    recorded = reply_record(
                        handover_list=handover_list, received_on=form.cleaned_data["received_on"],
                        received_from=form.cleaned_data["received_from"], reference=form.cleaned_data["reference"],
                        notes=form.cleaned_data["notes"], document=form.cleaned_data["document"],
                        outcomes=[*in_place, *pasted.outcomes], actor=signed_in_user(request))
                except ExchangeError as exc:
                    problems = exc.problems
                else:
                    self.message_user(request, letter_recorded(handover_list, recorded), messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:tracker_reply_change", args=[recorded.reply.pk]))
        else:
            form = ReplyLetterForm(handover_list=handover_list)
        posted = request.POST if request.method == "POST" else {}
        rows = [{"entry": entry, "outcome": posted.get(f"outcome-{entry.pk}", ""),
                 "location": posted.get(f"location-{entry.pk}", ""), "details": posted.get(f"details-{entry.pk}", ""),
                 "latest": outcome_label(entry) if entry.claim_count else ""}
                for entry in shown]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Record a reply letter to %(list)s") % {"list": handover_list.reference},
            "opts": self.model._meta,
            "original": handover_list,
            "form": form,
            "rows": rows,
            "more": more,
            "row_limit": REPLY_LETTER_ROWS,
            "outcomes": Outcome.choices,
            "problems": problems,
        }
        return TemplateResponse(request, "admin/tracker/handoverlist/reply_letter.html", context)

    @admin.action(description=_("Hand over the selected draft lists (dates next to the action)"))
    def hand_over(self, request: HttpRequest, queryset: QuerySet[HandoverList]) -> None:
        form = HandOverActionForm(request.POST)
        form.is_valid()
        on_date: datetime.date | None = form.cleaned_data.get("on_date")
        due: datetime.date | None = form.cleaned_data.get("due_date")
        if on_date is None:
            self.message_user(request, gettext("Give the hand-over date next to the action."), messages.ERROR)
            return
        for handover_list in queryset:
            try:
                list_hand_over(handover_list=handover_list, handed_over_on=on_date, response_due_on=due,
                               actor=signed_in_user(request))
                self.message_user(request, gettext("%(list)s handed over.") % {"list": handover_list.reference},
                                  messages.SUCCESS)
            except ExchangeError as exc:
                report_refusal(self, request, exc)


# The list's children offered as rows to fill in on the reply letter's page; past this, the rows
# are pasted (a reply to a list of thousands comes as a spreadsheet anyway).
REPLY_LETTER_ROWS = 500


class ReplyLetterForm(forms.Form):
    """A reply letter's particulars; its rows come from the list's table and the pasted text."""

    received_on = forms.DateField(label=_("received on"), widget=forms.DateInput(attrs={"type": "date"}))
    received_from = forms.ModelChoiceField(Organisation.objects.all(), label=_("from"))
    reference = forms.CharField(label=_("the letter's own reference"), max_length=80, required=False)
    document = forms.FileField(label=_("scanned letter"), required=False)
    notes = forms.CharField(label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    pasted = forms.CharField(
        label=_("rows pasted from a spreadsheet"), required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "12\tlocated\tRostov-on-Don\tin a foster family"}),
        help_text=_("Copy the cells from Excel or LibreOffice: per row the child's number on the list or name, "
                    "the outcome, the location reported, the details. A header row is skipped."))

    def __init__(self, *args: Any, handover_list: HandoverList, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["received_from"].initial = handover_list.recipient_id


def letter_rows(entries: list[ListEntry], posted: Any) -> tuple[list[OutcomeInput], list[tuple[str, str]]]:
    """The rows filled in on the list's table: an outcome chosen makes a row; a location or details
    without one is a mistake, said with the row's number."""
    outcomes: list[OutcomeInput] = []
    problems: list[tuple[str, str]] = []
    for entry in entries:
        said = (posted.get(f"outcome-{entry.pk}") or "").strip()
        location = (posted.get(f"location-{entry.pk}") or "").strip()
        details = (posted.get(f"details-{entry.pk}") or "").strip()
        label = gettext("row #%(position)s") % {"position": entry.position}
        if not said:
            if location or details:
                problems.append((label, gettext("choose the outcome claimed, or clear the location and details")))
            continue
        try:
            outcome, place = parse_outcome(said)
        except ValueError as error:
            problems.append((label, str(error)))
            continue
        outcomes.append(OutcomeInput(entry_id=entry.pk, outcome=outcome, reported_location=(location or place)[:255],
                                     details=details, label=label))
    return outcomes, problems


def letter_recorded(handover_list: HandoverList, recorded: RecordedReply) -> str:
    """What the page says once a letter is recorded: how many children, further claims and doubts."""
    said = ngettext("%(list)s: reply letter recorded for %(count)s child",
                    "%(list)s: reply letter recorded for %(count)s children", len(recorded.outcomes)) % {
        "list": handover_list.reference, "count": len(recorded.outcomes)}
    further = recorded.further_claims
    if further:
        said += "; " + ngettext("%(count)s further claim for a child already answered (%(numbers)s)",
                                "%(count)s further claims for children already answered (%(numbers)s)",
                                len(further)) % {"count": len(further),
                                                 "numbers": ", ".join(f"#{o.entry.position}" for o in further)}
    doubtful = recorded.doubtful
    if doubtful:
        said += "; " + ngettext("%(count)s claim marked doubtful (%(numbers)s)",
                                "%(count)s claims marked doubtful (%(numbers)s)", len(doubtful)) % {
            "count": len(doubtful), "numbers": ", ".join(f"#{o.entry.position}" for o in doubtful)}
    return said + "; " + ngettext("%(count)s flag cleared.", "%(count)s flags cleared.", recorded.flags_resolved) % {
        "count": recorded.flags_resolved}


def claims_label(entry: ListEntry) -> str:
    """An entry's claims in words: how many, and the verdict on the latest."""
    if not entry.claim_count:
        return "—"
    return ngettext("%(count)s claim, latest %(verdict)s", "%(count)s claims, latest %(verdict)s",
                    entry.claim_count) % {"count": entry.claim_count,
                                          "verdict": Verification(entry.claim_verification).label.lower()}


class RecordOutcomeForm(ActionForm):
    outcome = forms.ChoiceField(required=False, choices=[("", _("— outcome claimed —")), *Outcome.choices])
    received_on = forms.DateField(required=False, label=_("reply of"),
                                  widget=forms.DateInput(attrs={"type": "date"}))


@admin.register(ListEntry)
class ListEntryAdmin(NameSearchMixin, NoDeleteMixin, admin.ModelAdmin):
    search_names_path = "child__search_names"
    list_display = ("handover_list", "position", "child", "case_status", "reply_state", "due_on",
                    "last_outcome_label", "answered_on", "claims", "open_flag")
    list_display_links = ("position", "child")
    list_filter = (EntryFlaggedFilter, "reply_state", LastOutcomeFilter, ClaimVerificationFilter,
                   "handover_list__status", "handover_list__recipient", OneListFilter)
    # The (list, position) unique index serves this order; the model's "handover_list" would sort by
    # the list's own ordering, through a join.
    ordering = ("handover_list_id", "position")
    list_select_related = ("handover_list", "child", "case")
    search_fields = ("child__search_names",)
    search_help_text = _("Any spelling of the child's name, Cyrillic or Latin.")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    fields = ("handover_list", "position", "child", "case", "reply_state", "due_on", "age_at_listing",
              "last_outcome_label", "answered_on", "claims")
    readonly_fields = ("handover_list", "position", "child", "case", "reply_state", "age_at_listing",
                       "last_outcome_label", "answered_on", "claims")
    action_form = RecordOutcomeForm
    actions = ["record_outcome"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Entries are made by putting cases on a list, from the cases page or an import.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ListEntry]:
        return super().get_queryset(request).annotate(open_flag_level=open_flag_level())

    @admin.display(description=_("case"), ordering="case__status")
    def case_status(self, entry: ListEntry) -> str:
        return entry.case.get_status_display()

    @admin.display(description=_("last outcome"), ordering="last_outcome")
    def last_outcome_label(self, entry: ListEntry) -> str:
        return outcome_label(entry)

    @admin.display(description=_("claims"), ordering="claim_count")
    def claims(self, entry: ListEntry) -> str:
        return claims_label(entry)

    @admin.display(description=_("flag"), ordering="open_flag_level")
    def open_flag(self, entry: ListEntry) -> str:
        level = getattr(entry, "open_flag_level", None)
        return gettext("level %(level)d") % {"level": level} if level else ""

    @admin.action(description=_("Record the chosen outcome as a reply for the selected entries"))
    def record_outcome(self, request: HttpRequest, queryset: QuerySet[ListEntry]) -> None:
        form = RecordOutcomeForm(request.POST)
        form.is_valid()
        outcome = form.cleaned_data.get("outcome")
        received_on = form.cleaned_data.get("received_on") or timezone.localdate()
        if not outcome:
            self.message_user(request, gettext("Choose the outcome next to the action."), messages.ERROR)
            return
        by_list: dict[int, list[ListEntry]] = defaultdict(list)
        for entry in queryset.select_related("handover_list"):
            by_list[entry.handover_list_id].append(entry)
        for entries in by_list.values():
            handover_list = entries[0].handover_list
            try:
                result = reply_record(
                    handover_list=handover_list, received_on=received_on, actor=signed_in_user(request),
                    outcomes=[OutcomeInput(entry_id=e.pk, outcome=outcome) for e in entries],
                )
            except ExchangeError as exc:
                report_refusal(self, request, exc)
                continue
            recorded = ngettext("%(list)s: reply recorded for %(count)d entry", "%(list)s: reply recorded for "
                                "%(count)d entries", len(entries)) % {"list": handover_list.reference,
                                                                      "count": len(entries)}
            cleared = ngettext("%(count)s flag cleared.", "%(count)s flags cleared.", result.flags_resolved) % {
                "count": result.flags_resolved}
            self.message_user(request, f"{recorded}; {cleared}", messages.SUCCESS)


# How far ahead a disputed claim's further reply is first asked for; the case worker may change it.
DISPUTE_FOLLOW_UP_DAYS = 30


class VerificationForm(forms.ModelForm):
    """A claim's verification as the reply's page edits it; a dispute also says when a further
    reply is due, since it re-opens the entry's follow-up."""

    follow_up_due_on = forms.DateField(
        label=_("further reply due"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("When disputed: the date by which the other side must answer again."))

    class Meta:
        model = ReplyOutcome
        fields = ("verification", "verification_note", "verification_evidence")
        widgets = {"verification_note": forms.Textarea(attrs={"rows": 2, "cols": 30})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["follow_up_due_on"].initial = timezone.localdate() + datetime.timedelta(days=DISPUTE_FOLLOW_UP_DAYS)

    def has_changed(self) -> bool:
        # The follow-up date alone, always offered, is no change to the claim.
        return any(name in self.changed_data for name in self.Meta.fields)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        disputing = data.get("verification") == Verification.DISPUTED and self.initial.get(
            "verification") != Verification.DISPUTED
        due = data.get("follow_up_due_on")
        if disputing and due is None:
            self.add_error("follow_up_due_on", gettext("a disputed claim needs the date a further reply is due"))
        elif disputing and due is not None and due < timezone.localdate():
            self.add_error("follow_up_due_on", gettext("this date is in the past"))
        return data


class ReplyOutcomeInline(admin.TabularInline):
    model = ReplyOutcome
    form = VerificationForm
    extra = 0
    fields = ("entry", "claim", "outcome", "reported_location", "details", "doubt", "verification",
              "verification_note", "verification_evidence", "follow_up_due_on", "verified_by", "verified_at")
    readonly_fields = ("entry", "claim", "outcome", "details", "reported_location", "doubt", "verified_by",
                       "verified_at")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReplyOutcome]:
        return super().get_queryset(request).select_related("entry__child", "entry__handover_list", "verified_by")

    @admin.display(description=_("claim"))
    def claim(self, outcome: ReplyOutcome) -> str:
        if outcome.claim_number == 1:
            return gettext("first")
        return gettext("further claim (no. %(number)s)") % {"number": outcome.claim_number}


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

    @admin.display(description=_("children answered"), ordering="n_outcomes")
    def outcome_count(self, reply: CountedReply) -> int:
        return reply.n_outcomes

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is not ReplyOutcome:
            super().save_formset(request, form, formset, change)
            return
        # Nothing is written here (the service writes); this only records what changed, which the
        # admin's change message and history read afterwards.
        formset.save(commit=False)
        for outcome_form in formset.forms:
            if outcome_form.has_changed() and outcome_form.instance.pk:
                outcome = ReplyOutcome.objects.get(pk=outcome_form.instance.pk)
                evidence = outcome_form.cleaned_data.get("verification_evidence")
                try:
                    outcome_verify(
                        outcome=outcome, verification=outcome_form.cleaned_data["verification"],
                        note=outcome_form.cleaned_data.get("verification_note", ""),
                        evidence=evidence if "verification_evidence" in outcome_form.changed_data else None,
                        follow_up_due_on=outcome_form.cleaned_data.get("follow_up_due_on"),
                        actor=signed_in_user(request))
                except ExchangeError as exc:
                    report_refusal(self, request, exc)
