"""The case workers' pages for children and case files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import flatten
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cases.matching.candidates import possible_duplicates
from cases.models import Case, CaseEvent, Child, ChildAlias, ClosingRequest, RecordAccess
from cases.selectors import closest_children, search_by_name
from cases.services import (
    ALLOWED_TRANSITIONS,
    CaseFileRefused,
    MergeRefused,
    StatusStep,
    TransitionNotAllowed,
    case_add_note,
    case_change_status,
    case_open,
    case_reassign,
    case_request_closing,
    cases_move,
    child_aliases_refresh,
    child_merge,
    closing_approve,
    closing_send_back,
    log_child_reads,
)
from core.pagination import EstimatedCountPaginator
from core.users import signed_in_user

# The permissions the case file's pages ask for, beyond the model permissions of each page.
RESTRICTED_PERMISSION = "cases.view_restricted_fields"
CLOSE_PERMISSION = "cases.close_case"
APPROVE_CLOSING_PERMISSION = "cases.approve_closing"

if TYPE_CHECKING:
    # What the admin mixins are mixed into: the methods they call and override are a ModelAdmin's.
    ModelAdminMixin = admin.ModelAdmin
else:
    ModelAdminMixin = object


class NameSearchMixin:
    """Search by any spelling: the query is folded the same way as the stored names."""

    search_names_path = "search_names"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        return search_by_name(queryset, self.search_names_path, term), False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """A name search that found nothing offers the children whose names come closest."""
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        context = getattr(response, "context_data", None)
        term = request.GET.get("q", "").strip()
        if context and term and not term.isdigit() and "cl" in context and not context["cl"].result_list:
            context["did_you_mean"] = closest_children(term)
        return response


class NoDeleteMixin(ModelAdminMixin):
    """Records about children are closed or merged, never deleted."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def log_record_read(request: HttpRequest, child_id: int) -> None:
    log_child_reads([child_id], channel=RecordAccess.Channel.ADMIN, path=request.get_full_path(),
                    user=signed_in_user(request))


class ReadOnlyInline(admin.TabularInline):
    """A record's related rows shown on its page: changed through their own pages and services only."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CaseOfChildInline(ReadOnlyInline):
    model = Case
    fields = ("status", "priority", "assignee", "opened_on", "closed_on", "closing_reason")
    show_change_link = True


class ChildAliasInline(admin.TabularInline):
    """Other spellings of the child's name, one row each; the name search and matching follow them."""

    model = ChildAlias
    fields = ("name", "script", "source")
    extra = 1
    verbose_name = _("other spelling")
    verbose_name_plural = _("other spellings (Russian forms, other transliterations)")


