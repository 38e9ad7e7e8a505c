"""The tracker's additions to the case page: the lists a case is on, its flags and its shares."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cases.admin import APPROVE_CLOSING_PERMISSION, CaseAdmin, CaseEventInline, ReadOnlyInline
from cases.models import Case, ClosingRequest
from core.users import signed_in_user
from tracker.admin.common import outcome_label, report_refusal
from tracker.admin.exports import CaseExportActionsMixin
from tracker.admin.filters import FlaggedFilter, OnListFilter, OrganisationFilter
from tracker.admin.timeline import TimelineInline
from tracker.models import CaseShare, Flag, HandoverList, ListEntry
from tracker.selectors import my_work
from tracker.services.exchange import (
    ExchangeError,
    list_add_cases,
)
from tracker.services.partners import case_share_grant


class ListEntryOfCaseInline(ReadOnlyInline):
    model = ListEntry
    verbose_name_plural = _("lists this child is on")
    fields = ("handover_list", "position", "reply_state", "due_on", "last_outcome_label", "answered_on")
    show_change_link = True

    @admin.display(description=_("last outcome"))
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
    verbose_name_plural = _("shared with partner organisations")
    extra = 0
    fields = ("organisation", "include_restricted", "can_contribute", "created_at", "revoked_at")
    # Shares are stopped from the case shares page's action, which the partner's sync hears of.
    readonly_fields = ("created_at", "revoked_at")
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseShare]:
        return super().get_queryset(request).select_related("organisation")


class CaseTrackerActionForm(ActionForm):
    closing_reason = forms.ChoiceField(required=False, choices=[("", _("— reason —")), *Case.ClosingReason.choices])
    handover_list = forms.ModelChoiceField(
        required=False, empty_label=_("— draft list —"),
        queryset=HandoverList.objects.filter(status=HandoverList.Status.DRAFT),
    )


class TrackedCaseAdmin(CaseExportActionsMixin, CaseAdmin):
    """The case page with its lists and flags, which only the tracker knows about."""

    # The timeline with its lines in the reader's language (tracker.admin.timeline), then the tracker's own.
    inlines = [*(TimelineInline if inline is CaseEventInline else inline for inline in CaseAdmin.inlines),
               ListEntryOfCaseInline, FlagOfCaseInline, CaseShareOfCaseInline]
    # The flag next to the status, where it is seen without scrolling the table sideways.
    list_display = ("id", "child", "status", "open_flag", "priority", "assignee", "opened_on", "updated_at")
    list_filter = (FlaggedFilter, OnListFilter, OrganisationFilter, *CaseAdmin.list_filter)
    action_form = CaseTrackerActionForm
    actions = [*CaseAdmin.actions, "add_to_list", "export_cases_csv", "export_cases_xlsx"]

    change_list_template = "admin/cases/case/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        own = [path("my-work/", self.admin_site.admin_view(self.my_work_view), name="cases_case_my_work")]
        return own + super().get_urls()

    def my_work_view(self, request: HttpRequest) -> HttpResponse:
        """The signed-in case worker's page: their cases, the open flags on them by level, what falls due
        soon, the closings sent back to them; for a supervisor, how many closings await approval."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        work = my_work(user=request.user, today=today, due_within_days=settings.TRACKER_REMINDER_DAYS)
        approvals = (ClosingRequest.objects.filter(state=ClosingRequest.State.PENDING).count()
                     if request.user.has_perm(APPROVE_CLOSING_PERMISSION) else None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": gettext("My work"),
            "work": work, "today": today, "due_within_days": settings.TRACKER_REMINDER_DAYS,
            "approvals_pending": approvals,
        }
        return TemplateResponse(request, "admin/cases/case/my_work.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        top_level = (
            Flag.objects.filter(case=OuterRef("pk"), resolved_at__isnull=True).order_by("-level").values("level")
        )
        # 0, not NULL, when no flag is open: PostgreSQL sorts NULL first in descending order, which
        # would put every unflagged case above the flagged ones when sorting by the flag column.
        return super().get_queryset(request).annotate(
            open_flag_level=Coalesce(Subquery(top_level[:1], output_field=IntegerField()), 0)
        )

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is not CaseShare:
            super().save_formset(request, form, formset, change)
            return
        # Through the one road for shares, which records what each partner gained or lost.
        for share in formset.save(commit=False):
            if share.revoked_at is None:
                case_share_grant(case=form.instance, organisation=share.organisation,
                                 include_restricted=share.include_restricted, can_contribute=share.can_contribute,
                                 actor=signed_in_user(request))

    @admin.display(description=_("flag"), ordering="open_flag_level")
    def open_flag(self, case: Case) -> str:
        level = getattr(case, "open_flag_level", None)
        return gettext("level %(level)d") % {"level": level} if level else ""

    @admin.action(description=_("Add selected cases to the chosen draft list"))
    def add_to_list(self, request: HttpRequest, queryset: QuerySet[Case]) -> None:
        form = CaseTrackerActionForm(request.POST)
        form.is_valid()
        handover_list = form.cleaned_data.get("handover_list")
        if handover_list is None:
            self.message_user(request, gettext("Choose a draft list next to the action."), messages.ERROR)
            return
        try:
            added = list_add_cases(handover_list=handover_list, cases=queryset, actor=signed_in_user(request))
        except ExchangeError as exc:
            report_refusal(self, request, exc)
            return
        skipped = queryset.count() - added
        self.message_user(
            request, ngettext("Added %(n)d case to %(list)s", "Added %(n)d cases to %(list)s", added)
            % {"n": added, "list": handover_list.reference}
            + (gettext("; %(n)d already on it.") % {"n": skipped} if skipped else "."), messages.SUCCESS,
        )


admin.site.unregister(Case)
admin.site.register(Case, TrackedCaseAdmin)
