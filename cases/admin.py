"""The case workers' pages for children and case files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cases.matching.candidates import possible_duplicates
from cases.models import Case, CaseEvent, Child, RecordAccess
from cases.selectors import search_by_name
from cases.services import (
    ALLOWED_TRANSITIONS,
    MergeRefused,
    StatusStep,
    TransitionNotAllowed,
    case_change_status,
    case_open,
    cases_move,
    child_merge,
    log_child_reads,
)
from core.pagination import EstimatedCountPaginator
from core.users import signed_in_user

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
    readonly_fields = ("search_names", "created_at", "updated_at", "duplicates_link")
    filter_horizontal = ("siblings",)
    inlines = [CaseOfChildInline]
    fieldsets = (
        (_("Name as the family writes it"), {"fields": (("family_name", "given_name", "patronymic"),)}),
        (_("Latin form and other spellings"), {"fields": (
            ("family_name_latin", "given_name_latin", "patronymic_latin"), "aliases", "search_names")}),
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


class CaseEventInline(ReadOnlyInline):
    model = CaseEvent
    verbose_name_plural = _("timeline")
    fields = ("happened_at", "kind", "from_status", "to_status", "actor", "message")
    ordering = ("-happened_at", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseEvent]:
        return super().get_queryset(request).select_related("actor")


class CaseForm(forms.ModelForm):
    """The case page: everything but the status is edited in place; the status moves by its road."""

    next_status = forms.ChoiceField(required=False, label=_("Move to"), help_text=_("Only the allowed next steps."))
    transition_note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label=_("Why"))
    next_closing_reason = forms.ChoiceField(
        required=False, label=_("Closing reason"), choices=[("", "—"), *Case.ClosingReason.choices]
    )

    class Meta:
        model = Case
        fields = ("child", "assignee", "priority")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.status if self.instance.pk else Case.Status.OPEN
        allowed = sorted(ALLOWED_TRANSITIONS[current])
        next_status = self.fields["next_status"]
        assert isinstance(next_status, forms.ChoiceField)  # noqa: S101 an invariant, for the type checker
        next_status.choices = [("", gettext("— stay —")), *[(s, Case.Status(s).label) for s in allowed]]
        if self.instance.pk:
            self.fields["child"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("next_status") == Case.Status.CLOSED and not data.get("next_closing_reason"):
            self.add_error("next_closing_reason", gettext("Say why the case is closed."))
        # The one-live-case rule is a partial unique constraint on the status, which is not on this
        # form, so the model's own validation skips it: without this check the database refuses it.
        child = data.get("child")
        if self.instance.pk is None and child is not None:
            live = Case.objects.filter(child=child).exclude(status=Case.Status.CLOSED).first()
            if live is not None:
                self.add_error("child", f"{child} already has a case in progress: case {live.pk}.")
        return data


class CaseActionForm(ActionForm):
    closing_reason = forms.ChoiceField(required=False, choices=[("", "— reason —"), *Case.ClosingReason.choices])


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
    readonly_fields = ("status", "opened_on", "closed_on", "closing_reason", "closing_note", "created_at",
                       "updated_at")
    fieldsets = (
        (None, {"fields": ("child", ("status", "priority", "assignee"))}),
        (_("Change status"), {"fields": ("next_status", "next_closing_reason", "transition_note")}),
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
        return super().get_fieldsets(request, obj)

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
        if not change:
            opened = case_open(child=obj.child, actor=signed_in_user(request), assignee=obj.assignee,
                               priority=obj.priority)
            obj.pk = opened.pk
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        to_status = form.cleaned_data.get("next_status")
        if to_status:
            try:
                case_change_status(case=obj, to_status=to_status, actor=signed_in_user(request),
                                   note=form.cleaned_data.get("transition_note", ""),
                                   closing_reason=form.cleaned_data.get("next_closing_reason", ""))
            except TransitionNotAllowed as exc:
                self.message_user(request, str(exc), messages.ERROR)

    @admin.action(description=_("Close selected cases with the chosen reason"))
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