@admin.register(Child)
class ChildAdmin(NameSearchMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ("__str__", "latin_name", "birth_date_display", "sex", "home_settlement", "home_oblast",
                    "circumstances", "category")
    list_filter = ("home_oblast", "circumstances", "category", "sex", "birth_date_precision")
    search_fields = ("search_names",)
    search_help_text = _("Any spelling of a name, Cyrillic or Latin; or a child's number.")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = ("created_at", "updated_at", "duplicates_link")
    # Searched by name like the list itself: a picker that never loads every child.
    autocomplete_fields = ("siblings",)
    inlines = [ChildAliasInline, CaseOfChildInline]
    fieldsets = (
        (_("Name as the family writes it"), {"fields": (("family_name", "given_name", "patronymic"),)}),
        (_("Latin form"), {"fields": (("family_name_latin", "given_name_latin", "patronymic_latin"),)}),
        (_("Birth and home"), {"fields": (("birth_date", "birth_date_precision", "sex"),
                                       ("home_settlement", "home_oblast"))}),
        (_("What happened"), {"fields": ("circumstances", "category", ("last_known_location", "last_known_on"),
                                      "siblings")}),
        (_("Outside references"), {"fields": (("icrc_reference", "nib_reference"),)}),
        (_("Restricted: guardian, relatives, notes"), {"classes": ("collapse",), "fields": (
            ("guardian_name", "guardian_contact"), "relatives", "notes")}),
        (_("Record"), {"fields": (("created_at", "updated_at"), "duplicates_link")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Child]:
        return super().get_queryset(request).select_related("merged_into")

    def get_fieldsets(self, request: HttpRequest, obj: Child | None = None) -> Any:
        # Guardian, relatives, contacts and notes: not on the page (nor in its form) without the role's right.
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.has_perm(RESTRICTED_PERMISSION):
            return fieldsets
        restricted = set(Child.RESTRICTED_FIELDS)
        return [(name, options) for name, options in fieldsets
                if restricted.isdisjoint(flatten(options["fields"]))]

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if any(formset.model is ChildAlias and formset.has_changed() for formset in formsets):
            child_aliases_refresh(child=form.instance, actor=signed_in_user(request))

    @admin.display(description=_("duplicates"))
    def duplicates_link(self, child: Child) -> str:
        if child.pk is None:
            return ""
        if child.merged_into_id is not None:
            return format_html(gettext("Merged into <a href='{}'>{}</a>."),
                               reverse("admin:cases_child_change", args=[child.merged_into_id]), child.merged_into)
        return format_html(gettext("<a href='{}'>Possible duplicates of this child</a>"),
                           reverse("admin:cases_child_duplicates", args=[child.pk]))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("<int:child_id>/duplicates/", self.admin_site.admin_view(self.duplicates_view),
                 name="cases_child_duplicates"),
            path("<int:child_id>/merge/<int:other_id>/", self.admin_site.admin_view(self.merge_view),
                 name="cases_child_merge"),
        ]
        return own + super().get_urls()

    def duplicates_view(self, request: HttpRequest, child_id: int) -> HttpResponse:
        """The children the matching engine finds alike to this one, with its reasons."""
        child = get_object_or_404(Child, pk=child_id)
        if not self.has_view_permission(request, child):
            return HttpResponseRedirect(reverse("admin:index"))
        log_record_read(request, child.pk)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "child": child,
                   "title": gettext("Possible duplicates of %(child)s") % {"child": child},
                   "candidates": possible_duplicates(child),
                   "can_merge": self.has_change_permission(request, child)}
        return TemplateResponse(request, "admin/cases/child/duplicates.html", context)

    def merge_view(self, request: HttpRequest, child_id: int, other_id: int) -> HttpResponse:
        """Confirm, then merge `other` into `child`: the child kept is the one whose page this is."""
        keep, merge = get_object_or_404(Child, pk=child_id), get_object_or_404(Child, pk=other_id)
        if not self.has_change_permission(request, keep):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.method == "POST":
            try:
                child_merge(keep=keep, merge=merge, actor=signed_in_user(request), note=request.POST.get("note", ""))
            except MergeRefused as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, gettext("Child %(merged)s merged into %(kept)s.")
                                  % {"merged": merge.pk, "kept": keep}, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:cases_child_change", args=[keep.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "keep": keep, "merge": merge,
                   "title": gettext("Merge child %(merged)s into child %(kept)s?")
                   % {"merged": merge.pk, "kept": keep.pk},
                   "keep_cases": keep.cases.all(), "merge_cases": merge.cases.all()}
        return TemplateResponse(request, "admin/cases/child/merge_confirm.html", context)

    @admin.display(description=_("Latin"))
    def latin_name(self, child: Child) -> str:
        return " ".join(p for p in (child.family_name_latin, child.given_name_latin) if p)

    @admin.display(description=_("Born"), ordering="birth_date")
    def birth_date_display(self, child: Child) -> str:
        return child.birth_date_display

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        # Logged once the record is shown: a missing child (redirect) or a refused read (403) shows
        # nothing, and logging it would point the log at a child that does not exist.
        if request.method == "GET" and response.status_code == 200 and object_id.isdigit():
            log_record_read(request, int(object_id))
        return response

    def save_model(self, request: HttpRequest, obj: Child, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            case_open(child=obj, actor=signed_in_user(request), note="Opened with the child's record")


def file_name(event: CaseEvent) -> str:
    return (event.attachment.name or "").rsplit("/", 1)[-1]


class CaseEventInline(ReadOnlyInline):
    model = CaseEvent
    verbose_name_plural = _("timeline")
    fields = ("happened_at", "kind", "channel", "from_status", "to_status", "actor", "message", "attachment_link")
    # What a line says and the file that came with it.
    restricted: tuple[str, ...] = ("message", "attachment_link")
    ordering = ("-happened_at", "-id")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # What was said and the files that came with it may name relatives or places: for the roles
        # that see the restricted fields, as the partner API keeps them to the shares that grant them.
        if request.user.has_perm(RESTRICTED_PERMISSION):
            return self.fields
        return tuple(name for name in self.fields if name not in self.restricted)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseEvent]:
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("attachment"))
    def attachment_link(self, event: CaseEvent) -> str:
        # Through the admin, which checks who asks, never from the public media address.
        if not event.attachment:
            return ""
        url = reverse("admin:cases_case_note_attachment", args=[event.case_id, event.pk])
        return format_html("<a href='{}'>{}</a>", url, file_name(event))


class CaseForm(forms.ModelForm):
    """The case page: priority edited in place; the status moves by its road, a reassignment says why,
    and a note joins the timeline. Nothing typed is dropped: text that nothing would keep is refused."""

    next_status = forms.ChoiceField(required=False, label=_("Move to"), help_text=_("Only the allowed next steps."))
    next_closing_reason = forms.ChoiceField(
        required=False, label=_("Closing reason"), choices=[("", "—"), *Case.ClosingReason.choices]
    )
    transition_note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label=_("Why"),
        help_text=_("Why the status or the assignee changes; kept on the timeline."))
    note_text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Note"),
                                help_text=_("What was said or learnt; it stands on the timeline."))
    note_on = forms.DateField(required=False, label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    note_channel = forms.ChoiceField(required=False, label=_("Channel"),
                                     choices=[("", "—"), *CaseEvent.Channel.choices])
    note_attachment = forms.FileField(required=False, label=_("Attachment"))

    # Set by CaseAdmin.get_form: whose page this is decides whether "Closed" closes or asks for approval.
    may_close = True

    class Meta:
        model = Case
        fields = ("child", "assignee", "priority")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.status if self.instance.pk else Case.Status.OPEN
        allowed = sorted(ALLOWED_TRANSITIONS[current])
        self.pending_closing = (ClosingRequest.objects.filter(case=self.instance, state=ClosingRequest.State.PENDING)
                                .first() if self.instance.pk else None)
        labels: dict[str, str] = {}
        if not self.may_close:
            labels[Case.Status.CLOSED] = gettext("Closed (asks a supervisor's approval)")
        if self.pending_closing is not None and not self.may_close:
            allowed = [s for s in allowed if s != Case.Status.CLOSED]
        next_status = self.fields["next_status"]
        assert isinstance(next_status, forms.ChoiceField)  # noqa: S101 an invariant, for the type checker
        next_status.choices = [("", gettext("— stay —")),
                               *[(s, labels.get(s, Case.Status(s).label)) for s in allowed]]
        if "note_on" in self.fields:
            self.fields["note_on"].initial = timezone.localdate()
        if "assignee" in self.fields:
            assignee = self.fields["assignee"]
            assert isinstance(assignee, forms.ModelChoiceField)  # noqa: S101 an invariant, for the type checker
            assignee.queryset = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
        if self.instance.pk and "child" in self.fields:
            self.fields["child"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        to_status = data.get("next_status")
        if to_status == Case.Status.CLOSED and not data.get("next_closing_reason"):
            self.add_error("next_closing_reason", gettext("Say why the case is closed."))
        if data.get("next_closing_reason") and to_status != Case.Status.CLOSED:
            self.add_error("next_closing_reason", gettext("A closing reason is kept only with “Move to: Closed”."))
        reassigned = self.instance.pk is not None and "assignee" in self.changed_data
        why = (data.get("transition_note") or "").strip()
        if reassigned and not why:
            self.add_error("transition_note", gettext("Say why the case is reassigned."))
        if why and not to_status and not reassigned:
            self.add_error("transition_note", gettext(
                "Nothing keeps this text: choose a status to move to or a new assignee, or write it as a note."))
        self._check_note(data)
        # The one-live-case rule is a partial unique constraint on the status, which is not on this
        # form, so the model's own validation skips it: without this check the database refuses it.
        child = data.get("child")
        if self.instance.pk is None and child is not None:
            live = Case.objects.filter(child=child).exclude(status=Case.Status.CLOSED).first()
            if live is not None:
                self.add_error("child", gettext("%(child)s already has a case in progress: case %(case)s.") % {
                    "child": child, "case": live.pk})
        return data

    def _check_note(self, data: dict[str, Any]) -> None:
        if not (data.get("note_text") or "").strip():
            for name in ("note_channel", "note_attachment", "note_on"):
                if name in self.changed_data and data.get(name):
                    self.add_error("note_text", gettext("Write the note itself: a date, channel or file alone "
                                                        "would not be kept."))
                    return
        elif data.get("note_on") and data["note_on"] > timezone.localdate():
            self.add_error("note_on", gettext("A note cannot be dated after today."))
        attachment = data.get("note_attachment")
        if attachment and attachment.size > settings.TRACKER_NOTE_ATTACHMENT_MAX_BYTES:
            self.add_error("note_attachment", gettext("The file is larger than %(mb)s MB.") % {
                "mb": settings.TRACKER_NOTE_ATTACHMENT_MAX_BYTES // 2**20})


class CaseActionForm(ActionForm):
    closing_reason = forms.ChoiceField(required=False, choices=[("", _("— reason —")), *Case.ClosingReason.choices])


@admin.register(Case)
class CaseAdmin(NameSearchMixin, NoDeleteMixin, admin.ModelAdmin):
    form = CaseForm
    search_names_path = "child__search_names"
    # Typed for the tracker's case page, which extends these with columns, filters and actions of its own.
    list_display: tuple[str, ...] = ("id", "child", "status", "priority", "assignee", "opened_on", "updated_at")
    list_display_links = ("id", "child")
    list_filter: ClassVar[tuple[str | type[admin.ListFilter], ...]] = (
        "status", "priority", "assignee", "child__home_oblast", "child__circumstances")
    list_select_related = ("child", "assignee")
    search_fields = ("child__search_names",)
    search_help_text = _("Any spelling of the child's name, Cyrillic or Latin; or a case number.")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = ("status", "closing_awaiting", "opened_on", "closed_on", "closing_reason", "closing_note",
                       "created_at", "updated_at", "child_born", "child_home", "child_circumstances",
                       "child_last_known")
    fieldsets = (
        (None, {"fields": ("child", ("status", "priority", "assignee"), "closing_awaiting")}),
        (_("The child"), {"fields": (("child_born", "child_home"), ("child_circumstances", "child_last_known"))}),
        (_("Change status or assignee"), {"fields": ("next_status", "next_closing_reason", "transition_note")}),
        (_("Add a note"), {"fields": (("note_on", "note_channel"), "note_text", "note_attachment")}),
        (_("Dates"), {"fields": (("opened_on", "closed_on"), ("closing_reason", "closing_note"),
                                 ("created_at", "updated_at"))}),
    )
    inlines: ClassVar[list[type[admin.options.InlineModelAdmin]]] = [CaseEventInline]
    action_form: ClassVar[type[ActionForm]] = CaseActionForm
    actions = ["close_cases"]
    autocomplete_fields = ("child",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        # A case is named by its child: the autocomplete and every other page printing cases
        # would otherwise fetch the children one by one. The changelist skips list_select_related
        # once a select_related is set, so this one carries the list's assignee too.
        return super().get_queryset(request).select_related("child", "assignee")

    def get_fieldsets(self, request: HttpRequest, obj: Case | None = None) -> Any:
        if obj is None:
            return ((None, {"fields": ("child", "priority", "assignee")}),)
        fieldsets = super().get_fieldsets(request, obj)
        if not request.user.has_perm(RESTRICTED_PERMISSION):
            fieldsets = [(name, {**options, "fields": [
                row for row in options["fields"] if row != ("closing_reason", "closing_note")]})
                for name, options in fieldsets]
        if self.has_change_permission(request, obj):
            return fieldsets
        # Seen, not worked on: no boxes for a status, an assignee or a note.
        return [(name, options) for name, options in fieldsets
                if not {"next_status", "note_text"} & set(flatten(options["fields"]))]

    def get_form(self, request: HttpRequest, obj: Case | None = None, change: bool = False,
                 **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.may_close = request.user.has_perm(CLOSE_PERMISSION)  # type: ignore[attr-defined]
        return form

    def get_urls(self) -> list[URLPattern]:
        own = [path("<int:case_id>/notes/<int:event_id>/attachment/",
                    self.admin_site.admin_view(self.attachment_view), name="cases_case_note_attachment")]
        return own + super().get_urls()

    def attachment_view(self, request: HttpRequest, case_id: int, event_id: int) -> FileResponse:
        """A note's file, to those who may see the case; a read of the child's record."""
        event = get_object_or_404(CaseEvent.objects.select_related("case"), pk=event_id, case_id=case_id)
        if not (self.has_view_permission(request, event.case) and request.user.has_perm(RESTRICTED_PERMISSION)):
            raise PermissionDenied
        if not event.attachment:
            raise Http404(gettext("This note has no file."))
        log_record_read(request, event.case.child_id)
        return FileResponse(event.attachment.open("rb"), as_attachment=True,
                            filename=file_name(event))

    @admin.display(description=_("closing"))
    def closing_awaiting(self, case: Case) -> str:
        pending = case.closing_requests.filter(state=ClosingRequest.State.PENDING).select_related(
            "requested_by").first()
        if pending is None:
            return "—"
        return format_html(
            "<a href='{}'>{}</a>", reverse("admin:cases_closingrequest_change", args=[pending.pk]),
            gettext("%(reason)s, asked by %(who)s on %(day)s: awaiting a supervisor's approval") % {
                "reason": pending.get_closing_reason_display(), "who": pending.requested_by or "—",
                "day": f"{timezone.localtime(pending.created_at):%Y-%m-%d}"})

    @admin.display(description=_("born"))
    def child_born(self, case: Case) -> str:
        return case.child.birth_date_display

    @admin.display(description=_("home"))
    def child_home(self, case: Case) -> str:
        child = case.child
        return ", ".join(part for part in (child.home_settlement, child.get_home_oblast_display()) if part) or "—"

    @admin.display(description=_("what happened"))
    def child_circumstances(self, case: Case) -> str:
        return f"{case.child.get_circumstances_display()} · {case.child.get_category_display()}"

    @admin.display(description=_("last known"))
    def child_last_known(self, case: Case) -> str:
        child = case.child
        when = f" ({child.last_known_on:%Y-%m-%d})" if child.last_known_on else ""
        return f"{child.last_known_location or '—'}{when}"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        # As for the child's page: only a case page actually shown is a read of the child's record.
        if request.method == "GET" and response.status_code == 200 and object_id.isdigit():
            child_id = Case.objects.filter(pk=int(object_id)).values_list("child_id", flat=True).first()
            if child_id is not None:
                log_record_read(request, child_id)
        return response

    def save_model(self, request: HttpRequest, obj: Case, form: forms.ModelForm, change: bool) -> None:
        actor = signed_in_user(request)
        if not change:
            opened = case_open(child=obj.child, actor=actor, assignee=obj.assignee, priority=obj.priority)
            obj.pk = opened.pk
            obj.refresh_from_db()
            return
        data = form.cleaned_data
        why = (data.get("transition_note") or "").strip()
        reassigned = "assignee" in form.changed_data
        # The case row itself only when a field of it changed (the priority): no empty history rows.
        edited = set(form.changed_data) & set(CaseForm.Meta.fields) - {"assignee", "child"}
        try:
            if reassigned:
                # Through the service, which writes the timeline line; the form's own save keeps the old one.
                new_assignee, obj.assignee_id = obj.assignee, form.initial.get("assignee")
            if edited:
                super().save_model(request, obj, form, change)
            if reassigned:
                case_reassign(case=obj, assignee=new_assignee, actor=actor, reason=why)
            self._move(request, obj, data, why)
            if (data.get("note_text") or "").strip():
                case_add_note(case=obj, actor=actor, text=data["note_text"], channel=data.get("note_channel", ""),
                              on=data.get("note_on"), attachment=data.get("note_attachment"))
        except (TransitionNotAllowed, CaseFileRefused) as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def _move(self, request: HttpRequest, case: Case, data: dict[str, Any], why: str) -> None:
        to_status = data.get("next_status")
        if not to_status:
            return
        reason = data.get("next_closing_reason", "")
        if to_status == Case.Status.CLOSED and not request.user.has_perm(CLOSE_PERMISSION):
            case_request_closing(case=case, actor=signed_in_user(request), reason=reason, note=why)
            self.message_user(request, gettext("The closing of case %(id)s is recorded and awaits a supervisor's "
                                               "approval.") % {"id": case.pk}, messages.INFO)
            return
        case_change_status(case=case, to_status=to_status, actor=signed_in_user(request), note=why,
                           closing_reason=reason)

    def has_close_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CLOSE_PERMISSION)

    @admin.action(description=_("Close selected cases with the chosen reason"), permissions=["close"])
    def close_cases(self, request: HttpRequest, queryset: QuerySet[Case]) -> None:
        reason = request.POST.get("closing_reason", "")
        if reason not in Case.ClosingReason.values:
            self.message_user(request, gettext("Choose a closing reason next to the action."), messages.ERROR)
            return
        # A closed case cannot be closed again; the others are closed together, in one move.
        refused = [gettext("case %(case)s is already closed") % {"case": pk}
                   for pk in queryset.filter(status=Case.Status.CLOSED).values_list("pk", flat=True)]
        closing = StatusStep(Case.Status.CLOSED, closing_reason=reason)
        try:
            closed = len(cases_move(cases=list(queryset.exclude(status=Case.Status.CLOSED)),
                                    steps=lambda case: [closing], actor=signed_in_user(request)))
        except TransitionNotAllowed as exc:
            closed, refused = 0, [str(exc)]
        if closed:
            self.message_user(request, ngettext("Closed %(n)d case.", "Closed %(n)d cases.", closed)
                              % {"n": closed}, messages.SUCCESS)
        for problem in refused:
            self.message_user(request, problem, messages.WARNING)


class PendingFirstFilter(admin.SimpleListFilter):
    """The supervisors' queue opens on the closings awaiting approval; the decided ones a click away."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*((value, str(label)) for value, label in ClosingRequest.State.choices), ("all", gettext("All"))]

    def choices(self, changelist: Any) -> Any:
        current = self.value() or ClosingRequest.State.PENDING
        for value, label in self.lookup_choices:
            yield {"selected": current == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}

    def queryset(self, request: HttpRequest, queryset: QuerySet[ClosingRequest]) -> QuerySet[ClosingRequest]:
        value = self.value() or ClosingRequest.State.PENDING
        return queryset if value == "all" else queryset.filter(state=value)


class ClosingDecisionForm(forms.ModelForm):
    """Approve or send back, by the button pressed; sending back needs a note, and a note is never dropped."""

    decision_note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Note"),
                                    help_text=_("Needed to send the closing back: what must change."))

    class Meta:
        model = ClosingRequest
        fields = ("decision_note",)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        approve, send_back = "_approve" in self.data, "_send_back" in self.data
        if self.instance.state != ClosingRequest.State.PENDING:
            raise forms.ValidationError(gettext("This closing was already decided."))
        if not (approve or send_back):
            raise forms.ValidationError(gettext("Approve the closing or send it back."))
        if send_back and not (data.get("decision_note") or "").strip():
            self.add_error("decision_note", gettext("Say why the closing is sent back."))
        self.decision = "approve" if approve else "send_back"
        return data


@admin.register(ClosingRequest)
class ClosingRequestAdmin(NoDeleteMixin, admin.ModelAdmin):
    """The supervisors' queue of closings asked by case workers, oldest first."""

    form = ClosingDecisionForm
    list_display = ("created_at", "case_link", "closing_reason", "requested_by", "state", "decided_by", "decided_at")
    list_filter = (PendingFirstFilter, "closing_reason")
    list_select_related = ("case__child", "requested_by", "decided_by")
    ordering = ("created_at", "id")
    readonly_fields = ("case_link", "case_status", "closing_reason", "note", "asked_by", "created_at", "state",
                       "decided_by_name", "decided_at")
    fields = ("case_link", "case_status", ("closing_reason", "asked_by", "created_at"), "note",
              ("state", "decided_by_name", "decided_at"), "decision_note")
    change_form_template = "admin/cases/closingrequest/change_form.html"

    @admin.display(description=_("case"), ordering="case")
    def case_link(self, request_: ClosingRequest) -> str:
        return format_html("<a href='{}'>{}</a>", reverse("admin:cases_case_change", args=[request_.case_id]),
                           request_.case)

    @admin.display(description=_("case status"))
    def case_status(self, request_: ClosingRequest) -> str:
        return request_.case.get_status_display()

    # Names, not links: the user accounts' pages are the administrators' alone.
    @admin.display(description=_("requested by"))
    def asked_by(self, request_: ClosingRequest) -> str:
        return str(request_.requested_by or "—")

    @admin.display(description=_("decided by"))
    def decided_by_name(self, request_: ClosingRequest) -> str:
        return str(request_.decided_by or "—")

    def get_fields(self, request: HttpRequest, obj: ClosingRequest | None = None) -> Any:
        if request.user.has_perm(RESTRICTED_PERMISSION):
            return self.fields
        # The notes may name relatives or places, as the timeline's may.
        return tuple(row for row in self.fields if row not in ("note", "decision_note"))

    def get_readonly_fields(self, request: HttpRequest, obj: ClosingRequest | None = None) -> Any:
        if obj is not None and self.has_change_permission(request, obj):
            return self.readonly_fields
        return (*self.readonly_fields, "decision_note")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Asked from the case's page, where the reason and the note are given.
        return False

    def has_change_permission(self, request: HttpRequest, obj: ClosingRequest | None = None) -> bool:
        if not request.user.has_perm(APPROVE_CLOSING_PERMISSION):
            return False
        return obj is None or obj.state == ClosingRequest.State.PENDING

    def save_model(self, request: HttpRequest, obj: ClosingRequest, form: forms.ModelForm, change: bool) -> None:
        note = form.cleaned_data.get("decision_note", "")
        try:
            if getattr(form, "decision", "") == "approve":
                closing_approve(request=obj, actor=signed_in_user(request), note=note)
                self.message_user(request, gettext("Case %(id)s is closed.") % {"id": obj.case_id}, messages.SUCCESS)
            else:
                closing_send_back(request=obj, actor=signed_in_user(request), note=note)
                self.message_user(request, gettext("The closing of case %(id)s is sent back.") % {
                    "id": obj.case_id}, messages.SUCCESS)
        except CaseFileRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def response_change(self, request: HttpRequest, obj: ClosingRequest) -> HttpResponse:
        # Back to the queue for the next one, without the admin's own "changed successfully".
        return HttpResponseRedirect(reverse("admin:cases_closingrequest_changelist"))

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # The decision is on the case's timeline and in the request's history; no admin log line besides.
        return None


@admin.register(RecordAccess)
class RecordAccessAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("accessed_at", "child", "channel", "user", "client", "path")
    list_filter = ("channel",)
    list_select_related = ("child", "user")
    date_hierarchy = "accessed_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    search_fields = ("=child__id", "client", "user__username")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
